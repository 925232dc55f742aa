"""The replica: the set of ops and records a node holds, and what follows from it
(protocols/ops.md §5, §7, §8, §9).

Input in, results out: `ingest` takes op bytes, `ingest_record` takes record
bytes and `now`; neither does I/O. The caller (the node, the simulator, the
store loader) persists what the result says was applied or excluded.

Held ops always form, per author, a gap-free chain 1..n linked by `prev`
(causal delivery), so a feed's (seq, head id) commits to its whole prefix and the
replica digest is a hash over feed heads, fork proofs and record ids. Two
replicas have equal digests exactly when they hold the same ops and records.

Held ops are headers. A format-2 post's content is held apart (`contents`,
ops.md §12): it may come with its op or later, be dropped by retention, and is
dropped for good when its post is retracted; none of that touches the digest.

`Replica` is assembled from parts, each a mixin in its own module: writing our own
ops (authoring.py), held records (heldrecords.py) and the digest (digest.py); what
one input did is an `Ingested` (ingested.py). This module holds and orders the ops.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator

from . import codec
from .authoring import Authoring
from .bodies import Retract, is_post
from .contents import ById, Change, Contents, Retention
from .digest import ReplicaDigest
from .errors import Reason, Rejection
from .heldrecords import HeldRecords
from .ingested import Ingested, Outcome
from .ledger import Ledger, fold
from .ops import (
    DEFAULT_GENESIS_MS,
    MAX_OP_BYTES,
    Dep,
    Op,
    carry,
    content_problem,
    decode_fields,
    decode_op,
    op_id,
    open_carried,
    with_content,
)
from .pending import PendingSet
from .records import MAX_RECORD_BYTES, Record, decode_record, record_id
from .verified import Verified

MAX_FORK_PROOFS = 2


class Feed:
    """One author's held ops: the chain below any fork, plus fork proofs."""

    __slots__ = ("fork_seq", "ops", "proofs")

    def __init__(self) -> None:
        self.ops: list[Op] = []  # ops[i].seq == i + 1
        self.fork_seq: int | None = None
        self.proofs: list[Op] = []  # at fork_seq, lowest ids first, at most MAX_FORK_PROOFS

    @property
    def head_seq(self) -> int:
        return len(self.ops)

    def entry(self, author: bytes) -> bytes:
        head = self.ops[-1].id if self.ops else None
        return codec.pack([author, len(self.ops), head, [p.id for p in self.proofs]])


class _Fork(Exception):
    """Internal signal from `_check`: the op conflicts with a held op at its seq."""


