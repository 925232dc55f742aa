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
each peer is owed and its frames (serving.py), requests for missing past
(catchup.py), relayed signaling (relay.py) and the own feed (ownfeed.py); this
module routes frames between them and owns the replica's changes.

Work per input is proportional to the peers it touches: only connections with
something to send are visited by `datagrams_to_send`, and per-connection timers
sit in a heap, so a node with many quiet peers pays nothing for them.

Nothing here reads a clock, draws randomness (the caller passes `entropy`), or
does I/O, so the simulator runs exactly this code.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .antientropy import AntiEntropy, Entropy, Settling
from .bodies import Body, Post, PostHeader
from .bodyfetch import BodyFetch
from .catchup import CatchUp
from .conduct import Conduct
from .errors import LocalError, NotWritable, Reason
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
    Ref,
    Signal,
    SyncBuckets,
    SyncHeads,
    SyncOpen,
    SyncSame,
    Want,
)
from .gossip import Gossip, GossipConfig
from .identity import Identity
from .ops import Op
from .ownfeed import Gate, OwnFeed, OwnFeedConfig
from .peer import Peer
from .quotas import QuotaConfig, Quotas
from .records import MAX_FRONTIER, NodeInfo, NodeLinks, Record, RecordBody, create_record
from .relay import Relay
from .replica import Ingested, Outcome, Replica
from .scoring import Penalty, Scores, ScoringConfig, address_key
from .sealing import SEAL_BYTES
from .serving import Requested, ServeConfig, produce, request, send_records
from .session import CloseReason, Session, SessionClosed, SessionConfig, State
from .verified import Verdict

__all__ = ["Entropy", "Mesh", "MeshConfig"]

# Rejections that say nothing bad about the peer that relayed the op.
_BLAMELESS = {Reason.FORKED_AUTHOR, Reason.FROM_THE_FUTURE}
_FIRST = (Outcome.APPLIED, Outcome.PENDING, Outcome.FORK)  # the first copy of an op
_OPEN = State.OPEN  # read on every input: a global, not an enum class attribute

