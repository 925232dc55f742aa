"""LAN discovery with python-zeroconf (protocols/discovery.md): advertise this node's
peer port as a DNS-SD service, browse for the others, hand those of our network and
protocol version to the node, which hands them to the connection manager.

An asyncio adapter running in the node's event loop (`AsyncZeroconf`: never one of
zeroconf's blocking calls). What a service means is decided in `dnssd.py`; this
module moves records in and out. Liveness is not its business: zeroconf keeps a
killed node's records cached for as long as their TTLs (the PTR's 4,500 s, at
least 1,125 s before a refresh query), so a peer found here is only a candidate
that the connection manager dials, backs off from and forgets (transport.md §7.3,
discovery.md §6). A service removed from the cache (a goodbye, or expiry) is
reported as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from zeroconf import IPVersion, NonUniqueNameException, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from ..core.identity import short_id
from .config import MdnsConfig
from .dnssd import (
    SERVICE_TYPE,
    Found,
    Ignored,
    Reason,
    Service,
    advertised_txt,
    host_name,
    judge,
    service_name,
)
from .interfaces import Interface, list_interfaces

log = logging.getLogger("liberation_node.discovery")

WILDCARDS = ("", "0.0.0.0", "::")
MAX_REMEMBERED_IGNORED = 256  # names whose refusal was logged (each is logged once)


class LanDiscovery:
    """One node's mDNS responder and browser. `await start()`, then `await close()`."""

    def __init__(self, config: MdnsConfig, *, me: bytes, network: str, protocol: int,
                 port: int, bind_host: str, ice_addresses: tuple[str, ...],
                 found: Callable[[bytes, tuple[str, ...]], None],
                 lost: Callable[[bytes], None]) -> None:
        self.config = config
        self.me = me
        self.network = network
        self.protocol = protocol
        self.port = port
        self.bind_host = bind_host
        self.ice_addresses = ice_addresses
        self._found = found
        self._lost = lost
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._interfaces: list[Interface] = []
        self._advertised: tuple[str, ...] = ()
        self._services: dict[str, bytes] = {}  # instance name (lower case) -> node id
        self._ignored: dict[str, str] = {}  # instance name -> why, logged once
        self._ignored_counts: Counter[str] = Counter()
        self._pending: dict[str, None] = {}  # names to resolve, in arrival order
        self._workers: set[asyncio.Task[None]] = set()
        self._registration: asyncio.Task[None] | None = None
        self._closing = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the sockets, browse, and advertise (probing takes about a second; the
        browser runs meanwhile). Never raises: without mDNS the node still runs."""
        try:
            self._interfaces = list_interfaces(self.config)
            if not self._interfaces:
                log.warning("mDNS off: no interface with a usable address%s",
                            f" among {', '.join(self.config.interfaces)}"
                            if self.config.interfaces else "")
                return
            choice: list[str | int] = [str(a.ip) for i in self._interfaces for a in i.ipv4]
            choice += [i.index for i in self._interfaces if i.ipv6]
            v4 = any(i.ipv4 for i in self._interfaces)
            v6 = any(i.ipv6 for i in self._interfaces)
            version = IPVersion.All if v4 and v6 else IPVersion.V4Only if v4 else IPVersion.V6Only
            self._zc = AsyncZeroconf(interfaces=choice, ip_version=version)
            self._browser = AsyncServiceBrowser(self._zc.zeroconf, [SERVICE_TYPE],
                                                handlers=[self._on_change])
        except Exception as exc:  # sockets, interfaces: a node without mDNS still runs
            log.warning("mDNS off: %s", exc)
            await self._close_zeroconf()
            return
        log.info("mDNS on %s", ", ".join(i.name for i in self._interfaces))
        self._registration = asyncio.ensure_future(self._register())

    def _addresses_to_advertise(self) -> tuple[str, ...]:
        """The A/AAAA records of our service (discovery.md §4.2): our addresses on the
        chosen interfaces where the peer port listens (IPv4 only when it is bound to
        0.0.0.0; only the bound address when it is bound to one); only ICE's addresses
        when those are restricted (transport.md §6.2)."""
        ours = [a for i in self._interfaces for a in i.addresses]
        if self.bind_host == "0.0.0.0":
            ours = [a for a in ours if ":" not in a]
        elif self.bind_host not in WILDCARDS:
            ours = [a for a in ours if a == self.bind_host]
        if self.ice_addresses:
            ours = [a for a in ours if a in self.ice_addresses]
        return tuple(dict.fromkeys(ours))

    async def _register(self) -> None:
        assert self._zc is not None
        self._advertised = self._addresses_to_advertise()
        if not self._advertised:
            log.warning("mDNS: no address to advertise on %s; browsing only",
                        ", ".join(i.name for i in self._interfaces))
            return
        info = AsyncServiceInfo(
            SERVICE_TYPE, service_name(self.me), port=self.port,
            properties=advertised_txt(self.me, self.network, self.protocol),
            server=host_name(self.me), parsed_addresses=list(self._advertised))
        try:
            await self._zc.async_register_service(info)
        except NonUniqueNameException:
            log.warning("mDNS: another host on this LAN advertises this node's id "
                        "(a copied identity?); not advertising")
            self._advertised = ()
        except Exception as exc:
            log.warning("mDNS: cannot advertise: %s", exc)
            self._advertised = ()
        else:
            log.info("mDNS: advertising port %d at %s", self.port, ", ".join(self._advertised))

    async def close(self) -> None:
        """Say goodbye (RFC 6762 §10.1: our records with TTL 0, so other nodes drop them
        at once) and close the sockets."""
        self._closing = True
        tasks = [*self._workers, *([self._registration] if self._registration else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_zeroconf()

    async def _close_zeroconf(self) -> None:
        zc, self._zc = self._zc, None
        browser, self._browser = self._browser, None
        with contextlib.suppress(Exception):
            if browser is not None:
                await browser.async_cancel()
            if zc is not None:
                await asyncio.wait_for(zc.async_close(), 3)  # unregisters: the goodbye

    # -- browsing -------------------------------------------------------------------------

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str,
                   state_change: ServiceStateChange) -> None:
        """Called by the browser in the event loop; must not block."""
        if self._closing:
            return
        key = name.lower()
        if state_change is ServiceStateChange.Removed:
            self._pending.pop(key, None)
            self._ignored.pop(key, None)
            self._drop(key, "removed")
            return
        if key not in self._pending and len(self._pending) >= 4 * self.config.max_services:
            return  # a flood of names: those already queued go first
        self._pending[key] = None
        while len(self._workers) < self.config.max_resolving and self._pending:
            task = asyncio.ensure_future(self._resolve_pending())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def _resolve_pending(self) -> None:
        while self._pending and not self._closing:
            name = next(iter(self._pending))
            del self._pending[name]
            try:
                service = await self._resolve(name)
            except Exception as exc:  # a malformed record must not end the worker
                log.debug("mDNS: resolving %s failed: %r", name, exc)
                continue
            if service is not None:
                self._apply(name, service)

    async def _resolve(self, name: str) -> Service | None:
        zc = self._zc
        if zc is None:
            return None
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not info.load_from_cache(zc.zeroconf) and not await info.async_request(
                zc.zeroconf, self.config.resolve_timeout_ms):
            log.debug("mDNS: %s did not resolve", name)
            return None
        return Service(name, info.text or b"", info.port or 0,
                       tuple(info.parsed_scoped_addresses()))

    def _apply(self, key: str, service: Service) -> None:
        links = [net for i in self._interfaces for net in i.networks]
        verdict = judge(service, network=self.network, protocol=self.protocol, me=self.me,
                        links=links)
        if isinstance(verdict, Ignored):
            self._drop(key, verdict.reason.value)
            if verdict.reason is not Reason.SELF:
                self._ignore(key, verdict.reason.value, verdict.detail)
            return
        assert isinstance(verdict, Found)
        self._ignored.pop(key, None)
        if key not in self._services and len(self._services) >= self.config.max_services:
            self._ignore(key, "full", f"already tracking {len(self._services)} services")
            return
        previous = self._services.get(key)
        self._services[key] = verdict.node_id
        if previous is None or previous != verdict.node_id:
            log.info("mDNS: found %s at %s", short_id(verdict.node_id), ", ".join(verdict.urls))
        if previous is not None and previous != verdict.node_id:
            self._lose(previous)
        self._found(verdict.node_id, verdict.urls)

    def _ignore(self, key: str, reason: str, detail: str) -> None:
        """Log a refusal once per service and reason (a LAN may hold many services of
        other networks, and each re-announces)."""
        if self._ignored.get(key) == reason:
            return
        if len(self._ignored) >= MAX_REMEMBERED_IGNORED:
            self._ignored.pop(next(iter(self._ignored)))
        self._ignored[key] = reason
        self._ignored_counts[reason] += 1
        log.info("mDNS: ignoring %s: %s (%s)", key, reason, detail)

    def _drop(self, key: str, why: str) -> None:
        node_id = self._services.pop(key, None)
        if node_id is not None:
            log.info("mDNS: %s %s", short_id(node_id), why)
            self._lose(node_id)

    def _lose(self, node_id: bytes) -> None:
        if node_id not in self._services.values():  # not still under another name
            self._lost(node_id)

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "interfaces": [i.name for i in self._interfaces] if self._zc else [],
            "advertised": list(self._advertised),
            "peers": sorted(short_id(n) for n in set(self._services.values())),
            "ignored": dict(sorted(self._ignored_counts.items())),
        }
