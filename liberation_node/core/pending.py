"""The bounded set of ops waiting for their causal past (protocols/ops.md §5.3).

An op whose `prev` or a `deps` entry is not yet applied waits here, indexed by
the (author, seq) it waits for, so that applying that op releases exactly its
waiters. The set is bounded in ops and bytes; when full, the oldest waiter is
dropped (anti-entropy fetches it again later), so a peer that floods us with
ops from nowhere only pushes out its own noise and older waiters, never applied ops.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .ops import Dep, Op

MAX_PENDING_OPS = 10_000
MAX_PENDING_BYTES = 16 * 1024 * 1024


def _size(op: Op) -> int:
    """Bytes a waiter takes: its header and the content it carries (ops.md §12)."""
    return len(op.wire) + (len(op.content) if op.content is not None else 0)


@dataclass(frozen=True, slots=True)
class Waiting:
    op: Op
    missing: Dep  # the one op this waiter is blocked on now


class PendingSet:
    def __init__(self, max_ops: int = MAX_PENDING_OPS, max_bytes: int = MAX_PENDING_BYTES) -> None:
        self.max_ops = max_ops
        self.max_bytes = max_bytes
        self._by_id: dict[bytes, Waiting] = {}  # insertion-ordered: oldest first
        self._by_missing: dict[tuple[bytes, int], set[bytes]] = {}
        self.bytes = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, op_id: bytes) -> bool:
        return op_id in self._by_id

    def get(self, op_id: bytes) -> Op | None:
        waiting = self._by_id.get(op_id)
        return waiting.op if waiting is not None else None

    def add(self, op: Op, missing: Dep) -> list[Op]:
        """Park `op` until `missing` is applied; returns the ops evicted to make room."""
        if op.id in self._by_id:
            self._remove(op.id)
        evicted: list[Op] = []
        while self._by_id and (len(self._by_id) >= self.max_ops
                               or self.bytes + _size(op) > self.max_bytes):
            oldest = next(iter(self._by_id))
            evicted.append(self._remove(oldest).op)
            self.evicted += 1
        self._by_id[op.id] = Waiting(op, missing)
        self._by_missing.setdefault((missing.author, missing.seq), set()).add(op.id)
        self.bytes += _size(op)
        return evicted

    def release(self, author: bytes, seq: int) -> list[Op]:
        """Take out the ops waiting for (author, seq), oldest first."""
        ids = self._by_missing.pop((author, seq), None)
        if not ids:
            return []
        order = [i for i in self._by_id if i in ids] if len(ids) > 1 else list(ids)
        return [self._remove(i, index=False).op for i in order]

    def release_from(self, author: bytes, seq: int) -> list[Op]:
        """Take out every op waiting for `author` at `seq` or later (a fork was found)."""
        keys = [k for k in self._by_missing if k[0] == author and k[1] >= seq]
        out: list[Op] = []
        for key in keys:
            out.extend(self.release(*key))
        return out

    def waiting(self) -> Iterator[Op]:
        """Every waiting op, oldest first."""
        for waiting in self._by_id.values():
            yield waiting.op

    def wanted(self) -> Iterator[Dep]:
        """What to ask peers for: each missing op once, oldest waiter first."""
        seen: set[tuple[bytes, int]] = set()
        for waiting in self._by_id.values():
            key = (waiting.missing.author, waiting.missing.seq)
            if key not in seen:
                seen.add(key)
                yield waiting.missing

    def _remove(self, op_id: bytes, index: bool = True) -> Waiting:
        waiting = self._by_id.pop(op_id)
        self.bytes -= _size(waiting.op)
        if index:
            key = (waiting.missing.author, waiting.missing.seq)
            ids = self._by_missing.get(key)
            if ids is not None:
                ids.discard(op_id)
                if not ids:
                    del self._by_missing[key]
        return waiting
