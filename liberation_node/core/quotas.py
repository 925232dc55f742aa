"""What a node takes in from others, bounded (protocols/sync.md §9.2; DESIGN §7).

Ops are permanent and records are flooded everywhere, so identities that cost
nothing to make could otherwise fill every node's disk and memory. Local policy,
never a verdict on the input: what is refused here is not held, not remembered and
not blamed on the peer that relayed it; anti-entropy offers it again later, when
there is room.

- **op rate per author**: a token bucket per author (`author_ops_per_s`, burst
  `author_ops_burst`) on the ops of that author this node takes in; beyond it,
  ops are deferred (`over_quota`). The node's own ops are never deferred.
- **room**: while the driver says the disk is nearly full (`no_room`), no op and no
  new record key of another author is taken in (`no_room`), so that the node's own
  writes keep theirs (DESIGN §8).
- **records kept**: at most `max_records`; a new key over the cap evicts the record
  with the oldest version that is neither this node's nor an open peer's (possibly
  the new one itself).
- **record spreads**: a key is forwarded to peers at most `record_flood_burst`
  times at once and then once per `record_flood_ms`; anti-entropy carries the
  versions in between. One author re-signing its record a hundred times a second
  thus costs its peers' peers nothing, while a node that republishes as it starts
  and meets its first peers is not held back.

Pure: time comes in as `now` (ms).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Container
from dataclasses import dataclass

from .ops import Op
from .records import Record

MAX_TRACKED = 10_000  # authors and record keys remembered for rates


@dataclass(frozen=True)
class QuotaConfig:
    author_ops_per_s: float = 50.0
    author_ops_burst: int = 20_000
    max_records: int = 4_096
    record_flood_ms: int = 15_000  # a quarter of the reference refresh (sync.md §5.6)
    record_flood_burst: int = 3


class Quotas:
    def __init__(self, me: bytes, config: QuotaConfig) -> None:
        self.me = me
        self.config = config
        self.no_room: str | None = None  # why foreign data is refused now (the driver's say)
        self._tokens: OrderedDict[bytes, tuple[float, int]] = OrderedDict()  # author -> at
        # key -> (spreads it may still have, when counted): a token bucket per key
        self._flooded: OrderedDict[tuple[bytes, str], tuple[float, int]] = OrderedDict()
        self._by_version: list[tuple[int, bytes, str, bytes]] = []  # (version, key, id) heap

    # -- ops ------------------------------------------------------------------------------

    def admit_op(self, op: Op, now: int) -> str | None:
        """None if `op` may be taken in now (a token of its author is spent), else why not:
        "no_room" or "over_quota"."""
        if op.author == self.me:
            return None
        if self.no_room is not None:
            return "no_room"
        cfg = self.config
        tokens, at = self._tokens.pop(op.author, (float(cfg.author_ops_burst), now))
        tokens = min(float(cfg.author_ops_burst),
                     tokens + max(0, now - at) * cfg.author_ops_per_s / 1000)
        verdict = None
        if tokens >= 1:
            tokens -= 1
        else:
            verdict = "over_quota"
        self._tokens[op.author] = (tokens, now)
        while len(self._tokens) > MAX_TRACKED:  # a forgotten author starts with a full bucket
            self._tokens.popitem(last=False)
        return verdict

    # -- records --------------------------------------------------------------------------

    def held(self, record: Record) -> None:
        """`record` is held now (taken in, published or loaded): a candidate for eviction."""
        heapq.heappush(self._by_version, (record.version, record.author, record.kind,
                                          record.id))

    def evict(self, records: dict[tuple[bytes, str], Record], keep: Container[bytes]
              ) -> list[Record]:
        """Records to drop so that at most `max_records` are held: the oldest versions of
        authors other than this node and those in `keep` (its open peers)."""
        excess = len(records) - self.config.max_records
        victims: list[Record] = []
        spared: list[tuple[int, bytes, str, bytes]] = []
        while excess > 0 and self._by_version:
            entry = heapq.heappop(self._by_version)
            _, author, kind, rid = entry
            record = records.get((author, kind))
            if record is None or record.id != rid:
                continue  # replaced or dropped since: a stale entry
            if author == self.me or author in keep:
                spared.append(entry)
                continue
            victims.append(record)
            excess -= 1
        for entry in spared:
            heapq.heappush(self._by_version, entry)
        if len(self._by_version) > 4 * max(len(records), 1024):  # shed stale entries
            self._by_version = [(r.version, r.author, r.kind, r.id) for r in records.values()]
            heapq.heapify(self._by_version)
        return victims

    def may_flood(self, record: Record, now: int) -> bool:
        """Forward `record` to peers now? `record_flood_burst` times per key, then once per
        `record_flood_ms`; the node's own records always."""
        if record.author == self.me:
            return True
        cfg = self.config
        burst = float(cfg.record_flood_burst)
        tokens, at = self._flooded.pop(record.key, (burst, now))
        tokens = min(burst, tokens + max(0, now - at) / cfg.record_flood_ms)
        allowed = tokens >= 1
        self._flooded[record.key] = (tokens - 1 if allowed else tokens, now)
        while len(self._flooded) > MAX_TRACKED:
            self._flooded.popitem(last=False)
        return allowed
