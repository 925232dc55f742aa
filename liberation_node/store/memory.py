"""An in-memory store with the same behaviour as `SqliteStore`, row for row.

The simulator gives each virtual node one of these and "restarts" a node by
building a new replica from it, so the data outlives `close()`: only a new
`MemoryStore` starts empty. Writes are validated before anything changes, so
a refused batch leaves no trace, as a rolled-back transaction would.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.contents import Change
from ..core.ops import Op
from ..core.records import Record
from .base import (
    DUPLICATE_OP,
    EXCLUDED_REASON,
    NOT_OPEN,
    ContentRow,
    OpRow,
    RecordRow,
    Store,
    StoreCounts,
    StoreError,
    check_row,
    final_contents,
    op_row,
    record_row,
)


class MemoryStore(Store):
    def __init__(self) -> None:
        # Dicts keep insertion order, which stands in for SQLite's rowid order:
        # a deleted op that came back would go to the end in both.
        self._ops: dict[bytes, OpRow] = {}
        self._excluded: dict[bytes, tuple[OpRow, str]] = {}
        self._records: dict[tuple[bytes, str], RecordRow] = {}
        # By place in feed and id, as SQLite's index finds them (a change at another
        # place than the row's misses it there too).
        self._contents: dict[tuple[bytes, int, bytes], ContentRow] = {}
        self._meta: dict[str, str] = {}
        self._open = False

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError(NOT_OPEN)

    async def load_ops(self) -> list[bytes]:
        self._check_open()
        return [check_row("ops", n, row[0], row[4]) for n, row in enumerate(self._ops.values(), 1)]

    async def load_excluded(self) -> list[tuple[bytes, str]]:
        self._check_open()
        return [(check_row("excluded_ops", n, row[0], row[4]), reason)
                for n, (row, reason) in enumerate(self._excluded.values(), 1)]

    async def load_records(self) -> list[bytes]:
        self._check_open()
        rows = [self._records[key] for key in sorted(self._records)]
        return [check_row("records", n, row[2], row[5]) for n, row in enumerate(rows, 1)]

    async def load_contents(self) -> list[ContentRow]:
        self._check_open()
        return list(self._contents.values())

    async def write(self, applied: Sequence[Op], excluded: Sequence[Op] = (),
                    records: Sequence[Record] = (),
                    dropped_records: Sequence[Record] = (), *, sync: bool = False,
                    contents: Sequence[Change] = ()) -> None:
        self._check_open()
        ids = [op.id for op in applied]
        if len(set(ids)) != len(ids) or any(i in self._ops for i in ids):
            raise StoreError(DUPLICATE_OP)
        for op in applied:
            self._ops[op.id] = op_row(op)
        for op in excluded:
            self._ops.pop(op.id, None)
            self._excluded.setdefault(op.id, (op_row(op), EXCLUDED_REASON))
        for record in records:
            self._records[record.key] = record_row(record)
        for record in dropped_records:
            held = self._records.get(record.key)
            if held is not None and held[2] == record.id:
                del self._records[record.key]
        for author, seq, op_id, content in final_contents(contents, excluded):
            if content is None:
                self._contents.pop((author, seq, op_id), None)
            else:
                self._contents[author, seq, op_id] = (author, seq, op_id, content)

    async def meta_get(self, key: str) -> str | None:
        self._check_open()
        return self._meta.get(key)

    async def meta_set(self, key: str, value: str) -> None:
        self._check_open()
        self._meta[key] = value

    async def counts(self) -> StoreCounts:
        self._check_open()
        return StoreCounts(len(self._ops), len(self._excluded), len(self._records),
                           len(self._contents))

    async def checkpoint(self) -> None:
        self._check_open()

    def stored_bytes(self) -> bytes:
        """Every byte this store holds, for checks that grep a store (the simulator's)."""
        parts = [row[4] for row in self._ops.values()]
        parts += [row[4] for row, _ in self._excluded.values()]
        parts += [row[5] for row in self._records.values()]
        parts += [row[3] for row in self._contents.values()]
        return b"\x00".join(parts)
