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

Nothing here reads a clock, draws randomness (the caller passes `entropy`), or
does I/O, so the simulator runs exactly this code.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import frames
from .bodies import Body, Post, PostHeader
from .bodyfetch import BodyFetch
from .errors import LocalError, NotWritable, Reason
from .events import (
    Changed,
    ConnId,
    Event,
    ForkFound,
    Misbehaved,
    PeerDown,
    PeerUp,
    SignalReceived,
    SyncFinished,
    WritesOpened,
)
from .frames import (
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
from .ownfeed import Gate, OwnFeed, OwnFeedConfig
from .reconcile import (
    BUCKET_HASH_BYTES,
    MAX_BITS,
    bucket_hashes,
    choose_bits,
    compare,
    differing,
    heads,
    resolve,
)
from .records import MAX_FRONTIER, NodeInfo, NodeLinks, Record, RecordBody, create_record
from .replica import Ingested, Outcome, Replica
from .sealing import SEAL_BYTES
from .session import CloseReason, Session, SessionClosed, SessionConfig, State

Entropy = Callable[[int], bytes]  # n -> n unpredictable bytes (os.urandom, or a seeded RNG)

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
    max_queued_ranges: int = 4_096  # per connection, for requests we serve
    signal_ttl: int = 3  # hops a relayed offer/answer may travel (sync.md §7)
    max_signals_per_s: int = 20  # relayed signals accepted from one session
    own_feed: OwnFeedConfig = field(default_factory=OwnFeedConfig)


@dataclass
class _Round:
    """An anti-entropy round we started on one connection."""

    id: int
    salt: bytes
    started: int
    authors: int  # the feed count we sent: what the responder sized buckets for
    stage: int = 1  # 1: sent OPEN, 2: sent HEADS
    ops_received: int = 0
    checks_own: bool = False  # asked for our own feed first (sync.md §10.2)
    deferred: int = 0  # Mesh.deferred when the round started


@dataclass
class _Peer:
    conn: ConnId
    session: Session
    initiator: bool
    round: _Round | None = None
    next_sync: int = 0
    strikes: int = 0
    serve: deque[tuple[bytes, int, int]] = field(default_factory=deque)  # ranges we owe
    signal_window: tuple[int, int] = (0, 0)  # (second, signals received in it)
    push: list[bytes] = field(default_factory=list)  # op wires to push (eager/graft/sync)
    push_eager: list[bytes] = field(default_factory=list)
    after_serve: list[Frame] = field(default_factory=list)  # sent once `serve` is empty


class Mesh:
    def __init__(self, identity: Identity, replica: Replica, config: MeshConfig,
                 entropy: Entropy, now: int) -> None:
        self.identity = identity
        self.replica = replica
        self.network = replica.network
        self.config = config
        self._entropy = entropy
        self._peers: dict[ConnId, _Peer] = {}
        self._events: deque[Event] = deque()
        self.gossip = Gossip(config.gossip)
        self.bodies = BodyFetch()  # post contents to fetch from peers (sync.md §7.3)
        self._requested: dict[tuple[bytes, int], int] = {}  # missing past -> asked at
        self._next_records = now
        self._next_want_sweep = now + config.want_retry_ms
        self._round_ids = 0
        self._signals_seen: dict[tuple[bytes, int], None] = {}  # bounded, oldest first
        me = identity.public_key
        own = replica.feeds.get(me)
        self.own = OwnFeed(me, own.head_seq if own else 0, config.own_feed, now)
        if own is not None and own.fork_seq is not None:
            self.own.forked()
        self.ticket = 0  # of the last Changed event
        self.rejected: dict[str, int] = {}  # ops and records refused, by reason (cumulative)
        # Backpressure from the driver (its store cannot keep up, or cannot commit):
        # OPS frames are not taken in meanwhile; anti-entropy fetches them later.
        self.paused = False
        self.deferred = 0  # OPS frames not taken in while paused

    # -- connections ----------------------------------------------------------------------

    def connection_made(self, conn: ConnId, binding: bytes, now: int, *, initiator: bool) -> None:
        """The transport to a peer is up; `binding` is the value both ends sign (sync.md §4.1)."""
        nonce = int.from_bytes(self._entropy(6), "big")
        session = Session(self.identity, self.network, binding, now, self.config.session, nonce)
        self._peers[conn] = _Peer(conn, session, initiator)

    def connection_lost(self, conn: ConnId, now: int) -> None:
        peer = self._peers.get(conn)
        if peer is not None:
            peer.session.transport_lost()
            self._drop(peer)

    def close(self, conn: ConnId, reason: str = CloseReason.SHUTDOWN, detail: str = "") -> None:
        peer = self._peers.get(conn)
        if peer is not None:
            peer.session.close(reason, detail)

    def peers(self) -> dict[ConnId, bytes]:
        """Open sessions: connection -> peer node id."""
        return {c: p.session.peer for c, p in self._peers.items()
                if p.session.state is State.OPEN and p.session.peer is not None}

    def backlog(self, conn: ConnId) -> int:
        """Feed ranges still owed to the peer on `conn` (sent as its link drains)."""
        peer = self._peers.get(conn)
        return len(peer.serve) if peer else 0

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

    def _drop(self, peer: _Peer) -> None:
        self._peers.pop(peer.conn, None)
        self.gossip.peer_down(peer.conn)
        self._own_round_ended(peer.conn, abandoned=True)
        reason, detail, by_peer = peer.session.close_reason or (CloseReason.SHUTDOWN, "", False)
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

    def _opened(self, peer: _Peer, now: int) -> None:
        assert peer.session.peer is not None
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
        # The dialer reconciles at once; the other side waits its turn (less redundancy),
        # unless it must check its own feed before writing (sync.md §10.2).
        peer.next_sync = now if peer.initiator or self.own.writable() else now + self._jitter(
            self.config.sync_interval_ms)
        self._send_records(peer, list(self.replica.records.values()))

    def _dispatch(self, peer: _Peer, frame: Frame, now: int) -> None:
        if isinstance(frame, Ops):
            self._on_ops(peer, frame, now)
        elif isinstance(frame, IHave):
            have = {r[2] for r in frame.refs
                    if r[2] in self.replica.ops or r[2] in self.replica.pending}
            self.gossip.announced(peer.conn, list(frame.refs), have, now)
        elif isinstance(frame, Graft):
            self.gossip.grafted(peer.conn)
            for _, _, op_id in frame.refs:
                op = self.replica.ops.get(op_id)
                if op is not None and self.own.visible(op):
                    peer.push.append(self.replica.carried(op))
        elif isinstance(frame, Prune):
            self.gossip.pruned(peer.conn)
        elif isinstance(frame, Records):
            self._on_records(peer, frame, now)
        elif isinstance(frame, SyncOpen):
            if frame.digest == self.replica.digest():
                peer.session.send(SyncSame(frame.round))
            else:
                bits = choose_bits(max(frame.authors, len(self.replica.feeds)))
                peer.session.send(SyncBuckets(frame.round, bits,
                                              bucket_hashes(self.replica, bits, frame.salt)))
        elif isinstance(frame, SyncSame | SyncBuckets):
            self._on_sync_reply(peer, frame, now)
        elif isinstance(frame, SyncHeads):
            plan = compare(self.replica, frame)
            self._serve(peer, plan.send_ranges, plan.send_proofs, plan.send_records)
            # The WANT ends our part of the round: it goes out after the ops we owe
            # (see datagrams_to_send), so the round's stats count them.
            peer.after_serve.extend(_wants(frame.round, plan.want_ranges, plan.want_forks,
                                           plan.want_records))
        elif isinstance(frame, Signal):
            self._on_signal(peer, frame, now)
        elif isinstance(frame, Want):
            self._serve(peer, list(frame.ranges), list(frame.forks), list(frame.records))
            rnd = peer.round
            if frame.round and rnd is not None and rnd.id == frame.round:
                self._finish_round(peer, in_sync=False,
                                   round_trips=3 if frame.ranges or frame.forks else 2)

    def _on_ops(self, peer: _Peer, frame: Ops, now: int) -> None:
        if self.paused:
            self.deferred += 1
            return
        results: list[Ingested] = []
        duplicate_push = False
        for wire in frame.ops:
            result = self.replica.ingest(wire, now)
            results.append(result)
            for _, waiter_rejection in result.rejected_waiters:
                self._count_rejection(waiter_rejection.reason.value)
            if result.outcome is Outcome.DUPLICATE and frame.eager:
                duplicate_push = True
            elif result.outcome is Outcome.REJECTED:
                assert result.rejection is not None
                self._count_rejection(result.rejection.reason.value)
                if result.rejection.reason not in _BLAMELESS:
                    self._strike(peer, result.rejection.reason.value, result.rejection.detail)
            elif result.outcome is Outcome.PENDING and result.missing is not None:
                self._ask_past(peer, result.missing.author, result.missing.seq, now)
            if result.content_rejection is not None:  # ops.md §12.4: never relayed honestly
                self._count_rejection(result.content_rejection.reason.value)
                self._strike(peer, result.content_rejection.reason.value,
                             result.content_rejection.detail)
        if peer.round is not None:
            peer.round.ops_received += sum(len(r.applied) for r in results)
        if duplicate_push and self.gossip.duplicate_push(peer.conn):
            peer.session.send(Prune())
        self._changed(results, (), (), source=peer, now=now)

    def _on_records(self, peer: _Peer, frame: Records, now: int) -> None:
        taken: list[Record] = []
        for wire in frame.records:
            result = self.replica.ingest_record(wire, now)
            if result.record is not None:
                taken.append(result.record)
            elif result.outcome is Outcome.REJECTED and result.rejection is not None:
                self._count_rejection(result.rejection.reason.value)
                if result.rejection.reason not in _BLAMELESS | {Reason.RECORD_EXPIRED}:
                    self._strike(peer, result.rejection.reason.value, result.rejection.detail)
        if taken:
            self._events.append(Changed((), (), tuple(taken), (), peer.session.peer))
            for other in self._open_peers():
                if other is not peer:
                    self._send_records(other, taken)

    def _count_rejection(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def _strike(self, peer: _Peer, reason: str, detail: str) -> None:
        peer.strikes += 1
        self._events.append(Misbehaved(peer.conn, peer.session.peer, reason, detail))
        if peer.strikes > self.config.max_strikes:
            peer.session.close(CloseReason.MISBEHAVING, f"{peer.strikes} invalid inputs")

    def _ask_past(self, peer: _Peer, author: bytes, seq: int, now: int) -> None:
        """Ask `peer` for an op's missing past: everything of `author` we lack up to `seq`."""
        asked = self._requested.get((author, seq))
        if asked is not None and now - asked < self.config.want_retry_ms:
            return
        self._requested[(author, seq)] = now
        feed = self.replica.feeds.get(author)
        start = feed.head_seq + 1 if feed is not None and feed.head_seq < seq else seq
        peer.session.send(Want(0, ((author, start, seq),), (), ()))

    # -- relayed signaling (sync.md §7) ----------------------------------------------------

    def send_signal(self, to: bytes, payload: str, nonce: int) -> bool:
        """Send an offer/answer towards `to` through the mesh; False if no peer to send to."""
        frame = Signal(to, self.identity.public_key, nonce, self.config.signal_ttl, payload)
        self._remember_signal(frame)
        return self._route_signal(frame, exclude=None)

    def _on_signal(self, peer: _Peer, frame: Signal, now: int) -> None:
        second, count = peer.signal_window
        if now // 1000 != second:
            second, count = now // 1000, 0
        peer.signal_window = (second, count + 1)
        if count + 1 > self.config.max_signals_per_s or not self._remember_signal(frame):
            return  # over the budget, or seen already: drop quietly
        if frame.to == self.identity.public_key:
            self._events.append(SignalReceived(peer.conn, frame.origin, frame.nonce,
                                               frame.payload))
        elif frame.ttl > 0:
            self._route_signal(Signal(frame.to, frame.origin, frame.nonce, frame.ttl - 1,
                                      frame.payload), exclude=peer)

    def _remember_signal(self, frame: Signal) -> bool:
        key = (frame.origin, frame.nonce)
        if key in self._signals_seen:
            return False
        self._signals_seen[key] = None
        if len(self._signals_seen) > 4096:
            del self._signals_seen[next(iter(self._signals_seen))]
        return True

    def _route_signal(self, frame: Signal, exclude: _Peer | None) -> bool:
        """To the destination if connected; else to peers whose node.links name it; else
        to every peer (the TTL bounds the flood)."""
        candidates = [p for p in self._open_peers() if p is not exclude]
        direct = [p for p in candidates if p.session.peer == frame.to]
        if not direct:
            direct = [p for p in candidates if self._links_to(p.session.peer, frame.to)]
        targets = direct or candidates
        for target in targets:
            target.session.send(frame)
        return bool(targets)

    def relay_path(self, to: bytes) -> bool:
        """Is `to` a peer of one of our peers, by their node.links records? A relayed dial
        needs that (transport.md §7.7): flooding offers at a node nobody links to any
        more (a browser tab that left) would cost every relay and reach no one."""
        return any(self._links_to(p.session.peer, to) for p in self._open_peers())

    def _links_to(self, node: bytes | None, to: bytes) -> bool:
        record = self.replica.records.get((node, "node.links")) if node else None
        return record is not None and isinstance(record.body, NodeLinks) and any(
            peer == to for peer, _ in record.body.links)

    # -- local writes ---------------------------------------------------------------------

    def write(self, body: Body, now: int) -> Op:
        """Append an op to our own feed. It is gossiped once stored (`stored(self.ticket)`).

        Raises `NotWritable` while writes are paused (the own feed is being checked,
        sync.md §10.2) and `LocalError` for good: an op that would be void, or an
        identity that has equivocated."""
        reason = self.own.writable()
        if reason is not None:
            raise (LocalError if self.own.gate is Gate.FORKED else NotWritable)(reason)
        # A direct message is sealed with fresh randomness from the driver (ops.md §13.3).
        seal = self._entropy(SEAL_BYTES) if isinstance(body, Post) and body.to else None
        result = self.replica.append(self.identity, body, now, seal)
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
            self._events.append(Changed((), (), (record,), (), None))
            for peer in self._open_peers():
                self._send_records(peer, [record])
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
                 dropped: tuple[Record, ...], source: _Peer | None, now: int) -> None:
        applied: list[Op] = []
        excluded: list[Op] = []
        contents: list[tuple[bytes, bytes | None]] = []
        for result in results:
            applied.extend(result.applied)
            excluded.extend(result.excluded)
            contents.extend(result.contents)
        if not (applied or excluded or records or dropped or contents):
            return
        self.ticket += 1
        sender = source.session.peer if source else None
        self._events.append(Changed(tuple(applied), tuple(excluded), records, dropped,
                                    sender, self.ticket, tuple(contents)))
        self._track_contents(applied, contents, now)
        for result in results:
            for author in result.forked:
                feed = self.replica.feeds[author]
                self._events.append(ForkFound(author, feed.fork_seq or 0, sender))
                if author == self.identity.public_key:
                    self.own.forked()
        for op in applied:
            self._requested.pop((op.author, op.seq), None)
        if source is None and applied:
            self.own.hold(self.ticket, applied)  # durable before seen (sync.md §10.1)
        elif applied:
            self._gossip(applied, source, now)

    def _track_contents(self, applied: list[Op], contents: list[tuple[bytes, bytes | None]],
                        now: int) -> None:
        """Want the contents of new headers that came without one (sync.md §7.3)."""
        for op_id, content in contents:
            if content is not None:
                self.bodies.got(op_id)
        held = self.replica.contents
        for op in applied:
            if isinstance(op.body, PostHeader) and held.wants(op, now):
                self.bodies.want(op, now)

    def _gossip(self, applied: list[Op], source: _Peer | None, now: int) -> None:
        refs: list[Ref] = [(op.author, op.seq, op.id) for op in applied]
        by_id = {op.id: op for op in applied}
        for conn, pushed in self.gossip.delivered(refs, source.conn if source else None,
                                                  now).items():
            target = self._peers.get(conn)
            if target is not None:
                target.push_eager.extend(self.replica.carried(by_id[r[2]]) for r in pushed)

    def _serve(self, peer: _Peer, ranges: list[tuple[bytes, int, int]], proof_authors: list[bytes],
               record_keys: list[tuple[bytes, str]]) -> None:
        """Queue what the peer asked for; authors may be 8-byte prefixes (sync.md §6.4)."""
        names = resolve(self.replica, [r[0] for r in ranges] + proof_authors
                        + [k[0] for k in record_keys])
        for name, first, last in ranges:
            first = max(1, first)  # seq 0 names no op
            for author in names.get(name, ()):
                if len(peer.serve) >= self.config.max_queued_ranges:
                    break  # the peer asks again in a later round
                if first <= last:
                    peer.serve.append((author, first, last))
        for name in proof_authors:
            for author in names.get(name, ()):
                feed = self.replica.feeds.get(author)
                if feed is not None:
                    peer.push.extend(self.replica.carried(p) for p in feed.proofs)
        wanted = [self.replica.records[(author, kind)] for name, kind in record_keys
                  for author in names.get(name, ()) if (author, kind) in self.replica.records]
        self._send_records(peer, wanted)

    def _send_records(self, peer: _Peer, records: list[Record]) -> None:
        batch: list[bytes] = []
        size = 0
        for record in records:
            if batch and size + len(record.wire) > TARGET_FRAME_BYTES:
                peer.session.send(Records(tuple(batch)))
                batch, size = [], 0
            batch.append(record.wire)
            size += len(record.wire) + 3
        if batch:
            peer.session.send(Records(tuple(batch)))

    def _open_peers(self) -> list[_Peer]:
        return [p for p in self._peers.values() if p.session.state is State.OPEN]

    # -- anti-entropy ---------------------------------------------------------------------

    def start_sync(self, conn: ConnId, now: int) -> bool:
        """Start an anti-entropy round on `conn` now (unless one is running there)."""
        peer = self._peers.get(conn)
        if peer is None or peer.session.state is not State.OPEN or peer.round is not None:
            return False
        self._start_round(peer, now)
        return True

    def _start_round(self, peer: _Peer, now: int) -> None:
        self._round_ids += 1
        rnd = _Round(self._round_ids, self._entropy(8), now, len(self.replica.feeds),
                     deferred=self.deferred)
        peer.round = rnd
        if self.own.round_started(peer.conn):
            # Our own feed above our head first: the peer serves requests in order, so
            # the round's closing WANT (or SYNC_SAME) follows those ops (sync.md §10.2).
            me = self.identity.public_key
            feed = self.replica.feeds.get(me)
            rnd.checks_own = True
            peer.session.send(Want(0, ((me, (feed.head_seq if feed else 0) + 1, MAX_SEQ),),
                                   (), ()))
        peer.session.send(SyncOpen(rnd.id, self.replica.digest(), rnd.authors, rnd.salt))

    def _on_sync_reply(self, peer: _Peer, frame: SyncSame | SyncBuckets, now: int) -> None:
        rnd = peer.round
        if rnd is None or rnd.id != frame.round or rnd.stage != 1:
            return  # a late answer to a round we gave up on
        if isinstance(frame, SyncSame):
            self._finish_round(peer, in_sync=True, round_trips=1)
            return
        # Fewer bits than the feed count we announced calls for would make our buckets
        # too big for one SYNC_HEADS: a responder MUST size buckets for both sides
        # (sync.md §6.3). Feeds we learnt since are fine: `heads` sends partial buckets.
        if not choose_bits(rnd.authors) <= frame.bits <= MAX_BITS \
                or len(frame.hashes) != BUCKET_HASH_BYTES << frame.bits:
            peer.session.close(CloseReason.PROTOCOL_ERROR, "SYNC_BUCKETS of the wrong size")
            return
        mine = bucket_hashes(self.replica, frame.bits, rnd.salt)
        rnd.stage = 2
        peer.session.send(heads(self.replica, rnd.id, frame.bits, differing(mine, frame.hashes),
                                rotate=int.from_bytes(rnd.salt[:4], "big")))

    def _finish_round(self, peer: _Peer, *, in_sync: bool, round_trips: int) -> None:
        rnd = peer.round
        assert rnd is not None
        peer.round = None
        if rnd.checks_own:
            self._own_round_ended(peer.conn, abandoned=self.deferred != rnd.deferred)
        self._events.append(SyncFinished(peer.conn, rnd.id, in_sync, round_trips,
                                         rnd.ops_received))
        # Not in sync yet (e.g. the heads did not all fit): go again soon.
        # (round_trips counts the last WANT of the round only: sync.md A.19.)
        base = self.config.sync_interval_ms if in_sync else self.config.sync_interval_ms // 10
        peer.next_sync = rnd.started + self._jitter(base)

    def _own_round_ended(self, conn: ConnId, *, abandoned: bool) -> None:
        """A round that checked our own feed ended; open writes if it was the last."""
        me = self.identity.public_key
        waiting = abandoned or any(op.author == me for op in self.replica.pending.waiting())
        if self.own.round_ended(conn, own_waiting=waiting):
            self._writes_opened()

    def _writes_opened(self) -> None:
        feed = self.replica.feeds.get(self.identity.public_key)
        head = feed.head_seq if feed else 0
        self._events.append(WritesOpened(self.own.checked_with,
                                         max(0, head - self.own.head_at_start)))

    def _jitter(self, base: int) -> int:
        spread = int.from_bytes(self._entropy(2), "big") / 65535  # 0..1
        return int(base * (0.75 + 0.5 * spread))

    # -- time -----------------------------------------------------------------------------

    def get_timer(self) -> int | None:
        times = [self._next_records, self._next_want_sweep]
        for t in (self.gossip.timer(), self.own.timer(), self.bodies.timer()):
            if t is not None:
                times.append(t)
        for peer in self._peers.values():
            t = peer.session.timer()
            if t is not None:
                times.append(t)
            if peer.session.state is State.OPEN:
                times.append(peer.round.started + self.config.sync_timeout_ms
                             if peer.round else peer.next_sync)
        return min(times)

    def handle_timer(self, now: int) -> None:
        for peer in list(self._peers.values()):
            peer.session.handle_timer(now)
            if peer.session.state is not State.OPEN:
                continue
            if peer.round is not None and now >= peer.round.started + self.config.sync_timeout_ms:
                if peer.round.checks_own:
                    self._own_round_ended(peer.conn, abandoned=True)
                peer.round = None  # abandoned; try again later
                peer.next_sync = now + self._jitter(self.config.sync_interval_ms // 2)
            if peer.round is None and now >= peer.next_sync:
                self._start_round(peer, now)
        if self.own.expire(now):
            self._writes_opened()
        announce, graft = self.gossip.due(now)
        for conn, refs in announce.items():
            target = self._peers.get(conn)
            for i in range(0, len(refs), frames.MAX_REFS):  # each frame under 64 KiB
                if target is not None:
                    target.session.send(IHave(tuple(refs[i : i + frames.MAX_REFS])))
        for conn, refs in graft.items():
            target = self._peers.get(conn)
            for i in range(0, len(refs), frames.MAX_REFS):
                if target is not None:
                    target.session.send(Graft(tuple(refs[i : i + frames.MAX_REFS])))
        if now >= self._next_want_sweep:
            self._sweep_wants(now)
            self._next_want_sweep = now + self.config.want_retry_ms
        self._fetch_contents(now)
        if now >= self._next_records:
            dropped = tuple(self.replica.prune_records(now))
            expired = tuple(self.replica.contents.expire(now))  # retention by age
            if dropped or expired:
                self._events.append(Changed((), (), (), dropped, None, contents=expired))
            self.publish_presence(now)
            self._next_records = now + self._jitter(self.config.record_refresh_ms)

    def _fetch_contents(self, now: int) -> None:
        """Ask peers for contents this node wants and lacks, a few per peer (sync.md §7.3)."""
        timer = self.bodies.timer()
        if timer is None or timer > now:
            return
        peers = {p.conn: p for p in self._open_peers()}
        for conn, refs in self.bodies.due(now, sorted(peers)).items():
            peers[conn].session.send(Want(0, tuple((r.author, r.seq, r.seq) for r in refs),
                                          (), ()))

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
        out: list[tuple[ConnId, bytes]] = []
        for peer in list(self._peers.values()):
            self._pack(peer.session, peer.push_eager, eager=True)
            self._pack(peer.session, peer.push, eager=False)
            limit = budget(peer.conn) if budget is not None else 4 * TARGET_FRAME_BYTES
            self._fill(peer, limit)
            if not peer.serve and peer.after_serve:
                for frame in peer.after_serve:
                    peer.session.send(frame)
                peer.after_serve.clear()
            data = peer.session.take_output()
            if data:
                peer.session.note_sent(now)
                out.extend((peer.conn, d) for d in data)
            if peer.session.state is State.CLOSED:
                self._drop(peer)
        return out

    @staticmethod
    def _pack(session: Session, wires: list[bytes], *, eager: bool) -> None:
        batch: list[bytes] = []
        size = 0
        for wire in wires:
            if batch and size + len(wire) + 3 > TARGET_FRAME_BYTES:
                session.send(Ops(eager, tuple(batch)))
                batch, size = [], 0
            batch.append(wire)
            size += len(wire) + 3
        if batch:
            session.send(Ops(eager, tuple(batch)))
        wires.clear()

    def _fill(self, peer: _Peer, limit: int) -> None:
        """Turn owed ranges into OPS frames (several ranges per frame), in seq order,
        up to about `limit` bytes: the driver's flow control (sync.md §6.5)."""
        produced = 0
        batch: list[bytes] = []
        size = 0
        while peer.serve and produced + size < limit:
            author, first, last = peer.serve.popleft()
            feed = self.replica.feeds.get(author)
            if feed is None:
                continue
            last = self.own.cap(author, min(last, feed.head_seq))
            seq = first
            while seq <= last:
                wire = self.replica.carried(feed.ops[seq - 1])
                if batch and size + len(wire) + 3 > TARGET_FRAME_BYTES:
                    peer.session.send(Ops(False, tuple(batch)))
                    produced += size
                    batch, size = [], 0
                    if produced >= limit:
                        break
                batch.append(wire)
                size += len(wire) + 3
                seq += 1
            if seq <= last:
                peer.serve.appendleft((author, seq, last))
        if batch:
            peer.session.send(Ops(False, tuple(batch)))


def _wants(round_: int, ranges: list[tuple[bytes, int, int]], forks: list[bytes],
           records: list[tuple[bytes, str]]) -> list[Want]:
    """WANT frames under the frame limit; only the last one carries the round id.

    Sizes are upper bounds of the encoded entries (a range row is at most
    1 + 34 + 9 + 9 bytes, an author 34, a record key 1 + 34 + 33), so that the
    lists of one frame together stay under `WANT_BUDGET_BYTES` (sync.md §6.5).
    """
    items = [("r", x, 53) for x in ranges] + [("f", x, 34) for x in forks] \
        + [("k", x, 68) for x in records]
    out: list[Want] = []
    chunk: dict[str, list[Any]] = {"r": [], "f": [], "k": []}
    size = 0
    for kind, item, cost in items:
        if size + cost > WANT_BUDGET_BYTES:
            out.append(Want(0, tuple(chunk["r"]), tuple(chunk["f"]), tuple(chunk["k"])))
            chunk, size = {"r": [], "f": [], "k": []}, 0
        chunk[kind].append(item)
        size += cost
    out.append(Want(round_, tuple(chunk["r"]), tuple(chunk["f"]), tuple(chunk["k"])))
    return out


WANT_BUDGET_BYTES = frames.MAX_FRAME_BYTES - 1024
MAX_SEQ = 2**53 - 1  # "to the end of the feed" in a WANT range
