"""The node: core engine, store, transport, HTTP ports and connection manager, composed
(DESIGN §1 "node"; protocols/transport.md).

A thin asyncio driver around the sans-IO `Mesh`, in the style of aioquic's
asyncio adapter: every input (a frame, a link opening or closing, a local API
call) goes into the engine with `now`; then `_service()` drains what the engine
wants done: frames to send (bounded by each link's buffer: flow control),
events to act on (persist, log, publish on the bus, tell the connection
manager) and the one timer to re-arm. Store writes are batched by a single
writer task (writer.py), so ops are stored in the order the replica applied
them; an own write is acknowledged, and published, only once committed
(DESIGN §8, protocols/sync.md §10).

`Node` is assembled from parts, each a mixin in its own module: dialing (dialing.py),
what the API and the page show (reporting.py), what becomes of the mesh's events
(eventing.py) and LAN discovery (lan.py); this module starts, drives and stops it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import clock, datadir
from .advertise import advertised_urls, signal_url
from .api import runfile
from .api._http import Refusals, make_runner
from .api.control import control_app
from .api.guard import ConnectionLimits, default_limits, raise_fd_limit
from .api.peer import peer_app
from .api.ratelimit import client_key
from .bootstrap import resolve as resolve_bootstrap
from .bus import EventBus
from .config import NodeConfig
from .core.bodies import Claim, Post, Register, Retract, Transfer
from .core.candidates import Source
from .core.connections import Connections
from .core.contents import Retention
from .core.errors import NotWritable
from .core.ledger import iso_week
from .core.mesh import Mesh
from .core.ownfeed import OwnFeedConfig
from .core.peering import Dial, Peering
from .core.queries import Index
from .core.reading import Reader
from .core.scope import LOOPBACK, address_scope, allowed_scopes
from .core.session import CloseReason
from .core.verified import Verdict
from .dialing import NodeDialing
from .eventing import NodeEvents
from .health import Health
from .inbound import Inbound
from .lan import NodeLan
from .reporting import NodeReports
from .store.base import Store
from .store.loader import apply_retention, open_replica
from .traffic import Traffic
from .transport import TransportError
from .verifiers import Verifiers
from .writer import StoreWriter

if TYPE_CHECKING:
    from .discovery.mdns import LanDiscovery
    from .transport import Link, WebRtcTransport

log = logging.getLogger("liberation_node")


def _address(link: Link) -> str | None:
    """The key scores and bans hold for a link's far end: its IP address (an IPv6 one by
    its /64, as the peer port's rate limit counts them), from the ICE pair in use. None
    for this very host (loopback): every local peer shares that address, and one on the
    machine can do worse than a peer can (sync.md §4.7)."""
    where = link.remote_address
    if not where:
        return None
    host = where.rsplit(":", 1)[0].strip("[]")
    try:
        if address_scope(host) == LOOPBACK:
            return None
    except ValueError:
        return None
    return client_key(host)


class Node(NodeReports, NodeDialing, NodeEvents, NodeLan):
    """One running node. `await start()`, then `await stop()`; see daemon.py."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.dir = datadir.load(config.data_dir)
        self.stopping = False
        self.identity = self.dir.identity
        self.bus = EventBus()
        self.started_at = clock.monotonic_s()
        self._entropy = os.urandom
        self._links: dict[int, Link] = {}
        self._lock: int | None = None  # the data directory's lock (datadir.lock)
        self._store_cm: Any = None
        self._store: Store | None = None
        self._writer: StoreWriter | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._signals: dict[int, asyncio.Future[dict[str, str]]] = {}  # relayed dials
        self._draining: set[int] = set()  # links we wait on to drain (flow control)
        # Frames from peers reach the mesh through this: their ops' signatures are
        # checked in worker processes first (started at the first batch of ops),
        # each link's frames kept in order.
        self._inbound = Inbound(self._take_frame, pool=Verifiers())
        self._runners: list[web.AppRunner] = []
        self._transport: WebRtcTransport | None = None
        self._lan: LanDiscovery | None = None  # mDNS (protocols/discovery.md)
        self.peer_url = ""
        self.control_url = ""
        self.traffic = Traffic()
        # Refused requests on both HTTP ports and refused relayed offers: one log line
        # each, rate-limited, counted.
        self.refusals = Refusals()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start everything; on failure, raise (`stop()` then releases what was taken)."""
        cfg = self.config
        self._lock = datadir.lock(self.dir.path)  # first: one process per data dir (§8)
        datadir.check_replica(self.dir.path, new_identity=cfg.new_identity, recover=cfg.recover)
        self._store_cm = self.dir.open_store()
        self._store = await self._store_cm.__aenter__()
        now = clock.now_ms()
        replica = await open_replica(self._store, cfg.network, now=now, genesis=cfg.genesis)
        # This node's direct messages are sealed to it: it reads them for its API and
        # keeps them whatever the retention budget (protocols/ops.md §12.5, §13).
        self.reader = Reader(self.identity, cfg.network)
        gone = await apply_retention(self._store, replica, Retention(
            cfg.retention, self.identity.public_key, self.reader.opens), now)
        if gone:
            log.info("retention: dropped %d message texts over the configured limits", gone)
        # A node that did not just make its identity checks its own feed with its
        # peers before writing; --recover waits for a peer however long it takes.
        own = OwnFeedConfig(check=not cfg.new_identity,
                            grace_ms=None if cfg.recover else cfg.mesh.own_feed.grace_ms)
        quotas = dataclasses.replace(cfg.mesh.quotas, max_records=cfg.max_records,
                                     author_ops_per_s=float(cfg.author_ops_per_s),
                                     author_ops_burst=cfg.author_ops_burst)
        self.mesh = Mesh(self.identity, replica,
                         dataclasses.replace(cfg.mesh, own_feed=own, quotas=quotas),
                         self._entropy, now)
        if self.mesh.writable():
            log.info("writes wait until this node's own feed is checked with a peer%s",
                     "" if own.grace_ms is None else f" (at most {own.grace_ms / 1000:g} s)")
        self._index = Index(replica, self.identity.public_key, self.reader)
        bootstrap = resolve_bootstrap(cfg.bootstrap, cfg.network, genesis=cfg.genesis)
        # Announced URLs may be loopback or link-local only if this node uses such
        # addresses itself (transport.md §7.7): the loopback tests do, real nodes do not.
        scopes = allowed_scopes([cfg.peer_host, *cfg.transport.ice_addresses,
                                 *cfg.public_urls, *(p.url for p in bootstrap)])
        self.peering = Peering(self.identity.public_key,
                               dataclasses.replace(cfg.peering, scopes=scopes),
                               rand=lambda: int.from_bytes(os.urandom(4), "big") / 2**32,
                               scores=self.mesh.scores)
        self.connections = Connections(self.mesh, self.peering)
        self.health = Health(self)
        self._writer = StoreWriter(self._store, self._on_commit, self._on_store_state,
                                   cfg.max_queued_ops)
        # The WebRTC stack loads in a thread while the node starts (see transport/__init__).
        self._transport_task = self._spawn(self._load_transport(), name="load transport")
        self._spawn(self._writer.run(), name="writer")
        self._spawn(self._report_rejections(), name="rejections")
        # Connections are capped well below the open files limit, so that no flood of
        # them can starve the store, WebRTC or the control port (transport.md §3.11).
        limits = default_limits(raise_fd_limit())
        peer_port = await self._serve(peer_app(self, allow_origins=cfg.allow_origins,
                                               refusals=self.refusals),
                                      cfg.peer_host, cfg.peer_port, limits)
        control_port = await self._serve(control_app(
            self, self.dir.control_token(), bound=cfg.control_host, refusals=self.refusals,
            peer_url=lambda: self.peer_url), cfg.control_host, cfg.control_port,
            ConnectionLimits(limits.max_total, limits.max_total, idle_timeout_s=75.0))
        urls = advertised_urls(cfg, peer_port)
        self.peer_url = urls[0] if urls else signal_url("127.0.0.1", peer_port)
        self.control_url = f"http://{cfg.control_host}:{control_port}"
        self.mesh.config = type(cfg.mesh)(**{**cfg.mesh.__dict__, "urls": urls,
                                             "name": cfg.name or cfg.mesh.name})
        for peer in bootstrap:
            self.peering.learn(peer.node_id, [peer.url], Source.BOOTSTRAP, now)
        self.connections.learn_records(self.mesh.replica.records.values(), now)
        if cfg.mdns:
            self._start_lan(peer_port)
        runfile.write(self.dir.path, pid=os.getpid(), control_url=self.control_url,
                      peer_url=self.peer_url)
        self._spawn(self.health.run(cfg.health_interval_s))
        log.info("node %s up on network %r: peer port %s, control %s", self.identity.text,
                 cfg.network, self.peer_url, self.control_url)
        self._service()

    async def _load_transport(self) -> WebRtcTransport:
        module = await asyncio.get_running_loop().run_in_executor(
            None, importlib.import_module, "liberation_node.transport.webrtc")
        transport: WebRtcTransport = module.WebRtcTransport(
            self.config.transport, self._on_link_open, self._on_message, self._on_link_close)
        self._transport = transport
        return transport

    async def transport(self) -> WebRtcTransport:
        if self._transport is not None:
            return self._transport
        return await asyncio.shield(self._transport_task)

    async def _serve(self, app: web.Application, host: str, port: int,
                     limits: ConnectionLimits) -> int:
        runner = make_runner(app, limits)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        sockets = [s for s in (runner.addresses or [])]
        return int(sockets[0][1]) if sockets else port

    async def stop(self) -> None:
        """Drain: say goodbye to peers, flush the store, close everything. Also after a
        start that failed part way: it releases whatever was taken, and never raises."""
        if self.stopping:
            return
        self.stopping = True
        started = "mesh" in self.__dict__
        # mDNS goodbye first, so that LAN peers drop our record rather than redial us.
        lan = self._spawn(self._lan.close(), name="mdns goodbye") if self._lan else None
        if started:
            log.info("shutting down: closing %d peers", len(self.mesh.peers()))
            for conn in list(self.mesh.peers()):
                self.mesh.close(conn, CloseReason.SHUTDOWN, "node stopping")
            self._service()
            await asyncio.sleep(0)  # let the CLOSE frames reach the channels' buffers
        if self._timer is not None:
            self._timer.cancel()
        if lan is not None:
            await asyncio.gather(lan, return_exceptions=True)
        for runner in self._runners:
            await runner.cleanup()
        if self._transport is not None:
            await self._transport.close()
        self._inbound.close()
        if self._writer is not None:
            await self._writer.close()  # the writer commits what is queued, then ends
        for task in list(self._tasks):
            if task.get_name() != "writer":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._store_cm is not None:
            await self._store_cm.__aexit__(None, None, None)
        if started:
            runfile.remove(self.dir.path)
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None
        if started:
            log.info("stopped")

    def _spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and not self.stopping:
            log.error("task %s failed: %r", task.get_name(), task.exception())

    # -- the engine loop ------------------------------------------------------------------

    def _service(self) -> None:
        """Drain the engine: send, act on events, dial, re-arm the timer."""
        now = clock.now_ms()
        while (event := self.mesh.next_event()) is not None:
            self._on_event(event, now)
        budget = {lid: max(0, self.config.transport.high_water - link.buffered_amount)
                  for lid, link in self._links.items()}
        for conn, data in self.mesh.datagrams_to_send(now, budget=lambda c: budget.get(c, 0)):
            link = self._links.get(conn)
            if link is not None:
                try:
                    link.send(data)
                    self.traffic.sent(conn, len(data))
                except (TransportError, ValueError, ConnectionError) as exc:
                    log.warning("send to link %d failed: %s", conn, exc)
        # Flow control: resume when drained. Only the links with answers owed, not every
        # link after every input (per-input work in proportion to what changed).
        for conn in self.mesh.backlogged():
            link = self._links.get(conn)
            if link is not None and link.congested and conn not in self._draining:
                self._draining.add(conn)
                self._spawn(self._drain(conn, link))
        while (event := self.mesh.next_event()) is not None:  # sending can close sessions
            self._on_event(event, now)
        if not self.stopping:
            self._dial(now)
            self._lan_forgotten()
        self._arm(now)

    async def _drain(self, conn: int, link: Link) -> None:
        try:
            await link.wait_writable()
        except TransportError:
            return
        finally:
            self._draining.discard(conn)
        self._service()

    def _arm(self, now: int) -> None:
        times = [t for t in (self.mesh.get_timer(), self.connections.timer()) if t is not None]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if times:
            delay = max(0.0, (min(times) - now) / 1000)
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.mesh.handle_timer(clock.now_ms())
        self._service()

    def _on_commit(self, ticket: int, ops: int) -> None:
        self.mesh.stored(ticket, clock.now_ms())
        self.health.stored(ops)
        if not self.stopping:
            self._service()

    def _on_store_state(self) -> None:
        """The writer's error or congestion changed: take in ops from peers only while
        the store keeps up (the mesh fetches the rest later, sync.md §10.3)."""
        assert self._writer is not None
        paused = self._writer.error is not None or self._writer.congested
        if paused != self.mesh.paused:
            self.mesh.paused = paused
            log.info("%s ops from peers (%d ops waiting for the store)",
                     "pausing" if paused else "resuming", self._writer.queued_ops)

    # -- links ----------------------------------------------------------------------------

    def _on_link_open(self, link: Link) -> None:
        self._links[link.id] = link
        self.traffic.opened(link.id, clock.now_ms(), initiator=link.initiator)
        if isinstance(link.tag, Dial):  # before any frame: the session may open at once
            self.connections.link_opened(link.tag, link.id, clock.now_ms())
            cand = self.peering.candidates.get(link.tag.key)
            self.traffic.found(link.id, "relay" if link.tag.url is None else
                               cand.source.name.lower() if cand else "record")
        # A dial signaled to the peer's own port timed one round trip to it (and its
        # answering); a relayed offer crossed other links (sync.md §4.4, §7.2).
        direct = isinstance(link.tag, Dial) and link.tag.url is not None
        self.mesh.connection_made(link.id, link.binding, clock.now_ms(),
                                  initiator=link.initiator, address=_address(link),
                                  rtt_hint=link.signal_rtt_ms if direct else None)
        self._service()

    def _on_message(self, link: Link, data: bytes) -> None:
        self.traffic.received(link.id, len(data))
        self._inbound.received(link.id, data)

    def _take_frame(self, conn: int, data: bytes, verdicts: list[Verdict]) -> None:
        self.mesh.data_received(conn, data, clock.now_ms(), verdicts)
        self._service()

    def _on_link_close(self, link: Link) -> None:
        # After the frames it sent before closing, which may still be being checked.
        self._inbound.closed(link.id, lambda: self._link_closed(link))

    def _link_closed(self, link: Link) -> None:
        self._links.pop(link.id, None)
        self.traffic.closed(link.id)
        self.mesh.connection_lost(link.id, clock.now_ms())
        if not self.stopping:
            self._service()

    async def _write(self, body: Any, action: str) -> str:
        """Sign, commit, then acknowledge (and publish): DESIGN §8. Raises `NotWritable`
        (API 503) while writes are paused, `LocalError` (409) for a refused op."""
        assert self._writer is not None
        if self.stopping or self._writer.error is not None:
            raise NotWritable(self.writes_refused() or "")
        op = self.mesh.write(body, clock.now_ms())  # NotWritable while checking, or refused
        committed = self._writer.ack(self.mesh.ticket)
        self._service()  # hands the change to the writer
        await committed
        self.bus.publish("user.action", {"action": action, "op": op.id.hex()})
        return op.id.hex()

    async def register(self, name: str) -> str:
        return await self._write(Register(name), "register")

    async def post(self, text: str, channel: str, priority: int, to: bytes | None) -> str:
        return await self._write(Post(channel, text, priority, to), "post")

    async def claim(self) -> str:
        return await self._write(Claim(iso_week(clock.now_ms())), "claim")

    async def transfer(self, to: bytes, amount_cents: int, memo: str) -> str:
        return await self._write(Transfer(to, amount_cents, memo), "transfer")

    async def retract(self, post_id: bytes) -> str:
        return await self._write(Retract(post_id), "retract")

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        return self.bus.subscribe()
