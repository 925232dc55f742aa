"""What the node does with each event the mesh reports (protocols/sync.md §8): changes
go to the store writer and the event bus, the connection manager hears of every event,
and peers coming and going, forks, own-feed checks and bans are logged; refused input
only in a sum once a minute, so that a hostile peer cannot flood the log.

A mixin of `Node` (node.py), which owns every attribute named below.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .core.events import (
    Banned,
    Changed,
    ForkFound,
    Misbehaved,
    PeerDown,
    PeerUp,
    SignalReceived,
    SyncFinished,
    WritesOpened,
)
from .core.identity import id_to_text, short_id

if TYPE_CHECKING:
    from .api._http import Refusals
    from .bus import EventBus
    from .core.connections import Connections
    from .core.identity import Identity
    from .core.mesh import Mesh
    from .core.peering import Misdirected
    from .transport import Link
    from .writer import StoreWriter

log = logging.getLogger("liberation_node")

REJECTIONS_LOG_S = 60.0  # how often refused input is summed up in the log


class NodeEvents:
    """Events from the mesh: persisted, published, logged."""

    # Owned and set by Node (node.py).
    identity: Identity
    mesh: Mesh
    connections: Connections
    bus: EventBus
    refusals: Refusals
    _writer: StoreWriter | None
    _links: dict[int, Link]

    if TYPE_CHECKING:  # the other parts of Node, which these call
        def _spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]: ...
        def _misdirected(self, event: Misdirected) -> None: ...
        def _on_signal(self, event: SignalReceived) -> None: ...

    def _on_event(self, event: Any, now: int) -> None:
        misdirected = self.connections.on_event(event, now)
        if misdirected is not None:
            self._misdirected(misdirected)
        if isinstance(event, Changed):
            assert self._writer is not None
            self._writer.put(event)
            if self._writer.congested:
                self.mesh.paused = True
            self._publish_changes(event)
        elif isinstance(event, ForkFound):
            self._on_fork(event)
        elif isinstance(event, WritesOpened):
            if event.recovered:
                log.warning("this data directory was behind the network by %d of this node's "
                            "own ops (restored from an old copy, or writes were lost); they "
                            "came back from peers", event.recovered)
            if event.checked_with:
                log.info("own feed checked with %d peer(s): writes are open",
                         event.checked_with)
            else:
                log.warning("no peer could be reached to check this node's own feed; writes "
                            "are open. If this data directory was restored from a backup, "
                            "stop the node and run it with --recover")
        elif isinstance(event, PeerUp):
            link = self._links.get(event.conn)
            session = self.mesh.session(event.conn)
            hint = session.rtt_estimate_ms if session is not None else None
            log.info("peer up: %s (link %d, %s%s)", short_id(event.peer), event.conn,
                     link.remote_address if link else "?",
                     "" if hint is None else f", offer answered in {hint} ms")
            self.bus.publish("mesh.node.connected", {"peer": id_to_text(event.peer)})
        elif isinstance(event, PeerDown):
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
            # One line per bad input would let a peer flood the log: the reasons are
            # summed up once a minute (_report_rejections) and counted in /metrics.
            log.debug("peer %s sent bad input: %s %s",
                      short_id(event.peer) if event.peer else "?", event.reason, event.detail)
        elif isinstance(event, SyncFinished):
            if event.ops_received:
                log.info("sync on link %d: %d ops in %d round trips", event.conn,
                         event.ops_received, event.round_trips)
        elif isinstance(event, SignalReceived):
            self._on_signal(event)
        elif isinstance(event, Banned):
            # Rare, and rate-limited with the port's refusals: a swarm of addresses
            # cannot flood the log either.
            self.refusals.banned(event.key, short_id(event.peer) if event.peer else None,
                                 (event.until - now) // 1000, event.reason, event.count)

    def _publish_changes(self, event: Changed) -> None:
        if event.records or event.dropped_records:  # node.info / node.links: the mesh map
            self.bus.publish("mesh.topology", {"records": len(event.records),
                                               "dropped": len(event.dropped_records)})
        for op in event.applied:
            if op.kind in ("ledger.claim", "ledger.transfer", "human.register"):
                effect = self.mesh.replica.ledger.effects.get(op.id)
                self.bus.publish("resource.distributed", {
                    "op": op.id.hex(), "kind": op.kind, "author": id_to_text(op.author),
                    "status": "void" if effect and effect.void else "applied"})
            elif op.kind == "message.post":
                self.bus.publish("truth.spread", {"op": op.id.hex(),
                                                  "author": id_to_text(op.author)})

    def _on_fork(self, event: ForkFound) -> None:
        source = short_id(event.source) if event.source else "this node"
        if event.author == self.identity.public_key:
            log.error("THIS NODE'S IDENTITY HAS EQUIVOCATED: two different ops of %s at seq "
                      "%d (revealed by %s). Its feed is closed from there on every node; "
                      "writes are refused for good. Two copies of this data directory have "
                      "run, or one was restored after it had written. Keep identity.key "
                      "safe and start a new identity (a new data directory) to write again",
                      self.identity.text, event.seq, source)
        else:
            log.warning("node %s equivocated at seq %d (two ops at one position, revealed by "
                        "%s): its ops from there on are void", id_to_text(event.author),
                        event.seq, source)
        self.bus.publish("mesh.fork", {"author": id_to_text(event.author), "seq": event.seq})

    async def _report_rejections(self) -> None:
        """Refused input from peers, summed up once a minute (never per op: a hostile
        peer must not be able to flood the log)."""
        last: dict[str, int] = {}
        while True:
            await asyncio.sleep(REJECTIONS_LOG_S)
            now = dict(self.mesh.rejected)
            new = {k: v - last.get(k, 0) for k, v in now.items() if v > last.get(k, 0)}
            if new:
                log.info("refused from peers in the last %g s: %s", REJECTIONS_LOG_S,
                         ", ".join(f"{k} {v}" for k, v in sorted(new.items())))
            last = now
