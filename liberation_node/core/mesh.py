"""The mesh protocol engine: one replica, many peer sessions, gossip and anti-entropy
(protocols/sync.md).

Sans-IO in the style of aioquic: the driver (the asyncio daemon, or the
simulator) feeds transport events in with the current time, drains frames to
send and events to act on, and re-arms one timer:

    mesh.connection_made(conn, binding, now)      # transport connected
    mesh.data_received(conn, frame_bytes, now)     # one frame from the peer
    mesh.connection_lost(conn, now)                # transport gone
    mesh.handle_timer(now)                         # when now >= mesh.get_timer()
    mesh.write(body, now) / mesh.publish(record_body, now)    # local changes
    mesh.stored(ticket, now)                       # the store committed Changed <= ticket
    for conn, data in mesh.datagrams_to_send(now): transport.send(conn, data)
    while (event := mesh.next_event()) is not None: ...

Own writes become visible to peers only once stored (core/ownfeed.py, sync.md §10).

The engine is split along its nouns: sessions (session.py), gossip
(gossip.py: what to push to whom), anti-entropy rounds (antientropy.py), what
each peer is owed and its frames (serving.py), relayed signaling (relay.py) and
the own feed (ownfeed.py); this module routes frames between them and owns the
replica's changes.

Nothing here reads a clock, draws randomness (the caller passes `entropy`), or
does I/O, so the simulator runs exactly this code.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .antientropy import AntiEntropy, Entropy
from .bodies import Body
from .conduct import Conduct
from .errors import NotWritable, Reason
from .events import (
    Changed,
    ConnId,
    Event,
    ForkFound,
    Misbehaved,
    PeerDown,
    PeerUp,
    WritesOpened,
)
from .frames import (
    MAX_REFS,
    TARGET_FRAME_BYTES,
    Frame,
    Graft,
    IHave,
    Ops,
    Prune,
    Records,
    Signal,
    SyncBuckets,
    SyncHeads,
    SyncOpen,
    SyncSame,
    Want,
)
from .gossip import Gossip, GossipConfig, Ref
from .identity import Identity
from .ops import Op
from .ownfeed import OwnFeed, OwnFeedConfig
from .peer import Peer
from .quotas import QuotaConfig, Quotas
from .records import MAX_FRONTIER, NodeInfo, NodeLinks, Record, RecordBody, create_record
from .relay import Relay
from .replica import Ingested, Outcome, Replica
from .scoring import Penalty, Scores, ScoringConfig, address_key
from .serving import Requested, ServeConfig, produce, request
from .session import CloseReason, Session, SessionClosed, SessionConfig, State

__all__ = ["Entropy", "Mesh", "MeshConfig"]

# Rejections that say nothing bad about the peer that relayed the op.
_BLAMELESS = {Reason.FORKED_AUTHOR, Reason.FROM_THE_FUTURE}

@dataclass(frozen=True)
class MeshConfig:
    name: str = ""
    urls: tuple[str, ...] = ()
    caps: tuple[str, ...] = ()
    session: SessionConfig = field(default_factory=SessionConfig)
    gossip: GossipConfig = field(default_factory=GossipConfig)
    sync_interval_ms: int = 10_000  # periodic anti-entropy per connection (jittered)
    sync_timeout_ms: int = 10_000  # a round not finished by then is abandoned
    want_retry_ms: int = 2_000  # re-ask for missing causal past after this
    record_refresh_ms: int = 60_000  # republish node.info / node.links
    # Records expire by the receiver's clock: the lifetime must outlast the clock
    # skew nodes tolerate (MAX_CLOCK_SKEW_MS, ops.md §5.4) plus a refresh period
    # and its jitter, or a node whose clock runs ahead drops live records and
    # never converges (ops.md §8.4).
    record_ttl_ms: int = 20 * 60_000
    max_strikes: int = 16  # invalid ops from one session before it is closed
    signal_ttl: int = 3  # hops a relayed offer/answer may travel (sync.md §7)
    max_signals_per_s: int = 20  # relayed signals accepted from one session
    own_feed: OwnFeedConfig = field(default_factory=OwnFeedConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)  # answers per peer (§4.8)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)  # bans (§4.7)
    quotas: QuotaConfig = field(default_factory=QuotaConfig)  # what is taken in (§9.2)
    # SYNC_OPEN and SYNC_HEADS answered per peer: honest rounds start >= 0.75 s apart.
    max_sync_per_s: float = 4.0
    sync_burst: int = 8


class Mesh:
    def __init__(self, identity: Identity, replica: Replica, config: MeshConfig,
                 entropy: Entropy, now: int) -> None:
        self.identity = identity
        self.replica = replica
        self.network = replica.network
        self.config = config
        self._entropy = entropy
        self._peers: dict[ConnId, Peer] = {}
        self._events: deque[Event] = deque()
        self.gossip = Gossip(config.gossip)
        self._requested: dict[tuple[bytes, int], int] = {}  # missing past -> asked at
        self._next_records = now
        self._next_want_sweep = now + config.want_retry_ms
        me = identity.public_key
        own = replica.feeds.get(me)
        self.own = OwnFeed(me, own.head_seq if own else 0, config.own_feed, now)
        if own is not None and own.fork_seq is not None:
            self.own.forked()
        self.sync = AntiEntropy(me, replica, self.own, interval_ms=config.sync_interval_ms,
                                timeout_ms=config.sync_timeout_ms, entropy=entropy,
                                events=self._events, opened=self._writes_opened)
        self.relay = Relay(me, replica, ttl=config.signal_ttl,
                           max_per_s=config.max_signals_per_s, events=self._events,
                           open_peers=self._open_peers)
        self.scores = Scores(config.scoring)
        self.conduct = Conduct(self.scores, self._events, lambda: self._peers.values(),
                               self._count_rejection)
        self._now = now  # the latest time the driver gave us
        self.quotas = Quotas(me, config.quotas)
        for record in replica.records.values():
            self.quotas.held(record)
        self.ticket = 0  # of the last Changed event
        self.rejected: dict[str, int] = {}  # ops and records refused, by reason (cumulative)
        # Backpressure from the driver (its store cannot keep up, or cannot commit):
        # OPS frames are not taken in meanwhile; anti-entropy fetches them later.
        self.paused = False

    @property
    def deferred(self) -> int:
        """OPS frames not taken in while paused."""
        return self.sync.deferred

    # -- connections ----------------------------------------------------------------------

    def connection_made(self, conn: ConnId, binding: bytes, now: int, *, initiator: bool,
                        address: str | None = None) -> None:
        """The transport to a peer is up; `binding` is the value both ends sign (sync.md §4.1).
        `address` names where it comes from (the driver's choice of key, e.g. an IP
        address): scores and bans hold for it as for the peer's node id (§4.7)."""
        nonce = int.from_bytes(self._entropy(6), "big")
        session = Session(self.identity, self.network, binding, now, self.config.session, nonce)
        self._peers[conn] = Peer(conn, session, initiator, address)
        if address is not None and self.scores.banned(address_key(address), now):
            session.close(CloseReason.BANNED, "this address is banned for a while")

    def connection_lost(self, conn: ConnId, now: int) -> None:
        peer = self._peers.get(conn)
        if peer is not None:
            peer.session.transport_lost()
            self._drop(peer, now)

    def close(self, conn: ConnId, reason: str = CloseReason.SHUTDOWN, detail: str = "") -> None:
        peer = self._peers.get(conn)
        if peer is not None:
            peer.session.close(reason, detail)

    def peers(self) -> dict[ConnId, bytes]:
        """Open sessions: connection -> peer node id."""
        return {c: p.session.peer for c, p in self._peers.items()
                if p.session.state is State.OPEN and p.session.peer is not None}

    def backlog(self, conn: ConnId) -> int:
        """Answers still owed to the peer on `conn` (sent as its link drains)."""
        peer = self._peers.get(conn)
        return peer.owed.answers if peer else 0

    def banned(self, address: str, now: int) -> bool:
        """Is `address` (as the driver names addresses) banned now? (sync.md §4.7)"""
        return self.scores.banned(address_key(address), now)

    def clock_offset(self) -> int | None:
        """Our clock minus the median of our peers' clocks (ms), from their PONGs;
        None before any peer answered a PING (sync.md §4.4)."""
        offsets = sorted(p.session.clock_offset_ms for p in self._open_peers()
                         if p.session.clock_offset_ms is not None)
        if not offsets:
            return None
        mid = len(offsets) // 2
        median = offsets[mid] if len(offsets) % 2 else (offsets[mid - 1] + offsets[mid]) // 2
        return -median

    def session(self, conn: ConnId) -> Session | None:
        peer = self._peers.get(conn)
        return peer.session if peer else None

    def _drop(self, peer: Peer, now: int) -> None:
        self._peers.pop(peer.conn, None)
        self.gossip.peer_down(peer.conn)
        self.sync.peer_gone(peer)
        reason, detail, by_peer = peer.session.close_reason or (CloseReason.SHUTDOWN, "", False)
        self.conduct.closed(peer, reason, by_peer, now)
        self._events.append(PeerDown(peer.conn, peer.session.peer, reason, detail, by_peer))

    # -- input ----------------------------------------------------------------------------

    def data_received(self, conn: ConnId, data: bytes, now: int) -> None:
        peer = self._peers.get(conn)
        if peer is None:
            return
        was_open = peer.session.state is State.OPEN
        try:
            frame = peer.session.receive(data, now)
        except SessionClosed:
            return  # the CLOSE goes out with the next datagrams_to_send; then we drop it
        if not was_open and peer.session.state is State.OPEN:
            self._opened(peer, now)
        if frame is not None:
            self._dispatch(peer, frame, now)

    def _opened(self, peer: Peer, now: int) -> None:
        assert peer.session.peer is not None
        if self.conduct.banned(peer, now):
            peer.session.close(CloseReason.BANNED, "this node is banned for a while")
            return
        for other in self._peers.values():
            if other is not peer and other.session.peer == peer.session.peer \
                    and other.session.state is State.OPEN:
                # Two connections to one peer (both dialed): keep the one dialed by the
                # lower node id, so both ends pick the same one (sync.md §4.2).
                me_lower = self.identity.public_key < peer.session.peer
                keep_new = peer.initiator == me_lower
                loser = other if keep_new else peer
                loser.session.close(CloseReason.DUPLICATE_PEER, "already connected")
                if loser is peer:
                    return
        self.gossip.peer_up(peer.conn)
        self._events.append(PeerUp(peer.conn, peer.session.peer))
        self.sync.peer_opened(peer, now)
        # Every record we hold, as its link and serve budget allow (sync.md §5.6, §4.8).
        peer.owed.queue_records(list(self.replica.records), self.config.serve)

    def _dispatch(self, peer: Peer, frame: Frame, now: int) -> None:
        if isinstance(frame, Ops):
            self._on_ops(peer, frame, now)
        elif isinstance(frame, IHave):
            have = {r[2] for r in frame.refs
                    if r[2] in self.replica.ops or r[2] in self.replica.pending}
            self.gossip.announced(peer.conn, list(frame.refs), have, now)
        elif isinstance(frame, Graft):
            self.gossip.grafted(peer.conn)
            ids = [op_id for _, _, op_id in frame.refs]
            dropped = 0
            for op_id in dict.fromkeys(ids):
                op = self.replica.ops.get(op_id)
                if op is not None and self.own.visible(op):
                    dropped += not peer.owed.queue_op(op_id, op.wire, self.config.serve)
            self.conduct.requested(peer, Requested(len(set(ids)) < len(ids), dropped), now)
        elif isinstance(frame, Prune):
            self.gossip.pruned(peer.conn)
        elif isinstance(frame, Records):
            self._on_records(peer, frame, now)
        elif isinstance(frame, SyncOpen | SyncHeads) and not peer.take_sync(
                now, self.config.max_sync_per_s, self.config.sync_burst):
            self._count_rejection("sync_flood")  # unanswered: its round times out
            self.conduct.penalize(peer, Penalty.SYNC_FLOOD, now)
        elif isinstance(frame, SyncOpen):
            self.sync.on_open(peer, frame)
        elif isinstance(frame, SyncSame | SyncBuckets):
            self.sync.on_reply(peer, frame)
        elif isinstance(frame, SyncHeads):
            self._serve(peer, *self.sync.on_heads(peer, frame), now)
        elif isinstance(frame, Signal):
            if not self.relay.received(peer, frame, now):
                self.conduct.penalize(peer, Penalty.SIGNAL_FLOOD, now)
        elif isinstance(frame, Want):
            self._serve(peer, list(frame.ranges), list(frame.forks), list(frame.records), now)
            self.sync.on_want(peer, frame)

    def _serve(self, peer: Peer, ranges: list[tuple[bytes, int, int]], proof_authors: list[bytes],
               record_keys: list[tuple[bytes, str]], now: int) -> None:
        self.conduct.requested(peer, request(peer.owed, self.replica, ranges, proof_authors,
                                         record_keys, self.config.serve,
                                         self.sync.buckets), now)

    def _on_ops(self, peer: Peer, frame: Ops, now: int) -> None:
        if self.paused:
            self.sync.deferred += 1
            return
        results: list[Ingested] = []
        duplicate_push = False
        admit = lambda op: self.quotas.admit_op(op, now)  # noqa: E731
        for wire in frame.ops:
            result = self.replica.ingest(wire, now, admit)
            results.append(result)
            if result.outcome is Outcome.DEFERRED:  # local policy: no blame, asked again later
                self._count_rejection(result.deferred)
                continue
            for _, waiter_rejection in result.rejected_waiters:
                self._count_rejection(waiter_rejection.reason.value)
            if result.outcome is Outcome.DUPLICATE and frame.eager:
                duplicate_push = True
            elif result.outcome is Outcome.REJECTED:
                assert result.rejection is not None
                self._count_rejection(result.rejection.reason.value)
                if result.rejection.reason not in _BLAMELESS:
                    self._strike(peer, result.rejection.reason.value, result.rejection.detail,
                                 now)
            elif result.outcome is Outcome.PENDING and result.missing is not None:
                self._ask_past(peer, result.missing.author, result.missing.seq, now)
        if peer.round is not None:
            peer.round.ops_received += sum(len(r.applied) for r in results)
        if duplicate_push and self.gossip.duplicate_push(peer.conn):
            peer.session.send(Prune())
        self._changed(results, (), (), source=peer, now=now)

    def _on_records(self, peer: Peer, frame: Records, now: int) -> None:
        taken: list[Record] = []
        for wire in frame.records:
            result = self.replica.ingest_record(wire, now)
            if result.record is not None:
                if result.replaced is None and self.quotas.no_room is not None:
                    self.replica.drop_record(result.record)  # a new key: no room for it now
                    self._count_rejection("no_room")
                    continue
                taken.append(result.record)
                self.quotas.held(result.record)
            elif result.outcome is Outcome.REJECTED and result.rejection is not None:
                self._count_rejection(result.rejection.reason.value)
                if result.rejection.reason not in _BLAMELESS | {Reason.RECORD_EXPIRED}:
                    self._strike(peer, result.rejection.reason.value, result.rejection.detail,
                                 now)
        evicted = self._evict_records()
        taken = [r for r in taken if r not in evicted]
        held = tuple(r for r in evicted if r.id not in {t.id for t in taken})
        if taken or held:
            self._events.append(Changed((), (), tuple(taken), held, peer.session.peer))
        flood = [r.key for r in taken if self.quotas.may_flood(r, now)]
        if flood:
            for other in self._open_peers():
                if other is not peer:
                    other.owed.queue_records(flood, self.config.serve)

    def _evict_records(self) -> list[Record]:
        """Keep at most `quotas.max_records` records (sync.md §9.2): drop the oldest
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

    def _count_rejection(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def _strike(self, peer: Peer, reason: str, detail: str, now: int) -> None:
        peer.strikes += 1
        self._events.append(Misbehaved(peer.conn, peer.session.peer, reason, detail))
        self.conduct.penalize(peer, Penalty.INVALID_INPUT, now)
        if peer.strikes > self.config.max_strikes:
            peer.session.close(CloseReason.MISBEHAVING, f"{peer.strikes} invalid inputs")

    def _ask_past(self, peer: Peer, author: bytes, seq: int, now: int) -> None:
        """Ask `peer` for an op's missing past: everything of `author` we lack up to `seq`."""
        asked = self._requested.get((author, seq))
        if asked is not None and now - asked < self.config.want_retry_ms:
            return
        self._requested[(author, seq)] = now
        feed = self.replica.feeds.get(author)
        start = feed.head_seq + 1 if feed is not None and feed.head_seq < seq else seq
        peer.session.send(Want(0, ((author, start, seq),), (), ()))

    # -- relayed signaling (sync.md §7.2) --------------------------------------------------

    def send_signal(self, to: bytes, payload: str, nonce: int) -> bool:
        """Send an offer/answer towards `to` through the mesh; False if no peer to send to."""
        return self.relay.send(to, payload, nonce)

    def relay_path(self, to: bytes) -> bool:
        """Is `to` a peer of one of our peers, by their node.links records? (relay.py)"""
        return self.relay.path(to)

    # -- local writes ---------------------------------------------------------------------

    def write(self, body: Body, now: int) -> Op:
        """Append an op to our own feed. It is gossiped once stored (`stored(self.ticket)`).

        Raises `NotWritable` while writes are paused (sync.md §10.2) and `LocalError`
        for an op that would be void."""
        reason = self.own.writable()
        if reason is not None:
            raise NotWritable(reason)
        result = self.replica.append(self.identity, body, now)
        self._changed([result], (), (), source=None, now=now)
        return result.applied[0]

    def stored(self, ticket: int, now: int) -> None:
        """The store committed every `Changed` up to `ticket`: held own writes go out."""
        released = self.own.stored(ticket)
        if released:
            self._gossip(released, None, now)

    def writable(self) -> str | None:
        """None when `write` may be called; else why writes are paused now."""
        return self.own.writable()

    def publish(self, body: RecordBody, now: int) -> Record:
        record = create_record(self.identity, network=self.network, version=now,
                               ttl_ms=self.config.record_ttl_ms, body=body)
        result = self.replica.add_record(record)
        if result.record is not None:
            self.quotas.held(record)
            self._events.append(Changed((), (), (record,), (), None))
            for peer in self._open_peers():
                peer.owed.queue_records([record.key], self.config.serve)
        return record

    def publish_presence(self, now: int) -> None:
        """Announce node.info (with our frontier, for message reach) and node.links."""
        frontier = sorted(self.replica.frontier().items(), key=lambda kv: (-kv[1], kv[0]))
        self.publish(NodeInfo(self.config.name, self.config.session.software, self.config.urls,
                              self.config.caps, tuple(sorted(frontier[:MAX_FRONTIER]))), now)
        links = {p.session.peer: p.session.rtt_ms or 0 for p in self._open_peers()
                 if p.session.peer is not None}
        self.publish(NodeLinks(tuple(sorted(links.items()))), now)

    # -- shared paths ---------------------------------------------------------------------

    def _changed(self, results: Iterable[Ingested], records: tuple[Record, ...],
                 dropped: tuple[Record, ...], source: Peer | None, now: int) -> None:
        applied: list[Op] = []
        excluded: list[Op] = []
        for result in results:
            applied.extend(result.applied)
            excluded.extend(result.excluded)
        if not (applied or excluded or records or dropped):
            return
        self.ticket += 1
        sender = source.session.peer if source else None
        self._events.append(Changed(tuple(applied), tuple(excluded), records, dropped,
                                    sender, self.ticket))
        for result in results:
            for author in result.forked:
                feed = self.replica.feeds[author]
                self._events.append(ForkFound(author, feed.fork_seq or 0, sender))
                if author == self.identity.public_key:
                    self.own.forked()
                for peer in self._open_peers():  # a peer whose own identity equivocated
                    if peer.session.peer == author:
                        self.conduct.penalize(peer, Penalty.EQUIVOCATION, now)
        for op in applied:
            self._requested.pop((op.author, op.seq), None)
        if source is None and applied:
            self.own.hold(self.ticket, applied)  # durable before seen (sync.md §10.1)
        elif applied:
            self._gossip(applied, source, now)

    def _gossip(self, applied: list[Op], source: Peer | None, now: int) -> None:
        refs: list[Ref] = [(op.author, op.seq, op.id) for op in applied]
        by_id = {op.id: op for op in applied}
        for conn, pushed in self.gossip.delivered(refs, source.conn if source else None,
                                                  now).items():
            target = self._peers.get(conn)
            if target is not None:
                target.owed.eager.extend(by_id[r[2]].wire for r in pushed)

    def _open_peers(self) -> list[Peer]:
        return [p for p in self._peers.values() if p.session.state is State.OPEN]

    def _writes_opened(self) -> None:
        feed = self.replica.feeds.get(self.identity.public_key)
        head = feed.head_seq if feed else 0
        self._events.append(WritesOpened(self.own.checked_with,
                                         max(0, head - self.own.head_at_start)))

    # -- anti-entropy ---------------------------------------------------------------------

    def start_sync(self, conn: ConnId, now: int) -> bool:
        """Start an anti-entropy round on `conn` now (unless one is running there)."""
        peer = self._peers.get(conn)
        if peer is None or peer.session.state is not State.OPEN or peer.round is not None:
            return False
        self.sync.start(peer, now)
        return True

    # -- time -----------------------------------------------------------------------------

    def get_timer(self) -> int | None:
        times = [self._next_records, self._next_want_sweep]
        for t in (self.gossip.timer(), self.own.timer()):
            if t is not None:
                times.append(t)
        for peer in self._peers.values():
            t = peer.session.timer()
            if t is not None:
                times.append(t)
            if peer.session.state is State.OPEN:
                times.append(self.sync.timer(peer))
            ready = peer.owed.ready_at(self._now, self.config.serve)
            if ready is not None:  # answers waiting for the peer's serve budget
                times.append(ready)
        return min(times)

    def handle_timer(self, now: int) -> None:
        for peer in list(self._peers.values()):
            peer.session.handle_timer(now)
            if peer.session.state is not State.OPEN:
                continue
            self.sync.handle_timer(peer, now)
        if self.own.expire(now):
            self._writes_opened()
        announce, graft = self.gossip.due(now)
        for conn, refs in announce.items():
            target = self._peers.get(conn)
            for i in range(0, len(refs), MAX_REFS):  # each frame under 64 KiB
                if target is not None:
                    target.session.send(IHave(tuple(refs[i : i + MAX_REFS])))
        for conn, refs in graft.items():
            target = self._peers.get(conn)
            for i in range(0, len(refs), MAX_REFS):
                if target is not None:
                    target.session.send(Graft(tuple(refs[i : i + MAX_REFS])))
        if now >= self._next_want_sweep:
            self._sweep_wants(now)
            self._next_want_sweep = now + self.config.want_retry_ms
        if now >= self._next_records:
            dropped = tuple(self.replica.prune_records(now))
            if dropped:
                self._events.append(Changed((), (), (), dropped, None))
            self.publish_presence(now)
            self._next_records = now + self.sync.jitter(self.config.record_refresh_ms)

    def _sweep_wants(self, now: int) -> None:
        """Ask again, round-robin over peers, for causal past still missing."""
        open_peers = self._open_peers()
        if not open_peers:
            return
        self._requested = {k: t for k, t in self._requested.items()
                           if now - t < 10 * self.config.want_retry_ms}
        for i, dep in enumerate(self.replica.pending.wanted()):
            if i >= 256:
                break
            self._ask_past(open_peers[i % len(open_peers)], dep.author, dep.seq, now)

    # -- output ---------------------------------------------------------------------------

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self, now: int, budget: Callable[[ConnId], int] | None = None
                          ) -> list[tuple[ConnId, bytes]]:
        """Frames to transmit, per connection. `budget(conn)` caps the bytes of bulk data
        (sync ranges) produced for a connection now: the driver's flow control."""
        self._now = now
        out: list[tuple[ConnId, bytes]] = []
        for peer in list(self._peers.values()):
            limit = budget(peer.conn) if budget is not None else 4 * TARGET_FRAME_BYTES
            produce(peer.session, peer.owed, self.replica, self.own, limit, now,
                    self.config.serve)
            data = peer.session.take_output()
            if data:
                peer.session.note_sent(now)
                out.extend((peer.conn, d) for d in data)
            if peer.session.state is State.CLOSED:
                self._drop(peer, now)
        return out
