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
(catchup.py), relayed signaling (relay.py) and the own feed (ownfeed.py). `Mesh`
itself is assembled from parts, each a mixin in its own module: the peer table
(peertable.py), frames in (intake.py), records (recordflow.py), timers
(meshtimers.py) and frames out with what is owed (outbox.py); this module holds
the state they share, local writes, and the replica's changes and their gossip.

Work per input is proportional to the peers it touches: only connections with
something to send are visited by `datagrams_to_send`, and per-connection timers
sit in a heap, so a node with many quiet peers pays nothing for them.

Nothing here reads a clock, draws randomness (the caller passes `entropy`), or
does I/O, so the simulator runs exactly this code.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .antientropy import AntiEntropy, Entropy, Settling
from .bodies import Body, Post, PostHeader
from .bodyfetch import BodyFetch
from .catchup import CatchUp
from .conduct import Conduct
from .contents import Change
from .errors import LocalError, NotWritable
from .events import Changed, ConnId, Event, ForkFound, WritesOpened
from .frames import Graft, Prune, Ref
from .gossip import Gossip, GossipConfig
from .identity import Identity
from .ingested import Ingested
from .intake import Intake
from .meshtimers import Timers
from .ops import Op
from .outbox import Outbox
from .ownfeed import Gate, OwnFeed, OwnFeedConfig
from .peer import Peer
from .peertable import PeerTable
from .quotas import QuotaConfig, Quotas
from .recordflow import RecordFlow
from .records import Record
from .relay import Relay
from .replica import Replica
from .scoring import Penalty, Scores, ScoringConfig
from .sealing import SEAL_BYTES
from .serving import ServeConfig
from .session import SessionConfig, State

__all__ = ["Entropy", "Mesh", "MeshConfig"]


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


class Mesh(PeerTable, Intake, RecordFlow, Timers, Outbox):
    """The protocol engine of one node; see the module docstring for how to drive it."""

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

    # -- the gossip tree (sync.md §5) ------------------------------------------------------

    def _reshape(self) -> None:
        """Send the GRAFTs (without refs) and PRUNEs the gossip tree asked for."""
        reshape = self.gossip.reshaped()
        for conn in reshape.graft:
            target = self._peers.get(conn)
            if target is not None:
                target.session.send(Graft(()))
        for conn in reshape.prune:
            self._prune(conn)

    def _prune(self, conn: ConnId) -> None:
        target = self._peers.get(conn)
        if target is not None:
            target.session.send(Prune())

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

    # -- shared paths ---------------------------------------------------------------------

    def _changed(self, results: Iterable[Ingested], records: tuple[Record, ...],
                 dropped: tuple[Record, ...], source: Peer | None, now: int) -> None:
        applied: list[Op] = []
        excluded: list[Op] = []
        contents: list[Change] = []
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

    def _track_contents(self, applied: list[Op], contents: list[Change], now: int) -> None:
        """Want the contents of new headers that came without one (sync.md §7.4)."""
        for _, _, op_id, content in contents:
            if content is not None:
                self.bodies.got(op_id)
        held = self.replica.contents
        for op in applied:
            if isinstance(op.body, PostHeader) and held.wants(op, now):
                self.bodies.want(op, now)

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
