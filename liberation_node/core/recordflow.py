"""Records through the mesh: our own published (node.info with our frontier, node.links),
those peers send taken in within quotas, and new ones spread along the gossip tree as
ops do (protocols/sync.md §5.6: records; §9.1: what a node takes in; ops.md §8: records).

A mixin of `Mesh` (mesh.py); the state it shares: meshstate.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import Reason
from .events import Changed, ConnId
from .ingested import Outcome
from .intake import BLAMELESS
from .meshstate import MeshState
from .peer import Peer
from .records import MAX_FRONTIER, NodeInfo, NodeLinks, Record, RecordBody, create_record
from .serving import send_records

if TYPE_CHECKING:
    from .frames import Records


class RecordFlow(MeshState):
    """Records published, received, evicted and spread."""

    def publish(self, body: RecordBody, now: int) -> Record:
        record = create_record(self.identity, network=self.network, version=now,
                               ttl_ms=self.config.record_ttl_ms, body=body)
        result = self.replica.add_record(record)
        if result.record is not None:
            self._events.append(Changed((), (), (record,), (), None))
            self.quotas.held(record)
            if record.kind == "node.info":
                self._new_presence(record, now)
            self.gossip.own(record.id)
            self._spread_records([record], None, now)
        return record

    def publish_presence(self, now: int) -> None:
        """Announce node.info (with our frontier, for message reach) and node.links."""
        frontier = sorted(self.replica.frontier().items(), key=lambda kv: (-kv[1], kv[0]))
        self.publish(NodeInfo(self.config.name, self.config.session.software, self.config.urls,
                              self.config.caps, tuple(sorted(frontier[:MAX_FRONTIER]))), now)
        links = {p.session.peer: p.session.rtt_ms or 0 for p in self._open_peers()
                 if p.session.peer is not None}
        self.publish(NodeLinks(tuple(sorted(links.items()))), now)

    def _on_records(self, peer: Peer, frame: Records, now: int) -> None:
        taken: list[Record] = []
        prune: set[ConnId] = set()
        gossip, conn = self.gossip, peer.conn
        for wire, hops in frame.records:
            result = self.replica.ingest_record(wire, now)
            record = result.record
            if record is not None:
                if result.replaced is None and self.quotas.no_room is not None:
                    self.replica.drop_record(record)  # a new key: no room for it now
                    self._count_rejection("no_room")
                    continue
                taken.append(record)
                self.quotas.held(record)
                if record.kind == "node.info":
                    self._new_presence(record, now)
                gossip.first(record.id, conn, hops, eager=frame.eager, now=now)
            elif result.outcome is Outcome.DUPLICATE:
                if frame.eager and result.id is not None:
                    victim = gossip.duplicate(result.id, conn, hops, now)
                    if victim is not None:
                        prune.add(victim)
            elif result.outcome is Outcome.REJECTED and result.rejection is not None:
                self._count_rejection(result.rejection.reason.value)
                if result.rejection.reason not in BLAMELESS | {Reason.RECORD_EXPIRED}:
                    self._strike(peer, result.rejection.reason.value, result.rejection.detail,
                                 now)
        for victim in prune:
            self._prune(victim)
        evicted = self._evict_records()
        taken = [r for r in taken if r not in evicted]
        gone = tuple(r for r in evicted if r.id not in {t.id for t in taken})
        if taken or gone:
            if peer.round is not None:
                peer.round.records_received += len(taken)
            self._events.append(Changed((), (), tuple(taken), gone, peer.session.peer))
        # A key at most once per `record_flood_ms` (sync.md §9.1): rounds carry the rest.
        self._spread_records([r for r in taken if self.quotas.may_flood(r, now)], peer, now)

    def _evict_records(self) -> list[Record]:
        """Keep at most `quotas.max_records` records (sync.md §9.1): drop the oldest
        versions that are neither ours nor an open peer's. Returns what was dropped."""
        if len(self.replica.records) <= self.config.quotas.max_records:
            return []
        keep = {p.session.peer for p in self._open_peers() if p.session.peer is not None}
        victims = self.quotas.evict(self.replica.records, keep)
        for record in victims:
            self.replica.drop_record(record)
        if victims:
            self._count_rejection("records_evicted")
        return victims

    def _spread_records(self, records: list[Record], source: Peer | None, now: int) -> None:
        """New records go the way new ops go: pushed along the gossip tree, announced to
        lazy peers by a ref with seq 0 (sync.md §5.6)."""
        if not records:
            return
        by_id = {r.id: r for r in records}
        pushed = self.gossip.delivered([(r.id, (r.author, 0, r.id)) for r in records],
                                       source.conn if source else None, now)
        for conn, items in pushed.items():
            target = self._peers.get(conn)
            if target is not None:
                send_records(target.session, [(by_id[i].wire, hops) for i, hops in items],
                             eager=True)

    def _new_presence(self, record: Record, now: int) -> None:
        """A `node.info` record is newly held: its author may be the beacon now (the node
        with the lowest id among those with a presence record), and the beacon's newest
        one is what shapes the gossip tree (gossip.py)."""
        beacon = self.gossip.beacon
        if beacon is None or record.author < beacon:
            self.gossip.beacon = record.author
        if record.author == self.gossip.beacon:
            self.gossip.track((record.author, 0, record.id), now)
