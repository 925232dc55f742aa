"""What a peer is owed, and turning it into frames (protocols/sync.md §5.2, §5.5, §6.4,
§6.5).

Three kinds of op traffic leave a node: gossip pushes (eager OPS), answers to
GRAFT and fork proofs (OPS with `eager = false`), and feed ranges asked for by
WANT or found by a round (bulk data, paced by the driver's budget). Each peer's
`Owed` queues them; `produce` packs them into frames of about
TARGET_FRAME_BYTES each, the ranges only as far as the budget allows, and sends
the frames that must follow the ranges (a round's closing WANT) once none is
left.

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
from typing import Any

from . import frames
from .frames import MAX_HOPS, TARGET_FRAME_BYTES, Frame, Ops, Records, Want
from .ownfeed import OwnFeed
from .reconcile import resolve
from .records import Record
from .replica import Replica
from .session import Session

MAX_SEQ = 2**53 - 1  # "to the end of the feed" in a WANT range
WANT_BUDGET_BYTES = frames.MAX_FRAME_BYTES - 1024
ENTRY_BYTES = 5  # framing of one (wire, hops) entry, at most: array, bin header, hops

Item = tuple[bytes, int]  # (op or record wire, hops)
# (author, last seq, the session's start) -> the last seq that has settled for it
Settled = Callable[[bytes, int, int], int]


@dataclass
class Owed:
    """What one peer is owed, in the order it goes out."""

    eager: list[Item] = field(default_factory=list)  # ops to push (gossip)
    ops: list[Item] = field(default_factory=list)  # GRAFT answers, fork proofs
    # Feed ranges (author, first, last, only what has settled: found by a round)
    ranges: deque[tuple[bytes, int, int, bool]] = field(default_factory=deque)
    after: list[Frame] = field(default_factory=list)  # sent once `ranges` is empty


def request(owed: Owed, replica: Replica, ranges: list[tuple[bytes, int, int]],
            proof_authors: list[bytes], record_keys: list[tuple[bytes, str]],
            max_queued: int, *, settled_only: bool) -> list[Record]:
    """Queue what the peer asked for (authors may be 8-byte prefixes, sync.md §6.4);
    returns the records to send it. `settled_only`: for a round, not ops in flight."""
    names = resolve(replica, [r[0] for r in ranges] + proof_authors
                    + [k[0] for k in record_keys])
    for name, first, last in ranges:
        first = max(1, first)  # seq 0 names no op
        for author in names.get(name, ()):
            if len(owed.ranges) >= max_queued:
                break  # the peer asks again in a later round
            if first <= last:
                owed.ranges.append((author, first, last, settled_only))
    for name in proof_authors:
        for author in names.get(name, ()):
            feed = replica.feeds.get(author)
            if feed is not None:
                owed.ops.extend((p.wire, MAX_HOPS) for p in feed.proofs)
    return [replica.records[(author, kind)] for name, kind in record_keys
            for author in names.get(name, ()) if (author, kind) in replica.records]


def send_records(session: Session, records: list[Item], *, eager: bool) -> None:
    """RECORDS frames of about TARGET_FRAME_BYTES each."""
    batch: list[Item] = []
    size = 0
    for item in records:
        if batch and size + len(item[0]) + ENTRY_BYTES > TARGET_FRAME_BYTES:
            session.send(Records(eager, tuple(batch)))
            batch, size = [], 0
        batch.append(item)
        size += len(item[0]) + ENTRY_BYTES
    if batch:
        session.send(Records(eager, tuple(batch)))


def produce(session: Session, owed: Owed, replica: Replica, own: OwnFeed, limit: int,
            settled: Settled) -> None:
    """Frames for what `owed` holds: pushes and answers in full, ranges up to about
    `limit` bytes (the driver's flow control, sync.md §6.5), then what follows them."""
    if owed.eager:
        _pack(session, owed.eager, eager=True)
    if owed.ops:
        _pack(session, owed.ops, eager=False)
    if owed.ranges:
        _fill(session, owed.ranges, replica, own, limit, settled)
    if not owed.ranges and owed.after:
        for frame in owed.after:
            session.send(frame)
        owed.after.clear()


def _pack(session: Session, items: list[Item], *, eager: bool) -> None:
    batch: list[Item] = []
    size = 0
    for item in items:
        if batch and size + len(item[0]) + ENTRY_BYTES > TARGET_FRAME_BYTES:
            session.send(Ops(eager, tuple(batch)))
            batch, size = [], 0
        batch.append(item)
        size += len(item[0]) + ENTRY_BYTES
    if batch:
        session.send(Ops(eager, tuple(batch)))
    items.clear()


def _fill(session: Session, ranges: deque[tuple[bytes, int, int, bool]], replica: Replica,
          own: OwnFeed, limit: int, settled: Settled) -> None:
    """Turn owed ranges into OPS frames (several ranges per frame), in seq order,
    up to about `limit` bytes. Ranges carry no hop counts: MAX_HOPS (unknown)."""
    produced = 0
    batch: list[Item] = []
    size = 0
    while ranges and produced + size < limit:
        author, first, last, settled_only = ranges.popleft()
        feed = replica.feeds.get(author)
        if feed is None:
            continue
        last = own.cap(author, min(last, feed.head_seq))
        if settled_only:
            last = settled(author, last, session.open_since or session.opened_at)
        seq = first
        while seq <= last:
            wire = feed.ops[seq - 1].wire
            if batch and size + len(wire) + ENTRY_BYTES > TARGET_FRAME_BYTES:
                session.send(Ops(False, tuple(batch)))
                produced += size
                batch, size = [], 0
                if produced >= limit:
                    break
            batch.append((wire, MAX_HOPS))
            size += len(wire) + ENTRY_BYTES
            seq += 1
        if seq <= last:
            ranges.appendleft((author, seq, last, settled_only))
    if batch:
        session.send(Ops(False, tuple(batch)))


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