@dataclass(frozen=True)
class MeshConfig:
    name: str = ""
    urls: tuple[str, ...] = ()
    caps: tuple[str, ...] = ()
    session: SessionConfig = field(default_factory=SessionConfig)
    gossip: GossipConfig = field(default_factory=GossipConfig)
    sync_interval_ms: int = 10_000  # periodic anti-entropy per connection (jittered)
    sync_timeout_ms: int = 10_000  # a round not finished by then is abandoned
    # Ops applied less than this long ago (or `settle_rtts` round-trip times, when
    # longer) are still travelling the gossip tree: rounds leave them out (§6.5).
    settle_ms: int = 2_000
    settle_rtts: float = 10.0
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
        self.gossip.beacon = min((a for a, k in replica.records if k == "node.info"),
                                 default=None)
        self.catchup = CatchUp(replica, config.want_retry_ms)
        self.settling = Settling()
        self.bodies = BodyFetch()  # post contents to fetch from peers (sync.md §7.4)
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
        # Connections with something to send (an ordered set), and with a timer that
        # may have moved; per-connection timers in a heap of (due, conn), where an
        # entry is live while `_due[conn]` still says so.
        self._dirty: dict[ConnId, None] = {}
        self._open: dict[ConnId, None] = {}  # connections whose session is OPEN
        self._touched: set[ConnId] = set()
        self._timers: list[tuple[int, ConnId]] = []
        self._due: dict[ConnId, int] = {}
        self._rtt: tuple[int, int] = (-1, 0)  # (computed at, typical RTT ms)

    @property
    def deferred(self) -> int:
        """OPS frames not taken in while paused."""
        return self.sync.deferred

    # -- connections ----------------------------------------------------------------------

    def connection_made(self, conn: ConnId, binding: bytes, now: int, *, initiator: bool,
                        address: str | None = None, rtt_hint: int | None = None) -> None:
        """The transport to a peer is up; `binding` is the value both ends sign (sync.md
        §4.1); `rtt_hint`, a round-trip time measured while connecting, if known.
        `address` names where it comes from (the driver's choice of key, e.g. an IP
        address): scores and bans hold for it as for the peer's node id (§4.7)."""
        nonce = int.from_bytes(self._entropy(6), "big")
        session = Session(self.identity, self.network, binding, now, self.config.session, nonce,
                          rtt_hint=rtt_hint, notify=lambda: self._mark(conn),
                          changed=lambda: self._state_changed(conn))
        self._peers[conn] = Peer(conn, session, initiator, address)
        self._mark(conn)
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
                if p.session.state is _OPEN and p.session.peer is not None}

    def peer_count(self) -> int:
        """How many sessions are open: `len(peers())`, without a look at each (the
        connection manager asks after every input)."""
        return len(self._open)

    def handshakes(self) -> int:
        """Connections whose session handshake is under way."""
        return sum(p.session.state is State.HANDSHAKE for p in self._peers.values())

    def backlog(self, conn: ConnId) -> int:
        """Answers still owed to the peer on `conn` (sent as its link drains)."""
        peer = self._peers.get(conn)
        return peer.owed.answers if peer else 0

    def backlogged(self) -> list[ConnId]:
        """The connections with answers still owed (`backlog(conn) > 0`), without a look
        at the others: after `datagrams_to_send` they are all still marked to send."""
        peers = self._peers
        return [c for c in self._dirty if (p := peers.get(c)) is not None and p.owed.answers]

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
        self._open.pop(peer.conn, None)
        self._dirty.pop(peer.conn, None)
        self._due.pop(peer.conn, None)
        self.gossip.peer_down(peer.conn, now)
        self._reshape()
        self.catchup.peer_gone(peer.conn)
        self.sync.peer_gone(peer)
        reason, detail, by_peer = peer.session.close_reason or (CloseReason.SHUTDOWN, "", False)
        self.conduct.closed(peer, reason, by_peer, now)
        self._events.append(PeerDown(peer.conn, peer.session.peer, reason, detail, by_peer))

    def _state_changed(self, conn: ConnId) -> None:
        peer = self._peers.get(conn)
        if peer is not None and peer.session.state is _OPEN:
            self._open[conn] = None
        else:
            self._open.pop(conn, None)

    def _mark(self, conn: ConnId) -> None:
        """`conn` may have something to send, and its timer may have moved."""
        self._dirty[conn] = None
        self._touched.add(conn)

    def _typical_rtt(self, now: int) -> int:
        """The median smoothed RTT of our sessions (0 before any is measured), recomputed
        at most once a second: what the timers that wait on the network scale with."""
        at, rtt = self._rtt
        if now - at >= 1_000 or at < 0:
            rtts = sorted(p.session.rtt_ms for p in self._peers.values()
                          if p.session.rtt_ms is not None)
            rtt = rtts[len(rtts) // 2] if rtts else 0
            self._rtt = (now, rtt)
        return rtt

    def _graft_timeout(self, now: int) -> int:
        cfg = self.config.gossip
        return self.sync.jitter(max(cfg.graft_timeout_ms,
                                    int(cfg.graft_rtts * self._typical_rtt(now))))

    def _settle_ms(self, now: int) -> int:
        return max(self.config.settle_ms, int(self.config.settle_rtts * self._typical_rtt(now)))

    # -- input ----------------------------------------------------------------------------

    def data_received(self, conn: ConnId, data: bytes, now: int,
                      verdicts: Iterable[Verdict] = ()) -> None:
        """One frame from `conn`. `verdicts` are signature checks of its ops that the
        driver did ahead, on other threads (core/verified.py): taken on trust, they
        spare the replica that work and change no outcome."""
        peer = self._peers.get(conn)
        if peer is None:
            return
        self.replica.verified.learn(verdicts)
        self._mark(conn)
        was_open = peer.session.state is State.OPEN
        try:
            frame = peer.session.receive(data, now)
        except SessionClosed:
            return  # the CLOSE goes out with the next datagrams_to_send; then we drop it
        if not was_open and peer.session.state is State.OPEN:
            self._opened(peer, now)
        if frame is not None:
            self._dispatch(peer, frame, now)
            self._reshape()

    def _reshape(self) -> None:
        """Send the GRAFTs (without refs) and PRUNEs the gossip tree asked for."""
        reshape = self.gossip.reshaped()
        for conn in reshape.graft:
            target = self._peers.get(conn)
            if target is not None:
                target.session.send(Graft(()))
        for conn in reshape.prune:
            self._prune(conn)

    def _opened(self, peer: Peer, now: int) -> None:
        assert peer.session.peer is not None
        if self.conduct.banned(peer, now):
            peer.session.close(CloseReason.BANNED, "this node is banned for a while")
            return
        lonely = True
        for other in self._peers.values():
            if other is peer or other.session.state is not State.OPEN:
                continue
            lonely = False
            if other.session.peer == peer.session.peer:
                # Two connections to one peer (both dialed): keep the one dialed by the
                # lower node id, so both ends pick the same one (sync.md §4.2).
                me_lower = self.identity.public_key < peer.session.peer
                keep_new = peer.initiator == me_lower
                loser = other if keep_new else peer
                loser.session.close(CloseReason.DUPLICATE_PEER, "already connected")
                if loser is peer:
                    return
        self.gossip.peer_up(peer.conn, now)
        self._events.append(PeerUp(peer.conn, peer.session.peer))
        # Records are not sent in bulk here: the round that starts now (or the peer's)
        # exchanges what differs (sync.md §5.6). A node that had no peer republishes its
        # presence at once, so that it spreads over the gossip tree.
        self.sync.peer_opened(peer, now)
        if lonely:
            self._next_records = now

    def _dispatch(self, peer: Peer, frame: Frame, now: int) -> None:
        if isinstance(frame, Ops):
            self._on_ops(peer, frame, now)
        elif isinstance(frame, IHave):
            replica = self.replica
            # A ref with seq 0 names a record (sync.md §5.6); others name ops.
            have = {r[2] for r in frame.refs
                    if (replica.record(r[2]) is not None if r[1] == 0
                        else r[2] in replica.ops or r[2] in replica.pending)}
            self.gossip.announced(peer.conn, list(frame.refs), have, now,
                                  self._graft_timeout(now))
        elif isinstance(frame, Graft):
            self.gossip.grafted(peer.conn, now, child=not frame.refs)
            items = [item for _, _, item in frame.refs]
            dropped = 0
            for (_, seq, item) in dict.fromkeys(frame.refs):
                if seq == 0:  # a record (sync.md §5.6), answered by its key: the newest
                    record = self.replica.record(item)
                    if record is not None:
                        dropped += peer.owed.queue_records([record.key], self.config.serve,
                                                           self.gossip.hops(item))
                    continue
                op = self.replica.ops.get(item)
                if op is not None and self.own.visible(op):
                    dropped += not peer.owed.queue_op(item, self.replica.carried(op),
                                                      self.config.serve, self.gossip.hops(item))
            self.conduct.requested(peer, Requested(len(set(items)) < len(items), dropped), now)
        elif isinstance(frame, Prune):
            self.gossip.pruned(peer.conn, now, by_peer=True)
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
            self._serve(peer, *self.sync.on_heads(peer, frame), now, settled_only=True)
        elif isinstance(frame, Signal):
            if not self.relay.received(peer, frame, now):
                self.conduct.penalize(peer, Penalty.SIGNAL_FLOOD, now)
        elif isinstance(frame, Want):
            # The WANT that closes a round gets only what has settled, as the round's
            # own ranges do; a request on its own (round 0) gets everything (§6.5, §7.1).
            self._serve(peer, list(frame.ranges), list(frame.forks), list(frame.records), now,
                        settled_only=frame.round != 0)
            self.sync.on_want(peer, frame)

    def _serve(self, peer: Peer, ranges: list[tuple[bytes, int, int]], proof_authors: list[bytes],
               record_keys: list[tuple[bytes, str]], now: int, *, settled_only: bool) -> None:
        self.conduct.requested(peer, request(peer.owed, self.replica, ranges, proof_authors,
                                             record_keys, self.config.serve, self.sync.buckets,
                                             settled_only=settled_only, hops=self.gossip.hops), now)

    def _prune(self, conn: ConnId) -> None:
        target = self._peers.get(conn)
        if target is not None:
            target.session.send(Prune())

    def _on_ops(self, peer: Peer, frame: Ops, now: int) -> None:
        if self.paused:
            self.sync.deferred += 1
            return
        results: list[Ingested] = []
        prune: set[ConnId] = set()
        gossip, conn = self.gossip, peer.conn
        admit = lambda op: self.quotas.admit_op(op, now)  # noqa: E731
        for wire, hops in frame.ops:
            result = self.replica.ingest(wire, now, admit)
            results.append(result)
            outcome = result.outcome
            if outcome is Outcome.DEFERRED:  # local policy: no blame, fetched again later
                self._count_rejection(result.deferred)
                continue
            for _, waiter_rejection in result.rejected_waiters:
                self._count_rejection(waiter_rejection.reason.value)
            if outcome in _FIRST:
                assert result.id is not None
                gossip.first(result.id, conn, hops, eager=frame.eager, now=now)
                if outcome is Outcome.PENDING and result.missing is not None:
                    self._ask_past(peer, result.missing.author, result.missing.seq, now)
            elif outcome is Outcome.DUPLICATE:
                if frame.eager and result.id is not None:
                    victim = gossip.duplicate(result.id, conn, hops, now)
                    if victim is not None:
                        prune.add(victim)
            elif outcome is Outcome.REJECTED:
                assert result.rejection is not None
                self._count_rejection(result.rejection.reason.value)
                if result.rejection.reason not in _BLAMELESS:
                    self._strike(peer, result.rejection.reason.value, result.rejection.detail,
                                 now)
            if result.content_rejection is not None:  # ops.md §12.4: never relayed honestly
                self._count_rejection(result.content_rejection.reason.value)
                self._strike(peer, result.content_rejection.reason.value,
                             result.content_rejection.detail, now)
        if peer.round is not None:
            peer.round.ops_received += sum(len(r.applied) for r in results)
        for victim in prune:  # at most one PRUNE per link and frame (sync.md §5.3)
            self._prune(victim)
        self._changed(results, (), (), source=peer, now=now)

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
                if result.rejection.reason not in _BLAMELESS | {Reason.RECORD_EXPIRED}:
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

    def _count_rejection(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def _strike(self, peer: Peer, reason: str, detail: str, now: int) -> None:
        peer.strikes += 1
        self._events.append(Misbehaved(peer.conn, peer.session.peer, reason, detail))
        self.conduct.penalize(peer, Penalty.INVALID_INPUT, now)
        if peer.strikes > self.config.max_strikes:
            peer.session.close(CloseReason.MISBEHAVING, f"{peer.strikes} invalid inputs")

    def _ask_past(self, peer: Peer, author: bytes, seq: int, now: int) -> None:
        """Ask `peer` for an op's missing past, unless already asked (catchup.py)."""
        want = self.catchup.ask(peer.conn, author, seq, now)
        if want is not None:
            peer.session.send(want)

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

        Raises `NotWritable` while writes are paused (the own feed is being checked,
        sync.md §10.2) and `LocalError` for good: an op that would be void, or an
        identity that has equivocated."""
        reason = self.own.writable()
        if reason is not None:
            raise (LocalError if self.own.gate is Gate.FORKED else NotWritable)(reason)
        # A direct message is sealed with fresh randomness from the driver (ops.md §13.3).
        seal = self._entropy(SEAL_BYTES) if isinstance(body, Post) and body.to else None
        result = self.replica.append(self.identity, body, now, seal)
        op = result.applied[0]
        self.gossip.own(op.id)
        self._changed([result], (), (), source=None, now=now)
        return op

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

    # -- shared paths ---------------------------------------------------------------------

    def _changed(self, results: Iterable[Ingested], records: tuple[Record, ...],
                 dropped: tuple[Record, ...], source: Peer | None, now: int) -> None:
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
                for peer in self._open_peers():  # a peer whose own identity equivocated
                    if peer.session.peer == author:
                        self.conduct.penalize(peer, Penalty.EQUIVOCATION, now)
        for op in applied:
            self.catchup.applied(op.author, op.seq)
            self.settling.applied(op.author, op.seq, now)
        if source is None and applied:
            self.own.hold(self.ticket, applied)  # durable before seen (sync.md §10.1)
        elif applied:
            self._gossip(applied, source, now)

    def _track_contents(self, applied: list[Op], contents: list[tuple[bytes, bytes | None]],
                        now: int) -> None:
        """Want the contents of new headers that came without one (sync.md §7.4)."""
        for op_id, content in contents:
            if content is not None:
                self.bodies.got(op_id)
        held = self.replica.contents
        for op in applied:
            if isinstance(op.body, PostHeader) and held.wants(op, now):
                self.bodies.want(op, now)

    def _gossip(self, applied: list[Op], source: Peer | None, now: int) -> None:
        by_id = {op.id: op for op in applied}
        refs: list[tuple[bytes, Ref | None]] = [(op.id, (op.author, op.seq, op.id))
                                                for op in applied]
        for conn, pushed in self.gossip.delivered(refs, source.conn if source else None,
                                                  now).items():
            target = self._peers.get(conn)
            if target is not None:
                carried = self.replica.carried
                target.owed.eager.extend((carried(by_id[i]), hops) for i, hops in pushed)
                self._mark(conn)

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
        self._mark(conn)
        return True

    # -- time -----------------------------------------------------------------------------

    def _retime(self) -> None:
        """Recompute the timers of the connections touched since the last call."""
        peers, dues, sync = self._peers, self._due, self.sync
        for conn in self._touched:
            peer = peers.get(conn)
            due = None
            if peer is not None:
                session = peer.session
                due = session.timer()
                if due is not None and session.state is _OPEN:
                    due = min(due, sync.timer(peer))
                if peer.owed.answers:
                    ready = peer.owed.ready_at(self._now, self.config.serve)
                    if ready is not None and due is not None:  # answers waiting for budget
                        due = min(due, ready)
            if due is None:
                dues.pop(conn, None)
            elif dues.get(conn) != due:
                dues[conn] = due
                heapq.heappush(self._timers, (due, conn))
        self._touched.clear()

    def get_timer(self) -> int | None:
        self._retime()
        timers, dues = self._timers, self._due
        while timers and dues.get(timers[0][1]) != timers[0][0]:
            heapq.heappop(timers)  # stale: the connection's timer moved, or it is gone
        first = min(self._next_records, self._next_want_sweep)
        if timers and timers[0][0] < first:
            first = timers[0][0]
        for t in (self.gossip.timer(), self.own.timer(), self.bodies.timer()):
            if t is not None and t < first:
                first = t
        return first

    def handle_timer(self, now: int) -> None:
        self._retime()
        timers = self._timers
        while timers and timers[0][0] <= now:
            due, conn = heapq.heappop(timers)
            if self._due.get(conn) != due:
                continue
            del self._due[conn]
            self._touched.add(conn)
            self._dirty[conn] = None  # its serve budget may have refilled
            peer = self._peers[conn]
            peer.session.handle_timer(now)
            if peer.session.state is State.OPEN:
                self.sync.handle_timer(peer, now)
        if self.own.expire(now):
            self._writes_opened()
        self._reshape()
        announce, graft = self.gossip.due(now, self._graft_timeout(now))
        for conn, rows in announce.items():
            target = self._peers.get(conn)
            for i in range(0, len(rows), MAX_REFS):  # each frame under 64 KiB
                if target is not None:
                    target.session.send(IHave(tuple(rows[i : i + MAX_REFS])))
        for conn, refs in graft.items():
            target = self._peers.get(conn)
            for i in range(0, len(refs), MAX_REFS):
                if target is not None:
                    target.session.send(Graft(tuple(refs[i : i + MAX_REFS])))
        if now >= self._next_want_sweep:
            for conn, want in self.catchup.sweep([p.conn for p in self._open_peers()], now):
                self._peers[conn].session.send(want)
            self._next_want_sweep = now + self.config.want_retry_ms
        self._fetch_contents(now)
        if now >= self._next_records:
            dropped = tuple(self.replica.prune_records(now))
            expired = tuple(self.replica.contents.expire(now))  # retention by age
            if dropped or expired:
                self._events.append(Changed((), (), (), dropped, None, contents=expired))
            if dropped:
                self.gossip.beacon = min((a for a, k in self.replica.records
                                          if k == "node.info"), default=None)
            self.publish_presence(now)
            self._next_records = now + self.sync.jitter(self.config.record_refresh_ms)

    def _fetch_contents(self, now: int) -> None:
        """Ask peers for contents this node wants and lacks, a few per peer (sync.md §7.4)."""
        timer = self.bodies.timer()
        if timer is None or timer > now:
            return
        peers = {p.conn: p for p in self._open_peers()}
        for conn, refs in self.bodies.due(now, sorted(peers)).items():
            peers[conn].session.send(Want(0, tuple((r.author, r.seq, r.seq) for r in refs),
                                          (), ()))

    # -- output ---------------------------------------------------------------------------

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self, now: int, budget: Callable[[ConnId], int] | None = None
                          ) -> list[tuple[ConnId, bytes]]:
        """Frames to transmit, per connection. `budget(conn)` caps the bytes of bulk data
        (sync ranges) produced for a connection now: the driver's flow control."""
        self._now = now
        out: list[tuple[ConnId, bytes]] = []
        self.settling.expire(now - self._settle_ms(now))
        settled = self.settling.settled
        dirty, self._dirty = self._dirty, {}
        for conn in dirty:
            peer = self._peers.get(conn)
            if peer is None:
                continue
            limit = budget(conn) if budget is not None else 4 * TARGET_FRAME_BYTES
            produce(peer.session, peer.owed, self.replica, self.own, limit, now,
                    self.config.serve, settled)
            data = peer.session.take_output()
            self._dirty.pop(conn, None)
            if data:
                peer.session.note_sent(now)
                self._touched.add(conn)
                out.extend((conn, d) for d in data)
            if peer.session.state is State.CLOSED:
                self._drop(peer, now)
            elif peer.owed.answers:
                self._dirty[conn] = None  # the rest as the link drains, or the budget refills
        return out
