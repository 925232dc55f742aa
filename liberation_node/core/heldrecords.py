"""The records a replica holds: one per (author, kind), the newest version winning,
expired by the receiver's clock, and dropped by local policy when over the cap
(protocols/ops.md §8: records; §8.4: last-writer-wins; §8.5: expiry; sync.md §9.1).

A mixin of `Replica` (replica.py), which owns every attribute named below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .ingested import Ingested, Outcome
from .records import Record

if TYPE_CHECKING:
    from .verified import Verified


class HeldRecords:
    """Records held, superseded, dropped and expired (taken in by `Replica.ingest_record`)."""

    # Owned and set by Replica (replica.py).
    network: str
    verified: Verified
    records: dict[tuple[bytes, str], Record]
    _record_ids: dict[bytes, Record]
    _records_digest: bytes | None
    watchers: list[Callable[[bytes, str | None], None]]

    def add_record(self, record: Record) -> Ingested:
        """Hold `record` if it supersedes the held one; `result.record` is set when it does."""
        held = self.records.get(record.key)
        if held is not None and held.id == record.id:
            return Ingested(Outcome.DUPLICATE, record.id)
        if held is not None and not record.supersedes(held):
            return Ingested(Outcome.STALE, record.id)
        self.records[record.key] = record
        self._record_ids[record.id] = record
        if held is not None:
            self._record_ids.pop(held.id, None)
        self._records_digest = None
        self._record_changed(record)
        return Ingested(Outcome.APPLIED, record.id, record=record, replaced=held)

    def _record_changed(self, record: Record) -> None:
        for watcher in self.watchers:
            watcher(record.author, record.kind)

    def drop_record(self, record: Record) -> None:
        """Stop holding `record` (local policy: the cap on records kept, sync.md §9.1)."""
        if self.records.get(record.key) is record:
            del self.records[record.key]
            self._record_ids.pop(record.id, None)
            self._records_digest = None
            self._record_changed(record)

    def record(self, rid: bytes) -> Record | None:
        """The held record with id `rid`, if any."""
        return self._record_ids.get(rid)

    def prune_records(self, now: int) -> list[Record]:
        """Drop expired records (call periodically); returns what was dropped."""
        gone = [r for r in self.records.values() if r.expires <= now]
        for record in gone:
            del self.records[record.key]
            self._record_ids.pop(record.id, None)
            self._record_changed(record)
        if gone:
            self._records_digest = None
        return gone
