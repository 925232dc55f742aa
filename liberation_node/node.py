"""The node: core engine, store, transport, HTTP ports and connection manager, composed
(DESIGN §1 "node"; protocols/transport.md).

A thin asyncio driver around the sans-IO `Mesh`, in the style of aioquic's
asyncio adapter: every input (a frame, a link opening or closing, a local API
call) goes into the engine with `now`; then `_service()` drains what the engine
wants done: frames to send (bounded by each link's buffer: flow control),
events to act on (persist, log, publish on the bus, tell the connection
manager) and the one timer to re-arm. Store writes are batched by a single
writer task, so ops are stored in the order the replica applied them.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import __version__, clock, datadir
from .api import runfile
from .api.control import control_app
from .api.peer import SignalRefused, peer_app, send_offer
from .bootstrap import resolve as resolve_bootstrap
from .bus import EventBus
from .config import NodeConfig
from .core.bodies import Claim, Post, Register, Retract, Transfer
from .core.events import Changed, Misbehaved, PeerDown, PeerUp, SignalReceived, SyncFinished
from .core.identity import id_to_text, short_id
from .core.ledger import iso_week
from .core.mesh import Mesh
from .core.peering import Candidate, Dial, Peering, Source
from .core.records import NodeInfo
from .core.session import CloseReason
from .health import Health
from .store.base import Store
from .store.loader import open_replica
from .transport import TransportError

if TYPE_CHECKING:
    from .core.views import Views
    from .discovery.mdns import LanDiscovery
    from .transport import Link, WebRtcTransport

log = logging.getLogger("liberation_node")


WILDCARDS = ("0.0.0.0", "", "::")
# A signaling connection not established within this long is tried again (transport.md
# §3.7): after a partition heals, dials under way get through within about this long.
SIGNAL_CONNECT_EVERY_S = 1.0


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/v1/signal" if ":" in host else f"http://{host}:{port}/v1/signal"


def advertised_urls(cfg: NodeConfig, port: int) -> tuple[str, ...]:
    """The signaling URLs we publish in node.info (transport.md §3, A.1): the operator's
    --public-url; else the bound address; for a wildcard bind, the addresses ICE may
    use, else this host's non-loopback IPv4 addresses (a loopback URL would send other
    machines to themselves)."""
    if not cfg.advertise:
        return ()
    if cfg.public_urls:
        return cfg.public_urls
    if cfg.peer_host not in WILDCARDS:
        return (_url(cfg.peer_host, port),)
    hosts = list(cfg.transport.ice_addresses)
    if not hosts:
        import ifaddr  # the interface list aioice also uses

        hosts = sorted({str(ip.ip) for adapter in ifaddr.get_adapters() for ip in adapter.ips
                        if isinstance(ip.ip, str) and not ip.ip.startswith("127.")})
    return tuple(_url(h, port) for h in (hosts or ["127.0.0.1"])[:8])


class Node:
    """One running node. `await start()`, then `await stop()`; see daemon.py."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.dir = datadir.load(config.data_dir)
        self.identity = self.dir.identity
        self.bus = EventBus()
        self.started_at = clock.monotonic_s()
        self._entropy = os.urandom
        self._links: dict[int, Link] = {}
        self._store: Store | None = None
        self._writes: asyncio.Queue[Changed | None] = asyncio.Queue()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._signals: dict[int, asyncio.Future[dict[str, str]]] = {}  # relayed dials
        self._expected: dict[int, bytes] = {}  # link id -> node id a bootstrap list promised
        self._draining: set[int] = set()  # links we wait on to drain (flow control)
        self._dial_keys: dict[int, str] = {}  # link id -> the candidate we dialed
        self._runners: list[web.AppRunner] = []
        self._transport: WebRtcTransport | None = None
        self._lan: LanDiscovery | None = None  # mDNS (protocols/discovery.md)
        self.peer_url = ""
        self.control_url = ""
        self.stopping = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        self._store_cm = self.dir.open_store()
        self._store = await self._store_cm.__aenter__()
        now = clock.now_ms()
        replica = await open_replica(self._store, cfg.network, now=now)
        self.mesh = Mesh(self.identity, replica, cfg.mesh, self._entropy, now)
        self.peering = Peering(self.identity.public_key, cfg.peering,
                               rand=lambda: int.from_bytes(os.urandom(4), "big") / 2**32)
        self.health = Health(self)
        # The WebRTC stack loads in a thread while the node starts (see transport/__init__).
        self._transport_task = self._spawn(self._load_transport(), name="load transport")
        self._spawn(self._writer(), name="writer")
        peer_port = await self._serve(peer_app(self), cfg.peer_host, cfg.peer_port)
        control_port = await self._serve(control_app(self, self.dir.control_token()),
                                         cfg.control_host, cfg.control_port)
        urls = advertised_urls(cfg, peer_port)
        self.peer_url = urls[0] if urls else _url("127.0.0.1", peer_port)
        self.control_url = f"http://{cfg.control_host}:{control_port}"
        self.mesh.config = type(cfg.mesh)(**{**cfg.mesh.__dict__, "urls": urls,
                                             "name": cfg.name or cfg.mesh.name})
        for peer in resolve_bootstrap(cfg.bootstrap, cfg.network):
            self.peering.learn(peer.node_id, [peer.url], Source.BOOTSTRAP)
        if cfg.mdns.enabled:
            self._start_lan(peer_port)
        runfile.write(self.dir.path, pid=os.getpid(), control_url=self.control_url,
                      peer_url=self.peer_url)
        self._spawn(self.health.run(cfg.health_interval_s))
        log.info("node %s up on network %r: peer port %s, control %s", self.identity.text,
                 cfg.network, self.peer_url, self.control_url)
        self._service()

    def _start_lan(self, peer_port: int) -> None:
        from .discovery.mdns import LanDiscovery  # zeroconf loads only when mDNS is on

        cfg = self.config
        self._lan = LanDiscovery(
            cfg.mdns, me=self.identity.public_key, network=cfg.network,
            protocol=cfg.mesh.session.protocol_version, port=peer_port,
            bind_host=cfg.peer_host, ice_addresses=cfg.transport.ice_addresses,
            found=self._lan_found, lost=self._lan_lost)
        self._spawn(self._lan.start(), name="mdns")

    def _lan_found(self, node_id: bytes, urls: tuple[str, ...]) -> None:
        """A peer of our network advertised on the LAN: a candidate; the connection
        manager decides whether to dial it (discovery.md §6)."""
        self.peering.learn(node_id, urls, Source.MDNS)
        if not self.stopping:
            self._service()

    def _lan_lost(self, node_id: bytes) -> None:
        if self.peering.forget(node_id, Source.MDNS):
            log.info("forgot %s: its mDNS service is gone", short_id(node_id))

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

    async def _serve(self, app: web.Application, host: str, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        sockets = [s for s in (runner.addresses or [])]
        return int(sockets[0][1]) if sockets else port

    async def stop(self) -> None:
        """Drain: say goodbye to peers, flush the store, close everything."""
        if self.stopping:
            return
        self.stopping = True
        # mDNS goodbye first, so that LAN peers drop our record rather than redial us.
        lan = self._spawn(self._lan.close(), name="mdns goodbye") if self._lan else None
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
        self._writes.put_nowait(None)  # the writer flushes what is queued, then ends
        for task in list(self._tasks):
            if task.get_name() != "writer":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._store_cm.__aexit__(None, None, None)
        runfile.remove(self.dir.path)
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
                except (TransportError, ValueError, ConnectionError) as exc:
                    log.warning("send to link %d failed: %s", conn, exc)
        for conn, link in self._links.items():  # flow control: resume when drained
            if self.mesh.backlog(conn) and link.congested and conn not in self._draining:
                self._draining.add(conn)
                self._spawn(self._drain(conn, link))
        while (event := self.mesh.next_event()) is not None:  # sending can close sessions
            self._on_event(event, now)
        if not self.stopping:
            self._dial(now)
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
        times = [t for t in (self.mesh.get_timer(), self.peering.timer(now)) if t is not None]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if times:
            delay = max(0.0, (min(times) - now) / 1000)
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.mesh.handle_timer(clock.now_ms())
        self._learn_from_records()
        self._service()

    def _on_event(self, event: Any, now: int) -> None:
        if isinstance(event, Changed):
            self._writes.put_nowait(event)
            self._publish_changes(event)
        elif isinstance(event, PeerUp):
            expected = self._expected.pop(event.conn, None)
            if expected is not None and expected != event.peer:
                log.warning("link %d: expected %s, got %s; closing", event.conn,
                            short_id(expected), short_id(event.peer))
                self.mesh.close(event.conn, CloseReason.PROTOCOL_ERROR, "unexpected node id")
                return
            key = self._dial_keys.pop(event.conn, None)
            if key is not None:
                self.peering.adopt(key, event.peer)
            self.peering.connected(event.peer)
            link = self._links.get(event.conn)
            log.info("peer up: %s (link %d, %s)", short_id(event.peer), event.conn,
                     link.remote_address if link else "?")
            self.bus.publish("mesh.node.connected", {"peer": id_to_text(event.peer)})
        elif isinstance(event, PeerDown):
            if event.peer is not None:
                self.peering.disconnected(event.peer, now)
            log.info("peer down: %s (link %d): %s%s %s", short_id(event.peer) if event.peer
                     else "?", event.conn, "peer " if event.by_peer else "", event.reason,
                     event.detail)
            self.bus.publish("mesh.node.disconnected", {
                "peer": id_to_text(event.peer) if event.peer else None,
                "reason": event.reason, "detail": event.detail})
            link = self._links.pop(event.conn, None)
            if link is not None:
                self._spawn(link.close())
        elif isinstance(event, Misbehaved):
            if event.peer is not None:
                self.peering.misbehaved(event.peer)
            log.warning("peer %s sent bad input: %s %s",
                        short_id(event.peer) if event.peer else "?", event.reason, event.detail)
        elif isinstance(event, SyncFinished):
            if event.ops_received:
                log.info("sync on link %d: %d ops in %d round trips", event.conn,
                         event.ops_received, event.round_trips)
        elif isinstance(event, SignalReceived):
            self._on_signal(event)

    def _publish_changes(self, event: Changed) -> None:
        for op in event.applied:
            if op.kind in ("ledger.claim", "ledger.transfer", "human.register"):
                effect = self.mesh.replica.ledger.effects.get(op.id)
                self.bus.publish("resource.distributed", {
                    "op": op.id.hex(), "kind": op.kind, "author": id_to_text(op.author),
                    "status": "void" if effect and effect.void else "applied"})
            elif op.kind == "message.post":
                self.bus.publish("truth.spread", {"op": op.id.hex(),
                                                  "author": id_to_text(op.author)})

    async def _writer(self) -> None:
        """The single store writer: batches what is queued into one transaction."""
        assert self._store is not None
        while True:
            first = await self._writes.get()
            batch = [first]
            while not self._writes.empty():
                batch.append(self._writes.get_nowait())
            done = None in batch
            events = [e for e in batch if e is not None]
            if events:
                await self._store.write(
                    [op for e in events for op in e.applied],
                    [op for e in events for op in e.excluded],
                    [r for e in events for r in e.records],
                    [r for e in events for r in e.dropped_records])
                self.health.stored(sum(len(e.applied) for e in events))
            if done:
                return

    # -- links ----------------------------------------------------------------------------

    def _on_link_open(self, link: Link) -> None:
        self._links[link.id] = link
        self.mesh.connection_made(link.id, link.binding, clock.now_ms(),
                                  initiator=link.initiator)
        self._service()

    def _on_message(self, link: Link, data: bytes) -> None:
        self.mesh.data_received(link.id, data, clock.now_ms())
        self._service()

    def _on_link_close(self, link: Link) -> None:
        self._links.pop(link.id, None)
        self.mesh.connection_lost(link.id, clock.now_ms())
        if not self.stopping:
            self._service()

    # -- dialing --------------------------------------------------------------------------

    def _reachable(self, cand: Candidate) -> bool:
        return bool(cand.urls) or (cand.node_id is not None and bool(self.mesh.peers()))

    def _dial(self, now: int) -> None:
        peers = self.mesh.peers()
        connected = set(peers.values())
        for cand in self.peering.candidates.values():
            if cand.node_id in connected and not cand.connected:
                self.peering.connected(cand.node_id)
        for dial in self.peering.due(now, len(peers), self._reachable):
            self._spawn(self._dial_one(dial), name=f"dial {dial.key[:12]}")
        rtts = {}
        for conn, peer in peers.items():
            session = self.mesh.session(conn)
            rtts[peer] = session.rtt_ms if session else None
        for worst in self.peering.surplus(rtts):
            conn = next(c for c, p in peers.items() if p == worst)
            self.mesh.close(conn, CloseReason.TOO_MANY_PEERS, "replacing the worst peers")

    async def _dial_one(self, dial: Dial) -> None:
        network, me = self.config.network, self.identity.public_key
        try:
            if dial.url is not None:
                async def exchange(offer: dict[str, str]) -> dict[str, str]:
                    assert dial.url is not None
                    return await send_offer(dial.url, network, me, offer,
                                            timeout=self.config.transport.connect_timeout_s,
                                            connect_every=SIGNAL_CONNECT_EVERY_S)
            else:
                assert dial.node_id is not None
                target = dial.node_id

                async def exchange(offer: dict[str, str]) -> dict[str, str]:
                    return await self._relay_exchange(target, offer)
            log.info("dialing %s %s", short_id(dial.node_id) if dial.node_id else "",
                     dial.url or "by relay")
            link = await (await self.transport()).dial(exchange)
            if dial.node_id is not None:
                self._expected[link.id] = dial.node_id
            self._dial_keys[link.id] = dial.key
            self.peering.dial_done(dial.key, clock.now_ms())
        except Exception as exc:  # any failure of one dial is that dial's failure
            log.info("dial %s failed: %s", dial.url or dial.key[:12], exc)
            if self.peering.dial_failed(dial.key, clock.now_ms()):
                log.info("forgot %s: its mDNS record may be a dead node's (%d failed dials)",
                         short_id(dial.node_id) if dial.node_id else dial.key,
                         self.config.peering.mdns_max_failures)
                if self._lan is not None and dial.node_id is not None:
                    self._lan.forgotten(dial.node_id)  # asked about again later
            if not self.stopping:
                self._service()

    async def _relay_exchange(self, target: bytes, offer: dict[str, str]) -> dict[str, str]:
        nonce = int.from_bytes(os.urandom(6), "big")
        future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._signals[nonce] = future
        try:
            if not self.mesh.send_signal(target, json.dumps(offer), nonce):
                raise TransportError("no peer to relay through")
            self._service()
            answer: dict[str, str] = await asyncio.wait_for(
                future, self.config.transport.connect_timeout_s)
            return answer
        finally:
            self._signals.pop(nonce, None)

    def _on_signal(self, event: SignalReceived) -> None:
        try:
            payload = json.loads(event.payload)
        except ValueError:
            return
        if not isinstance(payload, dict):
            return
        if payload.get("type") == "answer":
            future = self._signals.get(event.nonce)
            if future is not None and not future.done():
                future.set_result({k: str(v) for k, v in payload.items()})
        elif payload.get("type") == "offer" and not self.stopping:
            self._spawn(self._answer_relayed(event, {k: str(v) for k, v in payload.items()}))

    def _full(self) -> bool:
        """No room for another peer: open sessions plus handshakes under way (A.4)."""
        connecting = self._transport.connecting if self._transport is not None else 0
        return len(self.mesh.peers()) + connecting >= self.config.peering.high + 2

    async def _answer_relayed(self, event: SignalReceived, offer: dict[str, str]) -> None:
        if self._full():
            return
        try:
            answer = await (await self.transport()).answer(offer)
        except Exception as exc:
            log.info("relayed offer from %s refused: %s", short_id(event.origin), exc)
            return
        self.mesh.send_signal(event.origin, json.dumps(answer), event.nonce)
        self._service()

    def _learn_from_records(self) -> None:
        """Peer exchange: every live node.info record is a candidate (DESIGN §4)."""
        now = clock.now_ms()
        for (author, kind), record in self.mesh.replica.records.items():
            if kind == "node.info" and record.expires > now and isinstance(record.body, NodeInfo):
                self.peering.learn(author, record.body.urls, Source.RECORD)

    # -- the peer port (api/peer.py PeerPortHandler) ----------------------------------------

    async def signal(self, network: str, from_id: bytes, offer: dict[str, str],
                     remote: str) -> dict[str, str]:
        if network != self.config.network:
            raise SignalRefused(403, f"this node is on network {self.config.network!r}")
        if from_id == self.identity.public_key:
            raise SignalRefused(403, "that is this node")
        if self.stopping or self._full():
            raise SignalRefused(503, "no room for more peers")
        try:
            return await (await self.transport()).answer(offer)
        except TransportError as exc:
            raise SignalRefused(400, str(exc)) from exc

    def info(self) -> dict[str, Any]:
        return {"node_id": self.identity.text, "network": self.config.network,
                "version": __version__, "protocol": self.config.mesh.session.protocol_version,
                "urls": list(self.mesh.config.urls)}

    # -- the control port (api/control.py NodeControl) --------------------------------------

    def status(self) -> dict[str, Any]:
        replica = self.mesh.replica
        peers = []
        for conn, peer in sorted(self.mesh.peers().items()):
            session = self.mesh.session(conn)
            link = self._links.get(conn)
            peers.append({"id": id_to_text(peer), "conn": conn,
                          "rtt_ms": session.rtt_ms if session else None,
                          "address": link.remote_address if link else None})
        return {
            "node_id": self.identity.text, "network": self.config.network,
            "version": __version__, "peers": peers, "ops": len(replica.ops),
            "authors": len(replica.feeds), "records": len(replica.records),
            "pending": len(replica.pending), "digest": replica.digest().hex(),
            "pool_available_cents": replica.ledger.pool_available,
            "humans": sum(1 for a in replica.ledger.accounts.values()
                          if a.registered_at is not None),
            "uptime_s": round(clock.monotonic_s() - self.started_at, 1),
            "peer_url": self.peer_url, "health": self.bus.last.get("system.health.check"),
            "transport": "ready" if self._transport is not None else "loading",
            "candidates": dict(sorted(Counter(c.source.name.lower()
                                              for c in self.peering.candidates.values()).items())),
            "mdns": self._lan.status() if self._lan is not None else None,
        }

    def views(self) -> Views:
        from .core.views import build_views  # only the API's views route needs it

        return build_views(self.mesh.replica, self.identity.public_key, clock.now_ms())

    def _write(self, body: Any, action: str) -> str:
        op = self.mesh.write(body, clock.now_ms())
        self.bus.publish("user.action", {"action": action, "op": op.id.hex()})
        self._service()
        return op.id.hex()

    def register(self, name: str) -> str:
        return self._write(Register(name), "register")

    def post(self, text: str, channel: str, priority: int, to: bytes | None) -> str:
        return self._write(Post(channel, text, priority, to), "post")

    def claim(self) -> str:
        return self._write(Claim(iso_week(clock.now_ms())), "claim")

    def transfer(self, to: bytes, amount_cents: int, memo: str) -> str:
        return self._write(Transfer(to, amount_cents, memo), "transfer")

    def retract(self, post_id: bytes) -> str:
        return self._write(Retract(post_id), "retract")

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        return self.bus.subscribe()
