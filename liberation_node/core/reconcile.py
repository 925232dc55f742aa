"""Anti-entropy: find and fill the difference between two replicas (protocols/sync.md §6).

A round costs one small round trip when the replicas agree, and otherwise grows
with the difference, not with the replica:

    A -> B  SYNC_OPEN   round, digest, author count, salt        (48-64 bytes)
    B -> A  SYNC_SAME   if the digests are equal: done (1 round trip)
    B -> A  SYNC_BUCKETS  feeds split into 2**bits buckets by author id prefix,
                        one salted 4-byte hash per bucket (feed entries §10.1 and
                        record ids of the authors in it)
    A -> B  SYNC_HEADS  A's feed heads and records in the buckets that differ
    B -> A  OPS/RECORDS what A lacks, in seq order; then WANT what B lacks
    A -> B  OPS/RECORDS what B asked for                    (3 round trips)

Sizes. `bits` is chosen so that a bucket holds about 4 feeds: SYNC_BUCKETS
costs about 1 byte per feed, and each differing bucket about 4 head rows of
~27 bytes (ids shortened to 8-byte prefixes). For 1000 feeds and one missing
op that is ~1.3 KiB of overhead, within the 2 KiB budget of issue #3; more
feeds per bucket would shrink SYNC_BUCKETS but grow every differing bucket.
A 4-byte hash can collide (2^-32 per differing bucket), but the salt is fresh
each round, so a collision only delays that bucket to the next round.
Pure functions; mesh.py keeps the round state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .frames import MAX_FRAME_BYTES, SyncHeads
from .replica import Replica

if TYPE_CHECKING:
    from .buckets import BucketIndex

BUCKET_HASH_BYTES = 4
PREFIX_BYTES = 8
FEEDS_PER_BUCKET = 4
MAX_BITS = 12
# SYNC_HEADS must fit one frame; what does not fit waits for the next round.
HEADS_BUDGET_BYTES = MAX_FRAME_BYTES - 4 * 1024


def author_count(replica: Replica) -> int:
    """How many authors the replica holds feeds or records of: what SYNC_OPEN's `authors`
    carries, and what sizes the buckets (sync.md §6.2), so that a bucket holds a few
    authors' feeds and records however many of them have only records."""
    return len(replica.feeds.keys() | {author for author, _ in replica.records})


def choose_bits(authors: int) -> int:
    bits = 0
    while (FEEDS_PER_BUCKET << bits) < authors and bits < MAX_BITS:
        bits += 1
    return bits


def bucket_of(author: bytes, bits: int) -> int:
    return int.from_bytes(author[:2], "big") >> (16 - bits) if bits else 0


def _grouped(replica: Replica, bits: int) -> list[list[bytes]]:
    groups: list[list[bytes]] = [[] for _ in range(1 << bits)]
    for author, entry in sorted(replica.entries().items()):
        groups[bucket_of(author, bits)].append(entry)
    for key in sorted(replica.records):
        groups[bucket_of(key[0], bits)].append(replica.records[key].id)
    return groups


def bucket_hashes(replica: Replica, bits: int, salt: bytes) -> bytes:
    return b"".join(
        hashlib.blake2b(b"".join(group), digest_size=BUCKET_HASH_BYTES, salt=salt.ljust(16, b"\0")
                        ).digest()
        for group in _grouped(replica, bits))


