"""Settings of LAN discovery by mDNS (protocols/discovery.md), every default in one place.

mDNS is on by default (`NodeConfig.mdns`, `--no-mdns`). Which interfaces and address
families it uses is configuration (`[discovery]` in config.toml): by default every
interface with a usable address (not loopback), IPv4 and IPv6. The interfaces are
listed by name and enumerated (ifaddr) rather than left to the operating system's
default route, because a host without a default route (a network namespace, an
isolated LAN) has no default interface.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MdnsConfig:
    interfaces: tuple[str, ...] = ()  # interface names; () = every one with a usable address
    ipv4: bool = True
    ipv6: bool = True
    max_services: int = 64  # services of our network tracked at once (discovery.md §6)
    max_resolving: int = 4  # services being resolved at once
    resolve_timeout_ms: int = 3_000  # a service whose records do not all arrive is skipped

    def __post_init__(self) -> None:
        if not (self.ipv4 or self.ipv6):
            raise ValueError("mDNS needs at least one address family (IPv4 or IPv6)")
        for name in self.interfaces:
            if not name or len(name) > 64 or any(c.isspace() or c == "/" for c in name):
                raise ValueError(f"{name!r} is not an interface name")
        if self.max_services < 1 or self.max_resolving < 1 or self.resolve_timeout_ms < 1:
            raise ValueError("mDNS limits must be positive")
