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
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from zeroconf import (
    IPVersion,
    NonUniqueNameException,
    RecordUpdate,
    RecordUpdateListener,
    ServiceStateChange,
    Zeroconf,
    current_time_millis,
)
from zeroconf._dns import DNSPointer, DNSQuestion
from zeroconf._protocol.outgoing import DNSOutgoing
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
TYPE_PTR, TYPE_SRV, CLASS_IN, FLAGS_QUERY = 12, 33, 1, 0x0000  # RFC 1035 §3.2.2-§4.1.1
SWEEP_S = 10.0  # how often the cache is searched for instances missed (a failed resolve)
RECHECK_FIRST_MS = 10_000  # discovery.md §6.1: then doubling, as RFC 6762 §5.2 asks
RECHECK_MAX_MS = 3_600_000
PROBES, PROBE_INTERVAL_S = 3, 0.25  # RFC 6762 §8.1 (zeroconf's own probes are 500 ms apart)


class _SrvAnswers(RecordUpdateListener):
    """Every SRV record heard on the link, fresh or refreshing one already cached (the
    browser reports only changes): proof that its responder is alive."""

    def __init__(self, heard: Callable[[str], None]) -> None:
        self._heard = heard

    def async_update_records(self, zc: Zeroconf, now: float,
                             records: list[RecordUpdate]) -> None:
        for update in records:
            record = update.new
            if record.type == TYPE_SRV and not record.is_expired(now):
                self._heard(record.name.lower())

    def async_update_records_complete(self) -> None:
        pass


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
        self._rechecks: dict[str, float] = {}  # forgotten nodes' names -> when to ask (§6.1)
        self._recheck_intervals: dict[str, int] = {}  # doubling per name while cached
        self._rechecker: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._answers = _SrvAnswers(self._heard)
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
            self._zc.zeroconf.async_add_listener(self._answers, None)
        except Exception as exc:  # sockets, interfaces: a node without mDNS still runs
            log.warning("mDNS off: %s", exc)
            await self._close_zeroconf()
            return
        log.info("mDNS on %s", ", ".join(i.name for i in self._interfaces))
        self._registration = asyncio.ensure_future(self._register())
        self._sweeper = asyncio.ensure_future(self._sweep())

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
            if not await self._probe(info):
                raise NonUniqueNameException
            # Probed above, at the RFC's pace: zeroconf only announces.
            await self._zc.async_register_service(info, cooperating_responders=True)
        except NonUniqueNameException:
            log.warning("mDNS: another host on this LAN advertises this node's id "
                        "(a copied identity?); not advertising")
            self._advertised = ()
        except Exception as exc:
            log.warning("mDNS: cannot advertise: %s", exc)
            self._advertised = ()
        else:
            log.info("mDNS: advertising port %d at %s", self.port, ", ".join(self._advertised))

    async def _probe(self, info: AsyncServiceInfo) -> bool:
        """RFC 6762 §8.1: after a random 0-250 ms, three probes 250 ms apart; a responder
        that answers for our instance name meanwhile holds it. False if one does."""
        assert self._zc is not None
        zc = self._zc.zeroconf
        await zc.async_wait_for_start()
        await asyncio.sleep(random.uniform(0, PROBE_INTERVAL_S))
        for _ in range(PROBES):
            if zc.cache.current_entry_with_name_and_alias(info.type, info.name):
                return False
            zc.async_send(zc.generate_service_query(info))
            await asyncio.sleep(PROBE_INTERVAL_S)
        return not zc.cache.current_entry_with_name_and_alias(info.type, info.name)

    async def close(self) -> None:
        """Say goodbye (RFC 6762 §10.1: our records with TTL 0, so other nodes drop them
        at once) and close the sockets."""
        self._closing = True
        tasks = [*self._workers,
                 *(t for t in (self._registration, self._rechecker, self._sweeper) if t)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_zeroconf()

    async def _close_zeroconf(self) -> None:
        zc, self._zc = self._zc, None
        browser, self._browser = self._browser, None
        with contextlib.suppress(Exception):
            if zc is not None:
                zc.zeroconf.async_remove_listener(self._answers)
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
            self._rechecks.pop(key, None)
            self._recheck_intervals.pop(key, None)
            self._drop(key, "removed")
            return
        self._queue(key)

    def _queue(self, key: str) -> None:
        if key not in self._pending and len(self._pending) >= 4 * self.config.max_services:
            return  # a flood of names: those already queued go first
        self._pending[key] = None
        while len(self._workers) < self.config.max_resolving and self._pending:
            task = asyncio.ensure_future(self._resolve_pending())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def _sweep(self) -> None:
        """Queue, now and then, the instances in zeroconf's cache that are neither tracked
        nor ignored: a resolve that timed out (or an event missed) gets another chance,
        since the browser reports an instance only when its records change."""
        while not self._closing:
            await asyncio.sleep(SWEEP_S)
            zc = self._zc
            if zc is None:
                return
            now = current_time_millis()
            cached = zc.zeroconf.cache.async_all_by_details(SERVICE_TYPE, TYPE_PTR, CLASS_IN)
            names = [r.alias.lower() for r in cached
                     if isinstance(r, DNSPointer) and not r.is_expired(now)]
            for key in names[:4 * self.config.max_services]:
                if key not in self._services and key not in self._ignored:
                    self._queue(key)

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
            log.debug("mDNS: %s did not resolve (tried again within %g s)", name, SWEEP_S)
            return None
        return Service(name, info.text or b"", info.port or 0,
                       tuple(info.parsed_scoped_addresses()))

    def _apply(self, key: str, service: Service) -> None:
        links = [net for i in self._interfaces for net in i.networks]
        verdict = judge(service, network=self.network, protocol=self.protocol, me=self.me,
                        links=links)
        if isinstance(verdict, Ignored):
            self._drop(key, verdict.reason.value)
            self._ignore(key, verdict.reason.value, verdict.detail,
                         quiet=verdict.reason is Reason.SELF)
            return
        assert isinstance(verdict, Found)
        self._ignored.pop(key, None)
        self._rechecks.pop(key, None)  # found (again): a candidate afresh
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

    def _ignore(self, key: str, reason: str, detail: str, quiet: bool = False) -> None:
        """Remember a refusal, and log it once per service and reason (a LAN may hold
        many services of other networks, and each re-announces)."""
        if self._ignored.get(key) == reason:
            return
        if len(self._ignored) >= MAX_REMEMBERED_IGNORED:
            self._ignored.pop(next(iter(self._ignored)))
        self._ignored[key] = reason
        if not quiet:
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

    # -- nodes forgotten for failing (discovery.md §6.1) ------------------------------------

    def forgotten(self, node_id: bytes) -> None:
        """The connection manager gave up on `node_id` (failed dials): its cached record
        may be a dead node's, or the node may be cut off for now. Ask about it again
        later; a live responder answers, and then it is a candidate again."""
        for key, known in self._services.items():
            if known == node_id and key not in self._rechecks:
                self._schedule(key)
        if self._rechecks and self._rechecker is None and self._zc is not None:
            self._rechecker = asyncio.ensure_future(self._recheck())

    def _schedule(self, key: str) -> None:
        """The next question about `key`: 10 s, then twice as long each time (per name,
        for as long as it stays cached), at most an hour."""
        previous = self._recheck_intervals.get(key)
        interval = min(previous * 2, RECHECK_MAX_MS) if previous else RECHECK_FIRST_MS
        self._recheck_intervals[key] = interval
        self._rechecks[key] = current_time_millis() + interval

    def _heard(self, name: str) -> None:
        """An SRV answer for `name`: if its node was forgotten and its recheck is due,
        the responder is alive; resolve it again (which hands it over as found)."""
        due = self._rechecks.get(name)
        if due is not None and current_time_millis() >= due and not self._closing:
            del self._rechecks[name]
            log.info("mDNS: %s answers again", name.split(".", 1)[0][:10])
            self._queue(name)

    async def _recheck(self) -> None:
        """Query the SRV records of forgotten nodes when due (one packet for all), at
        intervals doubling per name (RFC 6762 §5.2): answers arrive through _heard."""
        try:
            while self._rechecks and self._zc is not None:
                now = current_time_millis()
                wait = min(self._rechecks.values()) - now
                if wait > 0:
                    await asyncio.sleep(wait / 1000)
                    continue
                due = [k for k, when in self._rechecks.items() if when <= now]
                query = DNSOutgoing(FLAGS_QUERY)
                for key in due:
                    query.add_question(DNSQuestion(key, TYPE_SRV, CLASS_IN))
                self._zc.zeroconf.async_send(query)
                await asyncio.sleep(1.0)  # answers come within RFC 6762 §6's 500 ms
                for key in due:  # no answer: ask again later
                    if self._rechecks.get(key, now + 1) <= now:
                        self._schedule(key)
        finally:
            self._rechecker = None

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "interfaces": [i.name for i in self._interfaces] if self._zc else [],
            "advertised": list(self._advertised),
            "peers": sorted(short_id(n) for n in set(self._services.values())),
            "ignored": dict(sorted(self._ignored_counts.items())),
        }