class Replica(Authoring, HeldRecords, ReplicaDigest):
    """The ops and records a node holds; see the module docstring."""

    def __init__(self, network: str, pending: PendingSet | None = None, *,
                 genesis: int = DEFAULT_GENESIS_MS) -> None:
        self.network = network
        self.genesis = genesis  # no op is dated before it (ops.md §14)
        self.feeds: dict[bytes, Feed] = {}
        self.ops: dict[bytes, Op] = {}  # every held op by id, fork proofs included
        # Held ops in the order applied (a causal order), less `_gone`: ops a fork
        # excluded, taken out when `order` is next read (one pass for a batch of forks).
        self._order: list[Op] = []
        self._gone: set[bytes] = set()
        # Bumped whenever a fork voids ops or swaps proofs: what was derived from the
        # ops held (the ledger, a query index) must then be derived anew.
        self.forks_changed = 0
        self.pending = pending if pending is not None else PendingSet()
        # Signature checks a driver did ahead of `ingest` (by workers): verified.py.
        self.verified = Verified()
        # A fork voids the equivocator's ops and can cascade through acknowledged
        # credits, so the ledger is then folded anew (ledger.py); it is folded when
        # next read rather than at each proof: a healed partition can bring hundreds
        # of forks in one batch, and a fold per proof made that quadratic. The ledger
        # is current while it was folded at the present `forks_changed`.
        self._ledger = Ledger()
        self._ledger_forks = 0
        self.records: dict[tuple[bytes, str], Record] = {}
        self.contents = Contents()
        self.kinds: dict[str, list[int]] = {}  # kind -> [held headers, their bytes]
        self._record_ids: dict[bytes, Record] = {}  # `records` by id: cheap duplicates
        self._entries: dict[bytes, bytes] = {}  # author -> encoded digest entry
        self._stale: set[bytes] = set()  # authors whose entry must be re-encoded
        self._ops_digest: bytes | None = None
        self._records_digest: bytes | None = None
        # Told (author, record kind or None for its feed) of every change, e.g. the
        # bucket index of anti-entropy (core/buckets.py).
        self.watchers: list[Callable[[bytes, str | None], None]] = []

    @property
    def order(self) -> list[Op]:
        """The held ops in the order applied: a causal order. Appended to as ops are
        applied; a new list after a fork excluded some (see `forks_changed`)."""
        if self._gone:
            self._compact()
        return self._order

    def _compact(self) -> None:
        gone = self._gone
        self._order = [o for o in self._order if o.id not in gone]
        self._gone = set()

    @property
    def ledger(self) -> Ledger:
        """The ledger folded over the held ops, in the order applied (a causal order)."""
        if self._ledger_forks != self.forks_changed:
            forks = {a: f.fork_seq for a, f in self.feeds.items() if f.fork_seq is not None}
            self._ledger = fold(self.order, forks)
            self._ledger_forks = self.forks_changed
        return self._ledger

    # -- ops -------------------------------------------------------------------------

    def ingest(self, wire: bytes, now: int | None = None,
               admit: Callable[[Op], str | None] | None = None) -> Ingested:
        """Take one op from the network, a header or a carried form (ops.md §12.3).
        With `now` (ms), refuse ops dated too far ahead. An op already held whose
        content comes along has it taken if this node wants it (outcome `duplicate`).
        `admit` is local policy: for an op that passed every check of its own, it says
        why the op is not taken in now (outcome `deferred`), or None."""
        if not isinstance(wire, bytes) or len(wire) > MAX_OP_BYTES:
            size = len(wire) if isinstance(wire, bytes) else -1
            return Ingested(Outcome.REJECTED, rejection=Rejection(Reason.OVERSIZE, f"{size}"))
        header, content, fields = wire, None, None
        if wire[:1] == b"\x9b":  # an 11-element array: a carried form, decoded once
            try:
                header, content, fields = open_carried(wire)
            except Rejection as rejection:
                return Ingested(Outcome.REJECTED, rejection=rejection)
        oid = op_id(header)
        verdict = self.verified.take(oid)
        held = self.ops.get(oid)
        if held is not None or oid in self.pending:
            result = Ingested(Outcome.DUPLICATE, oid)
            if held is not None and content is not None:
                self._take(held, content, now, result)
            return result
        try:
            if fields is None:
                op = decode_op(header, self.network, known_id=oid, now=now,
                               genesis=self.genesis, verdict=verdict)
            else:
                op = decode_fields(fields, header, self.network, known_id=oid, now=now,
                                   genesis=self.genesis, verdict=verdict)
        except Rejection as rejection:
            return Ingested(Outcome.REJECTED, oid, rejection)
        if admit is not None and (why := admit(op)) is not None:
            return Ingested(Outcome.DEFERRED, oid, deferred=why)
        refused = None
        if content is not None:
            problem = content_problem(op, content)
            if problem is None:
                op = with_content(op, content)
            else:  # the header is judged alone, whatever came with it (§12.4)
                refused = Rejection(Reason.BAD_CONTENT, problem)
        result = self.add(op, now)
        result.content_rejection = refused
        return result

    def ingest_record(self, wire: bytes, now: int) -> Ingested:
        """Take one record from the network (held by heldrecords.py). `decode_record` is
        looked up in this module: the simulator memoizes it here (sim/decodecache.py)."""
        # Records are flooded, so most arrivals are copies of what we hold: spot them
        # by id before paying for a signature check (as `ingest` does for ops).
        verdict = None
        if isinstance(wire, bytes) and len(wire) <= MAX_RECORD_BYTES:
            rid = record_id(wire)
            verdict = self.verified.take(rid)  # before the duplicate check: none left behind
            if rid in self._record_ids:
                return Ingested(Outcome.DUPLICATE, rid)
        try:
            record = decode_record(wire, self.network, now, verdict=verdict)
        except Rejection as rejection:
            return Ingested(Outcome.REJECTED, rejection=rejection)
        return self.add_record(record)

    def _take(self, op: Op, content: bytes, now: int | None, result: Ingested) -> None:
        """A content for a held header: take it if wanted and if it is the one signed."""
        if not self.contents.wants(op, now):
            return
        problem = content_problem(op, content)
        if problem is not None:
            result.content_rejection = Rejection(Reason.BAD_CONTENT, problem)
            return
        result.contents.extend(self._placed(self.contents.offer(op, content, now)))

    def carried(self, op: Op) -> bytes:
        """What to send for a held op: its carried form when its content is held."""
        content = self.contents.get(op.id)
        return carry(op.wire, content) if content is not None else op.wire

    def drop_contents(self, op_ids: Iterable[bytes]) -> list[Change]:
        """Drop held contents (retention, a user's choice): the changes to store."""
        return self._placed([(i, None) for i in op_ids if self.contents.drop(i)])

    def expire_contents(self, now: int) -> list[Change]:
        """Drop the droppable contents past the retention's age limit (contents.py)."""
        return self._placed(self.contents.expire(now))

    def retain(self, policy: Retention | None, now: int | None) -> list[Change]:
        """Set the retention policy over the held contents (at start, or a new budget):
        the drops it makes, to store."""
        return self._placed(self.contents.configure(policy, self.ops, now))

    def _placed(self, changes: list[ById]) -> list[Change]:
        """Each content change with its op's place in its feed (what a store keys it by).
        Only held ops have contents held (an op that goes drops its content first)."""
        placed: list[Change] = []
        for held, content in changes:
            op = self.ops[held]
            placed.append((op.author, op.seq, held, content))
        return placed

    def add(self, op: Op, now: int | None = None) -> Ingested:
        """Place an already decoded and verified op, then everything it releases. `now`
        dates the retention of contents that come with them (contents.py)."""
        if op.id in self.ops or op.id in self.pending:
            return Ingested(Outcome.DUPLICATE, op.id)
        result = Ingested(Outcome.APPLIED, op.id)
        queue: deque[Op] = deque([op])
        first = True
        while queue:
            current = queue.popleft()
            try:
                missing = self._check(current)
            except Rejection as rejection:
                if first:
                    result.outcome, result.rejection = Outcome.REJECTED, rejection
                else:
                    result.rejected_waiters.append((current, rejection))
                first = False
                continue
            except _Fork:
                try:
                    released = self._record_fork(current, result, now)
                except Rejection as rejection:
                    if first:
                        result.outcome, result.rejection = Outcome.REJECTED, rejection
                    else:
                        result.rejected_waiters.append((current, rejection))
                else:
                    if first:
                        result.outcome = Outcome.FORK
                    queue.extend(released)
                first = False
                continue
            if missing is not None:
                if first:
                    result.outcome, result.missing = Outcome.PENDING, missing
                self.pending.add(current, missing)
                first = False
                continue
            first = False
            result.applied.append(self._apply(current, result, now))
            queue.extend(self.pending.release(current.author, current.seq))
        return result

    def _check(self, op: Op) -> Dep | None:
        """Feed-level checks. Returns what the op waits for, or None when it can be applied.

        Raises `Rejection` for a definite refusal and `_Fork` for a conflicting op.
        """
        feed = self.feeds.get(op.author)
        head = feed.head_seq if feed is not None else 0
        if feed is not None and feed.fork_seq is not None and op.seq > feed.fork_seq:
            raise Rejection(Reason.FORKED_AUTHOR, f"author forked at seq {feed.fork_seq}")
        if op.seq > head + 1:
            assert op.prev is not None
            return Dep(op.author, op.seq - 1, op.prev)
        prev_op = feed.ops[op.seq - 2] if feed is not None and op.seq >= 2 else None
        if prev_op is not None and prev_op.id != op.prev:
            # Its prev is a *different* op at seq-1 than ours: a fork further down,
            # which we can only prove once we have that op. Ask for it.
            assert op.prev is not None
            return Dep(op.author, op.seq - 1, op.prev)
        if prev_op is not None and op.timestamp < prev_op.timestamp:
            raise Rejection(Reason.TIMESTAMP_REGRESSION, "timestamp is before prev's")
        for dep in op.deps:
            dep_feed = self.feeds.get(dep.author)
            if dep_feed is not None and dep_feed.fork_seq is not None \
                    and dep.seq >= dep_feed.fork_seq:
                continue  # names an equivocator's void part: satisfied, credits capped
            if dep_feed is None or dep_feed.head_seq < dep.seq \
                    or dep_feed.ops[dep.seq - 1].id != dep.id:
                return dep
        if isinstance(op.body, Retract):
            target = self.ops.get(op.body.post)
            if target is None or target.author != op.author or not is_post(target.body) \
                    or target.seq >= op.seq:
                raise Rejection(Reason.NOT_AUTHORS_POST, "only a post earlier in the author's "
                                "own feed can be retracted")
        if op.seq <= head or (feed is not None and feed.fork_seq == op.seq):
            raise _Fork
        return None

    def _apply(self, op: Op, result: Ingested, now: int | None) -> Op:
        """Hold `op`'s header (its content apart); returns the op as held."""
        content = op.content
        if content is not None:
            op = with_content(op, None)
        feed = self.feeds.get(op.author)
        if feed is None:
            feed = self.feeds[op.author] = Feed()
        feed.ops.append(op)
        self.ops[op.id] = op
        self._order.append(op)
        if self._ledger_forks == self.forks_changed:  # else the coming fold takes it in
            self._ledger.apply(op)
        self._touch(op.author)
        self._held(op, content, result, now)
        return op

    def _held(self, op: Op, content: bytes | None, result: Ingested, now: int | None) -> None:
        """Bookkeeping for a newly held header: sizes, its content, a retraction's purge."""
        count = self.kinds.setdefault(op.kind, [0, 0])
        count[0] += 1
        count[1] += len(op.wire)
        if content is not None:
            result.contents.extend(self._placed(self.contents.offer(op, content, now)))
        if isinstance(op.body, Retract) and self.contents.retract(op.body.post):
            # §12.6: a retraction purges (its post is held: `_check` refused any other)
            result.contents.extend(self._placed([(op.body.post, None)]))

    def _unheld(self, op: Op, result: Ingested) -> None:
        count = self.kinds[op.kind]
        count[0] -= 1
        count[1] -= len(op.wire)
        if self.contents.drop(op.id):
            result.contents.append((op.author, op.seq, op.id, None))

    def _record_fork(self, op: Op, result: Ingested, now: int | None) -> list[Op]:
        """`op` conflicts with a held op at its seq: keep proof, void the author from there."""
        content = op.content
        if content is not None:
            op = with_content(op, None)
        feed = self.feeds[op.author]
        seq = op.seq
        if feed.fork_seq is None or seq < feed.fork_seq:
            candidates = [*feed.ops[seq - 1 : seq], op]
            dropped = feed.ops[seq - 1 :] + feed.proofs
            feed.ops = feed.ops[: seq - 1]
            feed.fork_seq = seq
            newly_forked = True
        else:  # another op at the known fork seq: keep the lowest ids only
            candidates = [*feed.proofs, op]
            dropped = list(feed.proofs)
            newly_forked = False
        candidates.sort(key=lambda o: o.id)
        feed.proofs = candidates[:MAX_FORK_PROOFS]
        if op not in feed.proofs:
            raise Rejection(Reason.FORKED_AUTHOR, "already holding proof of this fork")
        keep = {p.id for p in feed.proofs}
        excluded = [o for o in dropped if o.id not in keep]
        for old in excluded:
            del self.ops[old.id]
            self._unheld(old, result)
        self.ops[op.id] = op
        self._held(op, content, result, now)
        self._gone.update(o.id for o in excluded)
        if op.id in self._gone:  # held before and excluded since: not twice in the order
            self._compact()
        self._order.append(op)
        result.excluded.extend(excluded)
        result.applied.append(op)
        self._touch(op.author)
        if not newly_forked and not excluded:
            if self._ledger_forks == self.forks_changed:  # one more proof, void from
                self._ledger.apply(op)  # the fork on: as a fold would
            return []
        if newly_forked and op.author not in result.forked:
            result.forked.append(op.author)
        # Voiding ops can cascade through acknowledged credits: fold everything anew
        # (when the ledger is next read).
        self.forks_changed += 1
        return self.pending.release_from(op.author, seq)

    # -- summaries --------------------------------------------------------------------

    def frontier(self) -> dict[bytes, int]:
        """Author -> highest seq held below any fork."""
        return {a: f.head_seq for a, f in self.feeds.items()}

    def forks(self) -> Iterator[tuple[bytes, int, list[Op]]]:
        for author, feed in self.feeds.items():
            if feed.fork_seq is not None:
                yield author, feed.fork_seq, list(feed.proofs)

    def feed_ops(self, author: bytes, after: int = 0) -> list[Op]:
        feed = self.feeds.get(author)
        return feed.ops[after:] if feed else []

    def load(self, wires: Iterable[bytes]) -> int:
        """Re-apply ops read back from our own store, in the order they were stored."""
        count = 0
        for wire in wires:
            op = decode_op(wire, self.network, check_signature=False, genesis=self.genesis)
            self.add(op)
            count += 1
        return count
