"""Which interfaces and addresses mDNS uses (protocols/discovery.md §4).

Interfaces are enumerated with ifaddr (the list zeroconf and aioice use too),
never left to the default route: a host without one has no default interface.
`choose` is pure: it takes the adapters as ifaddr reports them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .config import MdnsConfig
from .dnssd import IpNetwork


@dataclass(frozen=True)
class Interface:
    name: str
    index: int
    ipv4: tuple[ipaddress.IPv4Interface, ...]  # address with its prefix
    ipv6: tuple[ipaddress.IPv6Interface, ...]

    @property
    def networks(self) -> tuple[IpNetwork, ...]:
        return (*(a.network for a in self.ipv4), *(a.network for a in self.ipv6))

    @property
    def addresses(self) -> tuple[str, ...]:
        return (*(str(a.ip) for a in self.ipv4), *(str(a.ip) for a in self.ipv6))


def choose(adapters: Iterable[Any], config: MdnsConfig) -> list[Interface]:
    """The interfaces to use: those named in `config.interfaces` (every one when
    empty) that have a usable address of an enabled family. Loopback addresses are
    never usable (what they advertise would send other hosts to themselves)."""
    chosen = []
    for adapter in adapters:
        name = str(adapter.name)
        if config.interfaces and name not in config.interfaces:
            continue
        if adapter.index is None:
            continue
        v4: list[ipaddress.IPv4Interface] = []
        v6: list[ipaddress.IPv6Interface] = []
        for ip in adapter.ips:
            try:
                if isinstance(ip.ip, str):
                    v4.append(ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}"))
                else:  # ifaddr gives IPv6 as (address, flowinfo, scope id)
                    v6.append(ipaddress.IPv6Interface(f"{ip.ip[0]}/{ip.network_prefix}"))
            except ValueError:
                continue
        v4 = [a for a in v4 if config.ipv4 and not a.ip.is_loopback and not a.ip.is_unspecified]
        v6 = [a for a in v6 if config.ipv6 and not a.ip.is_loopback and not a.ip.is_unspecified]
        if v4 or v6:
            chosen.append(Interface(name, int(adapter.index), tuple(v4), tuple(v6)))
    return chosen


def list_interfaces(config: MdnsConfig) -> list[Interface]:
    import ifaddr  # a netlink dump: quick, no network traffic

    return choose(ifaddr.get_adapters(), config)
