"""Anti-entropy rounds: when to start them, both roles, and how they end
(protocols/sync.md §6; the comparison itself is reconcile.py).

Each connection runs its own rounds, one at a time, as initiator; as responder
a node keeps nothing between frames. What a round finds is queued on the peer
(serving.py); the round's events (`SyncFinished`) go to the mesh's event queue.
Rounds that must check the node's own feed before it writes (sync.md §10.2) ask
for it first and report their end to the own feed.

Pure: time comes in as `now`, randomness as `entropy`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from .buckets import BucketIndex
from .events import ConnId, Event, SyncFinished
from .frames import SyncBuckets, SyncHeads, SyncOpen, SyncSame, Want
from .ownfeed import OwnFeed
from .peer import Peer, Round
from .reconcile import (
    BUCKET_HASH_BYTES,
    MAX_BITS,
    choose_bits,
    compare,
    differing,
    heads,
)
from .replica import Replica
from .serving import MAX_SEQ, want_frames
from .session import CloseReason

Entropy = Callable[[int], bytes]  # n -> n unpredictable bytes (os.urandom, or a seeded RNG)


class AntiEntropy:
    def __init__(self, me: bytes, replica: Replica, own: OwnFeed, *, interval_ms: int,
                 timeout_ms: int, entropy: Entropy, events: deque[Event],
                 opened: Callable[[], None]) -> None:
        self.me = me
        self.replica = replica
        # Bucket inputs kept up to date as the replica changes: a round costs the
        # difference, not the replica (sync.md §4.8).
        self.buckets = BucketIndex(replica)
        self.own = own
        self.interval_ms = interval_ms
        self.timeout_ms = timeout_ms
        self._entropy = entropy
        self._events = events
        self._writes_opened = opened  # called when a round opened writes (sync.md §10.2)
        self._round_ids = 0
        self.deferred = 0  # OPS frames not taken in while paused (the mesh counts them)

    def authors(self) -> int:
        """How many authors we hold feeds or records of: what sizes the buckets
        (sync.md §6.2), so that a bucket holds a few authors' feeds and records. The
        bucket index keeps that count as the replica changes."""
        return self.buckets.author_count

    def jitter(self, base: int) -> int:
        spread = int.from_bytes(self._entropy(2), "big") / 65535  # 0..1
        return int(base * (0.75 + 0.5 * spread))

    # -- scheduling (sync.md §6.6) --------------------------------------------------------

    def peer_opened(self, peer: Peer, now: int) -> None:
        """The dialer reconciles at once; the other side waits its turn (less redundancy),
        unless it must check its own feed before writing (sync.md §10.2)."""
        peer.next_sync = now if peer.initiator or self.own.writable() else now + self.jitter(
            self.interval_ms)

    def timer(self, peer: Peer) -> int:
        return peer.round.started + self.timeout_ms if peer.round else peer.next_sync

    def handle_timer(self, peer: Peer, now: int) -> None:
        if peer.round is not None and now >= peer.round.started + self.timeout_ms:
            if peer.round.checks_own:
                self.own_round_ended(peer.conn, abandoned=True)
            peer.round = None  # abandoned; try again later
            peer.next_sync = now + self.jitter(self.interval_ms // 2)
        if peer.round is None and now >= peer.next_sync:
            self.start(peer, now)

    def peer_gone(self, peer: Peer) -> None:
        self.own_round_ended(peer.conn, abandoned=True)

    # -- the initiator ----------------------------------------------------------------------

    def start(self, peer: Peer, now: int) -> None:
        self._round_ids += 1
        rnd = Round(self._round_ids, self._entropy(8), now, self.authors(),
                    deferred=self.deferred)
        peer.round = rnd
        if self.own.round_started(peer.conn):
            # Our own feed above our head first: the peer serves requests in order, so
            # the round's closing WANT (or SYNC_SAME) follows those ops (sync.md §10.2).
            feed = self.replica.feeds.get(self.me)
            rnd.checks_own = True
            peer.session.send(Want(0, ((self.me, (feed.head_seq if feed else 0) + 1, MAX_SEQ),),
                                   (), ()))
        peer.session.send(SyncOpen(rnd.id, self.replica.digest(), rnd.authors, rnd.salt))

    def on_reply(self, peer: Peer, frame: SyncSame | SyncBuckets) -> None:
        rnd = peer.round
        if rnd is None or rnd.id != frame.round or rnd.stage != 1:
            return  # a late answer to a round we gave up on
        if isinstance(frame, SyncSame):
            self.finish(peer, in_sync=True, round_trips=1)
            return
        # Fewer bits than the feed count we announced calls for would make our buckets
        # too big for one SYNC_HEADS: a responder MUST size buckets for both sides
        # (sync.md §6.3). Feeds we learnt since are fine: `heads` sends partial buckets.
        if not choose_bits(rnd.authors) <= frame.bits <= MAX_BITS \
                or len(frame.hashes) != BUCKET_HASH_BYTES << frame.bits:
            peer.session.close(CloseReason.PROTOCOL_ERROR, "SYNC_BUCKETS of the wrong size")
            return
        mine = self.buckets.hashes(frame.bits, rnd.salt)
        rnd.stage = 2
        differ = differing(mine, frame.hashes)
        ours = heads(self.replica, rnd.id, frame.bits, differ,
                     rotate=int.from_bytes(rnd.salt[:4], "big"), index=self.buckets)
        rnd.left_out = len(ours.buckets) < len(differ) or bool(ours.partial)
        peer.session.send(ours)

    def on_want(self, peer: Peer, frame: Want) -> None:
        """A WANT was served; the one carrying our round's id ends the round."""
        rnd = peer.round
        if frame.round and rnd is not None and rnd.id == frame.round:
            self.finish(peer, in_sync=False,
                        round_trips=3 if frame.ranges or frame.forks else 2)

    def finish(self, peer: Peer, *, in_sync: bool, round_trips: int) -> None:
        rnd = peer.round
        assert rnd is not None
        peer.round = None
        if rnd.checks_own:
            self.own_round_ended(peer.conn, abandoned=self.deferred != rnd.deferred)
        self._events.append(SyncFinished(peer.conn, rnd.id, in_sync, round_trips,
                                         rnd.ops_received))
        # Go again soon when this round repaired something (there may be more) or could
        # not compare every differing bucket. A round that found only ops still in
        # flight (sent by neither side: they have not settled) waits its normal turn:
        # gossip delivers them (sync.md §6.6).
        # (round_trips counts the last WANT of the round only: sync.md A.19.)
        again = not in_sync and (rnd.ops_received or rnd.records_received or rnd.left_out)
        base = self.interval_ms // 10 if again else self.interval_ms
        peer.next_sync = rnd.started + self.jitter(base)

    def own_round_ended(self, conn: ConnId, *, abandoned: bool) -> None:
        """A round that checked our own feed ended; open writes if it was the last."""
        waiting = abandoned or any(op.author == self.me for op in self.replica.pending.waiting())
        if self.own.round_ended(conn, own_waiting=waiting):
            self._writes_opened()

    # -- the responder --------------------------------------------------------------------

    def on_open(self, peer: Peer, frame: SyncOpen) -> None:
        if frame.digest == self.replica.digest():
            peer.session.send(SyncSame(frame.round))
        else:
            bits = choose_bits(max(frame.authors, self.authors()))
            peer.session.send(SyncBuckets(frame.round, bits,
                                          self.buckets.hashes(bits, frame.salt)))

    def on_heads(self, peer: Peer, frame: SyncHeads) -> tuple[
            list[tuple[bytes, int, int]], list[bytes], list[tuple[bytes, str]]]:
        """Compare; queue the WANT that closes the peer's round after what we owe it.
        Returns what to send it: (ranges, fork proof authors, record keys)."""
        plan = compare(self.replica, frame, self.buckets)
        # The WANT ends the peer's round: it goes out after the ops we owe
        # (serving.produce), so the round's stats count them.
        peer.owed.after.extend(want_frames(frame.round, plan.want_ranges, plan.want_forks,
                                           plan.want_records))
        return plan.send_ranges, plan.send_proofs, plan.send_records


class Settling:
    """Which ops were applied only just now, and so are probably still travelling the
    gossip tree to our peers: a round leaves them out (sync.md §6.5).

    Feed ops are applied in seq order, so the young ops of a feed are its top ones;
    `settled(author, last, since)` is the last seq of a range that a round may send to
    a peer whose session opened at `since`: ops applied until then were never on
    their way to it through the gossip it shares with us.
    """

    def __init__(self) -> None:
        self._young: dict[bytes, deque[tuple[int, int]]] = {}  # author -> (applied at, seq)
        self._order: deque[tuple[int, bytes]] = deque()  # (applied at, author), oldest first

    def applied(self, author: bytes, seq: int, now: int) -> None:
        self._young.setdefault(author, deque()).append((now, seq))
        self._order.append((now, author))

    def expire(self, until: int) -> None:
        """Ops applied until `until` have settled."""
        order = self._order
        while order and order[0][0] <= until:
            _, author = order.popleft()
            young = self._young[author]
            young.popleft()
            if not young:
                del self._young[author]

    def settled(self, author: bytes, last: int, since: int) -> int:
        for at, seq in self._young.get(author, ()):
            if at > since:
                return min(last, seq - 1)
        return last
