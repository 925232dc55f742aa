"""The durable store: the contract both stores keep, and the rows they keep.

While a node runs, the replica (core/replica.py) is the truth; the store is
what survives a restart. It keeps exactly the ops the replica holds, in the
order the replica applied them, which is a causal order (protocols/ops.md §5):
re-applying them in that order rebuilds the same replica, with the same digest.
It also keeps the records the replica holds (§8), one per (author, kind), the
post contents it holds (§12: apart from their headers, so that dropping one,
for retention or because its post was retracted, deletes exactly its row) and,
apart from all of these, the ops that a fork voided: evidence of an
equivocation, never replicated, never reloaded.

`MemoryStore` (simulation, unit tests) and `SqliteStore` (the node) share the
row layouts and checks below, so that they behave alike row for row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from ..core.contents import Change
from ..core.errors import Void
from ..core.ops import Op, op_id
from ..core.records import Record

# The replica excludes a held op for one reason only: its author equivocated at
# or below its seq (protocols/ops.md §9), so the op is void and not part of the
# canonical set. The reason column is there for the forensics of later kinds.
EXCLUDED_REASON = Void.FORKED.value

OpRow = tuple[bytes, bytes, int, str, bytes]  # id, author, seq, kind, wire
RecordRow = tuple[bytes, str, bytes, int, int, bytes]  # author, kind, id, version, expires, wire
ContentRow = tuple[bytes, int, bytes, bytes]  # author, seq, op id, content


class StoreError(Exception):
    """The store cannot do what was asked; the message says why, for a human."""


class SchemaTooNew(StoreError):
    """The database was written by a newer liberation-node; it is left untouched."""


class CorruptRow(StoreError):
    """A stored row does not match its own content hash."""


@dataclass(frozen=True, slots=True)
class StoreCounts:
    ops: int
    excluded: int
    records: int
    contents: int = 0


def final_contents(changes: Sequence[Change], excluded: Sequence[Op] = ()) -> list[Change]:
    """What a batch's content changes come to, one per op (the last change wins): a
    content to hold, or None to delete. The contents of excluded ops go too."""
    out: dict[bytes, Change] = {op.id: (op.author, op.seq, op.id, None) for op in excluded}
    for change in changes:
        out[change[2]] = change
    return list(out.values())


def op_row(op: Op) -> OpRow:
    return (op.id, op.author, op.seq, op.kind, op.wire)


def record_row(record: Record) -> RecordRow:
    return (record.author, record.kind, record.id, record.version, record.expires, record.wire)


def check_row(table: str, row: int, stored_id: object, wire: object) -> bytes:
    """Return `wire` if `stored_id` is its BLAKE2b-256 hash, else raise `CorruptRow`.

    Ops and records share this id function (core/ops.py `op_id`, core/records.py).
    Checking on every load turns silent disk or hand-edit damage into a clear
    refusal naming the row, instead of a replica that quietly differs from its peers.
    """
    if type(wire) is not bytes or type(stored_id) is not bytes or op_id(wire) != stored_id:
        shown = stored_id.hex() if isinstance(stored_id, bytes) else repr(stored_id)[:40]
        raise CorruptRow(f"{table} row {row} (id {shown}) is corrupt: its bytes do not hash "
                         "to its id; restore the store from a backup or delete it to resync "
                         "from peers")
    return wire


DUPLICATE_OP = "write refused, nothing written: an applied op is already stored"
NOT_OPEN = "the store is not open"


class Store(Protocol):
    """What the node and the simulator need from durable storage.

    Implementations subclass this protocol explicitly to inherit the async
    context manager, so that `async with` always closes them: an unclosed
    aiosqlite connection keeps a non-daemon thread alive and hangs process exit.
    """

    async def open(self) -> None:
        """Open (creating or migrating as needed); raises `StoreError`."""
        ...

    async def close(self) -> None:
        """Release everything; safe to call twice or after a failed `open`."""
        ...

    async def load_ops(self) -> list[bytes]:
        """Op wire bytes in storage order (a causal order); raises `CorruptRow`."""
        ...

    async def load_excluded(self) -> list[tuple[bytes, str]]:
        """(wire, reason) of the ops a fork voided, oldest first, for forensics only."""
        ...

    async def load_records(self) -> list[bytes]:
        """Record wire bytes, ordered by (author, kind); raises `CorruptRow`."""
        ...

    async def load_contents(self) -> list[ContentRow]:
        """(author, seq, op id, content) of every post content held (protocols/ops.md
        §12), placed in their ops' feeds."""
        ...

    async def write(self, applied: Sequence[Op], excluded: Sequence[Op] = (),
                    records: Sequence[Record] = (),
                    dropped_records: Sequence[Record] = (), *, sync: bool = False,
                    contents: Sequence[Change] = ()) -> None:
        """Persist one batch in one transaction; returns only once it is durable.

        Durable means it survives a crash of this process. With `sync` it also
        survives a power cut: the node asks for that when the batch holds its own
        writes, which it acknowledges and publishes right after (DESIGN §8).

        In order: append `applied`; move `excluded` out of the ops into the
        forensic table; put each record in place of the held one for its
        (author, kind); delete each of `dropped_records` that is still the held
        one; then hold or delete post contents as `contents` says (the last change
        of an op wins; an excluded op's content goes too). An applied op that
        is already stored refuses the whole batch (`StoreError`, nothing written):
        the replica never applies an op twice, so it means the store and the
        replica have parted.
        """
        ...

    async def meta_get(self, key: str) -> str | None: ...

    async def meta_set(self, key: str, value: str) -> None: ...

    async def counts(self) -> StoreCounts: ...

    async def checkpoint(self) -> None:
        """Make deleted contents unrecoverable from the files (sqlite.py: the WAL's old
        copies of their pages go); nothing to do for a store without files."""
        ...

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
