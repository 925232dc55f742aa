"""What the mesh does with each frame a peer sends: the session first, then the frame's
kind decides (protocols/sync.md §3: frames; §5.7: receiving ops; §6: anti-entropy
frames; §7: requests and relayed signaling), and an invalid op costs the peer a strike
(§4.6). RECORDS frames go to recordflow.py.

A mixin of `Mesh` (mesh.py); the state it shares: meshstate.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import Reason
from .events import ConnId, Misbehaved
from .frames import (
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
from .ingested import Ingested, Outcome
from .meshstate import MeshState
from .peer import Peer
from .scoring import Penalty
from .serving import Requested, request
from .session import CloseReason, SessionClosed, State

if TYPE_CHECKING:
    from .verified import Verdict

# Rejections that say nothing bad about the peer that relayed the op.
BLAMELESS = {Reason.FORKED_AUTHOR, Reason.FROM_THE_FUTURE}
_FIRST = (Outcome.APPLIED, Outcome.PENDING, Outcome.FORK)  # the first copy of an op


class Intake(MeshState):
    """Frames in: routed to the part of the mesh that handles their kind."""

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
                    held = self.replica.ops.get(result.id)
                    by_author = held is not None and held.author == peer.session.peer
                    victim = gossip.duplicate(result.id, conn, hops, now, by_author=by_author)
                    if victim is not None:
                        prune.add(victim)
            elif outcome is Outcome.REJECTED:
                assert result.rejection is not None
                self._count_rejection(result.rejection.reason.value)
                if result.rejection.reason not in BLAMELESS:
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
