"""The post contents a replica holds, apart from the headers (protocols/ops.md §12).

A format-2 post's header is held for good; its content (the text, or a sealed
direct message) may be dropped at any time without touching the feed, the
ledger or the digest (§12.5), and must be dropped once the post is retracted
(§12.6). This module is that table, plus the node's retention policy over it:

- **Always kept**: the node's own posts, posts on channels it follows, and
  direct messages it can read (sent to it or by it).
- **Droppable**: every other content, kept newest first (by the op's
  timestamp) within a byte budget and an age limit.

Retention is incremental: droppable contents sit in a heap ordered by
timestamp, so taking one in costs O(log n) and so does dropping the oldest;
nothing ever scans the table on the ingest path. Age is enforced when a content
is offered and by `expire`, which the mesh calls on its periodic timer.

Every change comes back to the caller as an ordered list of (op id, content)
pairs, content None for a drop (`ById`). The replica, which holds the ops, places
each one in its feed (`Change`, with the op's author and seq): that is what a store
writes, in that order, and keys its rows by (store/sqlite.py, "Keys").
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from .bodies import CHANNELS, PostHeader
from .ops import Op

MIB = 1024 * 1024
DAY_MS = 24 * 3600 * 1000

ById = tuple[bytes, bytes | None]  # (op id, content now held) or (op id, None): dropped
# The same change placed in its op's feed: (author, seq, op id, content or None).
Change = tuple[bytes, int, bytes, bytes | None]


@dataclass(frozen=True)
class RetentionConfig:
    """How much of other people's message contents this node keeps (local policy,
    protocols/ops.md §12.5). Headers are always kept; so are own contents, those of
    followed channels and direct messages this node can read."""

    max_mib: int = 256  # other people's contents, newest kept; 0: no limit
    max_days: int = 0  # drop other people's contents older than this; 0: no limit
    follow: tuple[str, ...] = ()  # channels whose contents are always kept

    def __post_init__(self) -> None:
        if self.max_mib < 0 or self.max_days < 0:
            raise ValueError("retention limits are 0 (no limit) or more")
        unknown = [c for c in self.follow if c not in CHANNELS]
        if unknown:
            raise ValueError(f"retention.follow: {unknown[0]!r} is not a channel "
                             f"({', '.join(CHANNELS)})")


class Retention:
    """The retention policy of one node: `readable(op, content)` says whether this node
    can open a direct message (reading.py), so that its own direct messages are kept."""

    def __init__(self, config: RetentionConfig, me: bytes,
                 readable: Callable[[Op, bytes], bool] | None = None) -> None:
        self.config = config
        self.me = me
        self.readable = readable
        self.max_bytes = config.max_mib * MIB
        self.max_age_ms = config.max_days * DAY_MS

    def always(self, op: Op) -> bool:
        """Kept whatever it holds: own posts and followed channels."""
        body = op.body
        return op.author == self.me or (isinstance(body, PostHeader)
                                        and body.channel in self.config.follow)

    def keeps(self, op: Op, content: bytes) -> bool:
        if self.always(op):
            return True
        body = op.body
        return isinstance(body, PostHeader) and body.channel == "direct" \
            and self.readable is not None and self.readable(op, content)


class Contents:
    def __init__(self) -> None:
        self._held: dict[bytes, bytes] = {}
        self.retracted: set[bytes] = set()  # posts named by a held retract: never taken again
        self.bytes = 0
        self.policy: Retention | None = None
        self._heap: list[tuple[int, bytes]] = []  # (timestamp, id) of droppable contents
        self._droppable: dict[bytes, int] = {}  # id -> timestamp, exactly the droppable held
        self.droppable_bytes = 0
        self.dropped = 0  # contents dropped by retention since start (not retractions)

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, op_id: bytes) -> bool:
        return op_id in self._held

    def get(self, op_id: bytes) -> bytes | None:
        return self._held.get(op_id)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._held.items())

    # -- taking and dropping ------------------------------------------------------------

    def load(self, op_id: bytes, content: bytes) -> None:
        """Hold a content read back from the store (checked by the caller); the policy
        is applied afterwards, by `configure`."""
        if op_id not in self._held:
            self._held[op_id] = content
            self.bytes += len(content)

    def wants(self, op: Op, now: int | None) -> bool:
        """Would this node take `op`'s content if it came? (To fetch it, or to take it
        with an op already held.)"""
        if not isinstance(op.body, PostHeader) or op.id in self._held \
                or op.id in self.retracted:
            return False
        policy = self.policy
        if policy is None or policy.always(op):
            return True
        return self._room(policy, op, op.body.size, now)

    def offer(self, op: Op, content: bytes, now: int | None) -> list[ById]:
        """Take `op`'s content (already checked against its header) if the policy keeps
        it. Returns the changes made, drops of older contents first, then the take
        (`(op.id, content)`, absent when not taken).

        Droppable contents kept are always the newest ones whose sizes add up to at
        most the budget: a content that would not be among them is not taken, and
        taking one drops the oldest until the rest fit."""
        if op.id in self._held or op.id in self.retracted:
            return []
        policy = self.policy
        if policy is None or policy.keeps(op, content):
            self._hold(op.id, content)
            return [(op.id, content)]
        if policy.max_age_ms and now is not None and op.timestamp < now - policy.max_age_ms:
            return []
        self._hold(op.id, content)
        self._droppable[op.id] = op.timestamp
        self.droppable_bytes += len(content)
        heapq.heappush(self._heap, (op.timestamp, op.id))
        changes: list[ById] = []
        taken = True
        while policy.max_bytes and self.droppable_bytes > policy.max_bytes:
            oldest = self._oldest()
            assert oldest is not None
            self._drop(oldest[1])
            if oldest[1] == op.id:
                taken = False
            else:
                self.dropped += 1
                changes.append((oldest[1], None))
        if taken:
            changes.append((op.id, content))
        return changes

    def _room(self, policy: Retention, op: Op, size: int, now: int | None) -> bool:
        """Whether a droppable content of `size` bytes for `op` is worth fetching: not
        too old, and within the budget or newer than the oldest droppable held."""
        if policy.max_age_ms and now is not None and op.timestamp < now - policy.max_age_ms:
            return False
        if not policy.max_bytes or self.droppable_bytes + size <= policy.max_bytes:
            return True
        oldest = self._oldest()
        return size <= policy.max_bytes and oldest is not None \
            and oldest < (op.timestamp, op.id)

    def retract(self, post_id: bytes) -> bool:
        """A retract of `post_id` is held (§12.6): drop its content for good. True when a
        content was held."""
        self.retracted.add(post_id)
        return self.drop(post_id)

    def drop(self, op_id: bytes) -> bool:
        if op_id not in self._held:
            return False
        self._drop(op_id)
        return True

    def _hold(self, op_id: bytes, content: bytes) -> None:
        self._held[op_id] = content
        self.bytes += len(content)

    def _drop(self, op_id: bytes) -> None:
        content = self._held.pop(op_id)
        self.bytes -= len(content)
        if self._droppable.pop(op_id, None) is not None:
            self.droppable_bytes -= len(content)

    def _oldest(self) -> tuple[int, bytes] | None:
        """The oldest droppable content, skipping heap entries whose content went."""
        heap = self._heap
        while heap:
            ts, op_id = heap[0]
            if self._droppable.get(op_id) == ts:
                return ts, op_id
            heapq.heappop(heap)
        return None

    # -- the policy ---------------------------------------------------------------------

    def configure(self, policy: Retention | None, ops: Mapping[bytes, Op],
                  now: int | None) -> list[ById]:
        """Apply `policy` to what is held (at start, after `load`): one pass over the
        held contents, then drops until within the limits."""
        self.policy = policy
        self._heap, self._droppable, self.droppable_bytes = [], {}, 0
        if policy is None:
            return []
        for op_id, content in self._held.items():
            op = ops.get(op_id)
            if op is not None and not policy.keeps(op, content):
                self._droppable[op_id] = op.timestamp
                self.droppable_bytes += len(content)
                self._heap.append((op.timestamp, op_id))
        heapq.heapify(self._heap)
        changes = self.expire(now) if now is not None else []
        while policy.max_bytes and self.droppable_bytes > policy.max_bytes:
            oldest = self._oldest()
            assert oldest is not None
            self._drop(oldest[1])
            self.dropped += 1
            changes.append((oldest[1], None))
        return changes

    def expire(self, now: int) -> list[ById]:
        """Drop droppable contents past the age limit (oldest first)."""
        policy = self.policy
        changes: list[ById] = []
        if policy is None or not policy.max_age_ms:
            return changes
        while (oldest := self._oldest()) is not None and oldest[0] < now - policy.max_age_ms:
            self._drop(oldest[1])
            self.dropped += 1
            changes.append((oldest[1], None))
        return changes