def differing(mine: bytes, theirs: bytes) -> list[int]:
    n = BUCKET_HASH_BYTES
    return [i for i in range(len(mine) // n)
            if mine[i * n : (i + 1) * n] != theirs[i * n : (i + 1) * n]]


def _in_buckets(replica: Replica, buckets: set[int], bits: int,
                index: BucketIndex | None) -> Iterator[tuple[bytes, list[str]]]:
    """(author, kinds of its records) for each author with a feed or a record in
    `buckets`: from the index when there is one, else by a scan of the replica."""
    if index is not None:
        for author in index.authors(buckets, bits):
            yield author, index.kinds(author)
        return
    kinds: dict[bytes, list[str]] = {}
    for author, kind in replica.records:
        if bucket_of(author, bits) in buckets:
            kinds.setdefault(author, []).append(kind)
    for author in sorted(set(kinds) | {a for a in replica.feeds
                                       if bucket_of(a, bits) in buckets}):
        yield author, sorted(kinds.get(author, []), key=lambda k: k.encode("utf-8"))


def heads(replica: Replica, round_: int, bits: int, buckets: Iterable[int],
          rotate: int = 0, index: BucketIndex | None = None) -> SyncHeads:
    """Our heads and records in `buckets`, as many buckets as fit the per-round budget.

    A first bucket too big for the budget on its own goes in part, marked
    `partial`; `rotate` (from the round's salt) picks which part, so that
    successive rounds cover all of it.
    """
    wanted = set(buckets)
    chosen: list[int] = []
    rows: list[tuple[bytes, int, bytes, tuple[bytes, ...]]] = []
    recs: list[tuple[bytes, str, bytes]] = []
    by_bucket: dict[int, tuple[list[tuple[bytes, int, bytes, tuple[bytes, ...]]],
                               list[tuple[bytes, str, bytes]]]] = {}
    for author, kinds in _in_buckets(replica, wanted, bits, index):
        b = bucket_of(author, bits)
        feed = replica.feeds.get(author)
        if feed is not None:
            head = feed.ops[-1].id[:PREFIX_BYTES] if feed.ops else b""
            by_bucket.setdefault(b, ([], []))[0].append(
                (author[:PREFIX_BYTES], feed.head_seq, head.ljust(PREFIX_BYTES, b"\0"),
                 tuple(p.id[:PREFIX_BYTES] for p in feed.proofs)))
        for kind in kinds:
            by_bucket.setdefault(b, ([], []))[1].append(
                (author[:PREFIX_BYTES], kind, replica.records[(author, kind)].id[:PREFIX_BYTES]))
    size = 0
    partial: tuple[int, ...] = ()
    for b in sorted(wanted):
        feeds_, records_ = by_bucket.get(b, ([], []))
        # Encoded sizes, upper bounds (HEAD_ROW_BYTES, RECORD_ROW_BYTES).
        cost = HEAD_ROW_BYTES * len(feeds_) + RECORD_ROW_BYTES * len(records_) + 4
        if size + cost > HEADS_BUDGET_BYTES:
            if chosen:
                break
            feeds_, records_ = _part(sorted(feeds_), sorted(records_), rotate)
            partial = (b,)
        chosen.append(b)
        rows.extend(sorted(feeds_))
        recs.extend(sorted(records_))
        size += cost
    return SyncHeads(round_, bits, tuple(chosen), tuple(rows), tuple(recs), partial)


# The most one row takes (sync.md §6.3): a head row is a 4-array (1 byte), the author
# prefix (bin8: 10), a seq up to 2^53 - 1 (uint64: 9), the head prefix (10) and up to two
# proof prefixes (1 + 2 x 10): 51 bytes. A record row, with the kinds of ops.md §8, takes
# at most 32; 60 leaves room for longer kinds.
HEAD_ROW_BYTES = 51
RECORD_ROW_BYTES = 60


def _part(feeds_: list[Any], records_: list[Any], rotate: int) -> tuple[list[Any], list[Any]]:
    """A window of a bucket's rows that fits the budget, starting at `rotate`."""
    room_feeds = min(len(feeds_), (HEADS_BUDGET_BYTES // 2) // HEAD_ROW_BYTES)
    room_records = min(len(records_), (HEADS_BUDGET_BYTES // 2) // RECORD_ROW_BYTES)

    def window(items: list[Any], room: int) -> list[Any]:
        if not items:
            return []
        start = rotate % len(items)
        return (items[start:] + items[:start])[:room]

    return window(feeds_, room_feeds), window(records_, room_records)


@dataclass
class Plan:
    """What one side sends and asks for after comparing heads."""

    send_ranges: list[tuple[bytes, int, int]] = field(default_factory=list)
    send_proofs: list[bytes] = field(default_factory=list)  # authors
    send_records: list[tuple[bytes, str]] = field(default_factory=list)
    want_ranges: list[tuple[bytes, int, int]] = field(default_factory=list)
    want_forks: list[bytes] = field(default_factory=list)
    want_records: list[tuple[bytes, str]] = field(default_factory=list)


def compare(replica: Replica, theirs: SyncHeads, index: BucketIndex | None = None) -> Plan:
    """Given the peer's heads in some buckets, what each side lacks in those buckets.

    Authors we hold are named in full; authors only the peer holds are named by
    the 8-byte prefix it sent (the peer resolves it, see `resolve`). With `index`,
    only the covered buckets are looked at (O(difference), sync.md §4.8).
    """
    plan = Plan()
    buckets = set(theirs.buckets) - set(theirs.partial)  # where their rows are complete
    partial = set(theirs.partial)
    bits = theirs.bits
    their_feeds = {a: (s, h, p) for a, s, h, p in theirs.heads}
    their_records = {(a, k): i for a, k, i in theirs.records}
    mine: dict[bytes, bytes] = {}
    held: dict[tuple[bytes, str], tuple[tuple[bytes, str], bytes]] = {}
    for author, kinds in _in_buckets(replica, buckets | partial, bits, index):
        name = author[:PREFIX_BYTES]
        complete = bucket_of(author, bits) in buckets
        # In a partial bucket only the feeds and records they listed can be compared.
        if author in replica.feeds and (complete or name in their_feeds):
            mine[name] = author
        for kind in kinds:
            if complete or (name, kind) in their_records:
                held[(name, kind)] = ((author, kind),
                                       replica.records[(author, kind)].id[:PREFIX_BYTES])
    for prefix in sorted(set(mine) | set(their_feeds)):
        author = mine.get(prefix, prefix)
        feed = replica.feeds.get(author)
        seq_m = feed.head_seq if feed else 0
        seq_t, head_t, proofs_t = their_feeds.get(prefix, (0, b"", ()))
        proofs_m = {p.id[:PREFIX_BYTES] for p in feed.proofs} if feed else set()
        if proofs_m - set(proofs_t):
            plan.send_proofs.append(author)
        if set(proofs_t) - proofs_m:
            plan.want_forks.append(author)
        forked = feed is not None and feed.fork_seq is not None
        if 0 < seq_t <= seq_m and feed is not None \
                and feed.ops[seq_t - 1].id[:PREFIX_BYTES] != head_t:
            # Same seq, different op: a fork at or below seq_t. Trade both versions.
            plan.send_ranges.append((author, seq_t, seq_m))
            plan.want_ranges.append((author, seq_t, seq_t))
        elif seq_m > seq_t:
            plan.send_ranges.append((author, seq_t + 1, seq_m))
        elif seq_t > seq_m and not forked:
            plan.want_ranges.append((author, seq_m + 1, seq_t))
    for short in sorted(set(held) | set(their_records)):
        key, rid = held.get(short, (short, None))
        if rid != their_records.get(short):
            if short in held:
                plan.send_records.append(key)
            if short in their_records:
                plan.want_records.append(key)
    return plan


def resolve(replica: Replica, authors: Iterable[bytes], index: BucketIndex | None = None
            ) -> dict[bytes, list[bytes]]:
    """Full author ids for each name in `authors` (a full id, or an 8-byte prefix)."""
    names = set(authors)
    out: dict[bytes, list[bytes]] = {n: [n] for n in names if len(n) != PREFIX_BYTES}
    short = {n for n in names if len(n) == PREFIX_BYTES}
    if short and index is not None:
        for name in short:
            found = index.with_prefix(name)
            if found:
                out[name] = found
    elif short:
        for author in sorted(replica.feeds.keys() | {k[0] for k in replica.records}):
            if author[:PREFIX_BYTES] in short:
                out.setdefault(author[:PREFIX_BYTES], []).append(author)
    return out
