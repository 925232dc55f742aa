"""What a peer is owed, and turning it into frames (protocols/sync.md §5.2, §5.5, §5.6,
§6.4, §6.5, §4.8).

Four kinds of traffic leave a node for one peer: gossip pushes (eager OPS), answers
to its requests (GRAFT answers and fork proofs as OPS with `eager = false`, records,
feed ranges), and the frames that must follow them (a round's closing WANT). Each
peer's `Owed` queues them; `produce` packs them into frames of about
TARGET_FRAME_BYTES.

A request costs its sender a few bytes and this node up to a whole replica, so what
a peer asks for is held to proportion (sync.md §4.8):

- **once**: a ref, a fork author, a record key or a range already owed is not queued
  again (a GRAFT naming one op 880 times queues it once), and a request that names
  the same thing twice in one frame is reported (`Requested.repeated`): no honest
  peer does that;
- **bounded**: at most `max_ops` answers, `max_records` record keys and
  `max_ranges` ranges owed at once; what does not fit is dropped (the peer asks
  again) and reported (`Requested.dropped`);
- **paced**: answers are produced only within the driver's budget for the link and
  the peer's own serve budget, a token bucket of `bytes_per_s` (burst
  `burst_bytes`): a peer asking faster than that is slowed, never answered faster.
  Owed answers are references into the replica, not copies, so what waits costs
  next to nothing.

Gossip pushes are not answers: they are what this node received and relays, no more
than its peers sent it, and go out at once.

A range found by an anti-entropy round stops below the ops this node applied
only just now (`settled`): those are still travelling along the gossip tree,
and a round that also sent them would only make a second copy (sync.md §6.5).

Pure: the replica, the own feed (what may be seen yet) and what has settled
come in as arguments.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import frames
from .frames import MAX_HOPS, TARGET_FRAME_BYTES, Frame, Ops, Records, Want
from .ownfeed import OwnFeed
from .reconcile import resolve
from .replica import Replica
from .session import Session

if TYPE_CHECKING:
    from .buckets import BucketIndex

MAX_SEQ = 2**53 - 1  # "to the end of the feed" in a WANT range
WANT_BUDGET_BYTES = frames.MAX_FRAME_BYTES - 1024
ENTRY_BYTES = 5  # framing of one (wire, hops) entry, at most: array, bin header, hops

Item = tuple[bytes, int]  # (op or record wire, hops)
# (author, last seq, the session's start) -> the last seq that has settled for it
Settled = Callable[[bytes, int, int], int]


@dataclass(frozen=True)
class ServeConfig:
    """What one peer may have this node send it in answers (sync.md §4.8)."""

    bytes_per_s: int = 4 * 1024 * 1024  # sustained (a catch-up from one peer: ~4 MiB/s)
    burst_bytes: int = 16 * 1024 * 1024
    max_ops: int = 4_096  # GRAFT answers and fork proofs owed at once
    max_records: int = 8_192  # record keys owed at once
    max_ranges: int = 4_096  # feed ranges owed at once (sync.md §6.5 max_queued_ranges)


@dataclass(frozen=True, slots=True)
class Requested:
    """What queueing one request did: `repeated` if it named something twice, `dropped`
    the entries that did not fit."""

    repeated: bool = False
    dropped: int = 0


@dataclass
class Owed:
    """What one peer is owed, in the order it goes out."""

    eager: list[Item] = field(default_factory=list)  # ops to push (gossip)
    ops: dict[bytes, Item] = field(default_factory=dict)  # id -> answer (GRAFT, proofs)
    records: dict[tuple[bytes, str], int] = field(default_factory=dict)  # key -> hops
    # Feed ranges (author, first, last, only what has settled: found by a round)
    ranges: deque[tuple[bytes, int, int, bool]] = field(default_factory=deque)
    after: list[Frame] = field(default_factory=list)  # sent once the answers are out
    tokens: float = -1.0  # the serve budget, in bytes (< 0 before the first use)
    refilled: int = 0
    # author -> the ranges of it in `ranges`, to spot a range already owed
    _queued: dict[bytes, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def answers(self) -> int:
        """Answers still owed (ops, records, ranges)."""
        return len(self.ops) + len(self.records) + len(self.ranges)

    def refill(self, now: int, config: ServeConfig) -> float:
        if self.tokens < 0 and self.refilled == 0:
            self.tokens, self.refilled = float(config.burst_bytes), now
        elapsed = max(0, now - self.refilled)
        self.refilled = now
        self.tokens = min(float(config.burst_bytes),
                          self.tokens + elapsed * config.bytes_per_s / 1000)
        return self.tokens

    def ready_at(self, now: int, config: ServeConfig) -> int | None:
        """When answers that wait for the serve budget may go (None: none waits for it)."""
        if not self.answers or self.tokens > 0:
            return None
        return now + max(1, int(-self.tokens * 1000 / config.bytes_per_s) + 1)

    def queue_records(self, keys: list[tuple[bytes, str]], config: ServeConfig,
                      hops: int = MAX_HOPS) -> int:
        """Queue record keys (asked for); returns how many did not fit."""
        dropped = 0
        for key in keys:
            if key in self.records:
                continue
            if len(self.records) >= config.max_records:
                dropped += 1
                continue
            self.records[key] = hops
        return dropped

    def queue_op(self, op_id: bytes, wire: bytes, config: ServeConfig,
                 hops: int = MAX_HOPS) -> bool:
        """Queue an answer (a GRAFT's op, a fork proof); False if it did not fit."""
        if op_id in self.ops:
            return True
        if len(self.ops) >= config.max_ops:
            return False
        self.ops[op_id] = (wire, hops)
        return True

    def queue_range(self, author: bytes, first: int, last: int, config: ServeConfig,
                    settled_only: bool) -> bool:
        """Queue the part of a feed range not owed already; False if it did not fit."""
        held = self._queued.setdefault(author, [])
        pieces = [(first, last)]
        for f, ll in held:  # what is owed already is not queued again
            pieces = [p for a, b in pieces for p in ((a, min(b, f - 1)), (max(a, ll + 1), b))
                      if p[0] <= p[1]]
        fits = True
        for a, b in pieces:
            if len(self.ranges) >= config.max_ranges:
                fits = False
                break
            self.ranges.append((author, a, b, settled_only))
            held.append((a, b))
        if not held:
            del self._queued[author]
        return fits

    def _served_range(self, author: bytes, first: int, last: int) -> None:
        held = self._queued.get(author)
        if held is not None:
            held.remove((first, last))
            if not held:
                del self._queued[author]

    def _resume_range(self, author: bytes, first: int, last: int, settled_only: bool) -> None:
        self.ranges.appendleft((author, first, last, settled_only))
        self._queued.setdefault(author, []).append((first, last))


def request(owed: Owed, replica: Replica, ranges: list[tuple[bytes, int, int]],
            proof_authors: list[bytes], record_keys: list[tuple[bytes, str]],
            config: ServeConfig, index: BucketIndex | None = None, *,
            settled_only: bool, hops: Callable[[bytes], int] | None = None) -> Requested:
    """Queue what the peer asked for in one frame (authors may be 8-byte prefixes, sync.md
    §6.4); records included. Says whether it repeated itself and what was dropped.
    `settled_only`: for a round, not ops still in flight (§6.5). `hops`: the hop count a
    record (by id) goes out with, where known (the tracked item's, sync.md §5.9)."""
    repeated = (len(set(ranges)) < len(ranges) or len(set(proof_authors)) < len(proof_authors)
                or len(set(record_keys)) < len(record_keys))
    names = resolve(replica, {r[0] for r in ranges} | set(proof_authors)
                    | {k[0] for k in record_keys}, index)
    dropped = 0
    for name, first, last in dict.fromkeys(ranges):
        first = max(1, first)  # seq 0 names no op
        for author in names.get(name, ()):
            if first <= last and not owed.queue_range(author, first, last, config,
                                                      settled_only):
                dropped += 1
    for name in dict.fromkeys(proof_authors):
        for author in names.get(name, ()):
            feed = replica.feeds.get(author)
            if feed is not None:
                dropped += sum(not owed.queue_op(p.id, replica.carried(p), config)
                               for p in feed.proofs)
    keys = [(author, kind) for name, kind in dict.fromkeys(record_keys)
            for author in names.get(name, ()) if (author, kind) in replica.records]
    for key in keys:
        dropped += owed.queue_records([key], config, hops(replica.records[key].id)
                                      if hops is not None else MAX_HOPS)
    return Requested(repeated, dropped)


def send_records(session: Session, records: list[Item], *, eager: bool) -> int:
    """RECORDS frames of about TARGET_FRAME_BYTES each; returns the bytes of records."""
    return _batched(session, records, Records, eager)


def produce(session: Session, owed: Owed, replica: Replica, own: OwnFeed, limit: int,
            now: int, config: ServeConfig, settled: Settled) -> None:
    """Frames for what `owed` holds: gossip pushes in full; answers up to about `limit`
    bytes (the driver's flow control, sync.md §6.5) and the peer's serve budget; then
    what follows them."""
    if owed.eager:
        _pack(session, owed.eager, eager=True)
        owed.eager.clear()
    if owed.answers:
        budget = int(min(limit, owed.refill(now, config)))
        spent = 0
        if owed.ops and budget > 0:
            spent += _answers(session, owed, budget)
        if owed.records and budget - spent > 0:
            spent += _records(session, owed, replica, budget - spent)
        if owed.ranges and budget - spent > 0:
            spent += _fill(session, owed, replica, own, budget - spent, settled)
        owed.tokens -= spent
    if not owed.answers and owed.after:
        for frame in owed.after:
            session.send(frame)
        owed.after.clear()


def _pack(session: Session, items: list[Item], *, eager: bool) -> int:
    return _batched(session, items, Ops, eager)


def _batched(session: Session, items: list[Item], frame: type[Ops] | type[Records],
             eager: bool) -> int:
    """`items` (wire, hop count) as `frame`s of about TARGET_FRAME_BYTES each; returns
    their bytes."""
    batch: list[Item] = []
    size = sent = 0
    for item in items:
        if batch and size + len(item[0]) + ENTRY_BYTES > TARGET_FRAME_BYTES:
            session.send(frame(eager, tuple(batch)))
            sent += size
            batch, size = [], 0
        batch.append(item)
        size += len(item[0]) + ENTRY_BYTES
    if batch:
        session.send(frame(eager, tuple(batch)))
    return sent + size


def _answers(session: Session, owed: Owed, limit: int) -> int:
    """GRAFT answers and fork proofs, oldest first, about `limit` bytes."""
    taken: list[Item] = []
    size = 0
    for op_id, item in list(owed.ops.items()):
        if size >= limit:
            break
        taken.append(item)
        size += len(item[0]) + ENTRY_BYTES
        del owed.ops[op_id]
    return _pack(session, taken, eager=False)


def _records(session: Session, owed: Owed, replica: Replica, limit: int) -> int:
    """Records asked for, about `limit` bytes: the one held at each owed key now (the
    newest version; none if it expired)."""
    taken: list[Item] = []
    size = 0
    for key, hops in list(owed.records.items()):
        if size >= limit:
            break
        del owed.records[key]
        record = replica.records.get(key)
        if record is not None:
            taken.append((record.wire, hops))
            size += len(record.wire) + ENTRY_BYTES
    return send_records(session, taken, eager=False)


def _fill(session: Session, owed: Owed, replica: Replica, own: OwnFeed, limit: int,
          settled: Settled) -> int:
    """Turn owed ranges into OPS frames (several ranges per frame), in seq order,
    up to about `limit` bytes. Ranges carry no hop counts: MAX_HOPS (unknown)."""
    ranges = owed.ranges
    produced = 0
    batch: list[Item] = []
    size = 0
    while ranges and produced + size < limit:
        author, first, last, settled_only = ranges.popleft()
        owed._served_range(author, first, last)
        feed = replica.feeds.get(author)
        if feed is None:
            continue
        end = own.cap(author, min(last, feed.head_seq))
        if settled_only:
            end = settled(author, end, session.open_since or session.opened_at)
        seq = first
        while seq <= end:
            wire = replica.carried(feed.ops[seq - 1])
            if batch and size + len(wire) + ENTRY_BYTES > TARGET_FRAME_BYTES:
                session.send(Ops(False, tuple(batch)))
                produced += size
                batch, size = [], 0
                if produced >= limit:
                    break
            batch.append((wire, MAX_HOPS))
            size += len(wire) + ENTRY_BYTES
            seq += 1
        if seq <= end:
            owed._resume_range(author, seq, last, settled_only)
    if batch:
        session.send(Ops(False, tuple(batch)))
    return produced + size


def want_frames(round_: int, ranges: list[tuple[bytes, int, int]], forks: list[bytes],
                records: list[tuple[bytes, str]]) -> list[Want]:
    """WANT frames under the frame limit; only the last one carries the round id.

    Sizes are upper bounds of the encoded entries (a range row is at most
    1 + 34 + 9 + 9 bytes, an author 34, a record key 1 + 34 + 33), so that the
    lists of one frame together stay under `WANT_BUDGET_BYTES` (sync.md §6.4).
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
