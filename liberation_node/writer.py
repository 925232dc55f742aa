"""The store writer: group commit, acknowledgements, retries (DESIGN §8).

One task writes everything the mesh changed, in the order it changed it (the
store's order is a causal order, store/base.py). Changes that arrive while a
commit runs join the next one, so a burst of writes shares one transaction and
one fsync. A batch holding own writes is committed with `sync=True` (it
survives a power cut, not only a crash), because the node acknowledges and
publishes those writes right after; `ack(ticket)` is how a caller waits for that.

When a commit fails (disk full, I/O error, a read-only file) nothing is lost:
the batch stays queued, merged with what arrives meanwhile, and is retried with
a growing pause until it commits. Meanwhile `error` says why, and callers
waiting for an acknowledgement get `NotWritable` at once instead of hanging:
their op stays queued and is stored (and published) if the store recovers.
`congested` tells the node to stop taking in ops from peers while the queue is
long (they are fetched again by anti-entropy later): the queue stays bounded.

A batch that deleted post contents (a retraction's purge, retention) is followed,
`PURGE_DELAY_S` later, by a checkpoint that leaves no older copy of them in the
files (store/sqlite.py; protocols/ops.md §12.6). Purges close together share one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .core.contents import Change
from .core.errors import NotWritable
from .core.events import Changed
from .core.ops import Op
from .core.records import Record
from .store.base import Store, StoreError

log = logging.getLogger("liberation_node.store")

RETRY_FIRST_S = 0.1
RETRY_MAX_S = 5.0
PURGE_DELAY_S = 1.0  # from a batch that deleted contents to the checkpoint that purges them


@dataclass
class _Batch:
    """Queued changes merged into one transaction's worth."""

    applied: list[Op] = field(default_factory=list)
    excluded: list[Op] = field(default_factory=list)
    records: dict[tuple[bytes, str], Record] = field(default_factory=dict)  # the last per key
    dropped: list[Record] = field(default_factory=list)
    contents: list[Change] = field(default_factory=list)  # in order
    ticket: int = 0  # the last Changed merged in
    own: bool = False  # holds own writes: commit with sync

    def add(self, event: Changed) -> None:
        self._extend(event.applied, event.excluded, event.records, event.dropped_records,
                     event.ticket, event.source is None and bool(event.applied),
                     event.contents)

    def merge(self, later: _Batch) -> None:
        self._extend(later.applied, later.excluded, later.records.values(), later.dropped,
                     later.ticket, later.own, later.contents)

    @property
    def purges(self) -> bool:
        return bool(self.excluded) or any(c[3] is None for c in self.contents)

    def _extend(self, applied: Iterable[Op], excluded: Iterable[Op],
                records: Iterable[Record], dropped: Iterable[Record], ticket: int,
                own: bool, contents: Iterable[Change]) -> None:
        self.contents.extend(contents)
        self.applied.extend(applied)
        self.excluded.extend(excluded)
        for record in records:  # a later record for a key replaces an earlier one
            self.records.pop(record.key, None)
            self.records[record.key] = record
        self.dropped.extend(dropped)
        self.ticket = max(self.ticket, ticket)
        self.own = self.own or own


class StoreWriter:
    def __init__(self, store: Store, on_commit: Callable[[int, int], None],
                 on_state: Callable[[], None], max_queued_ops: int) -> None:
        """`on_commit(ticket, ops)`: everything up to `ticket` is stored; `on_state()`:
        `error` or `congested` may have changed."""
        self.store = store
        self.on_commit = on_commit
        self.on_state = on_state
        self.max_queued_ops = max_queued_ops
        self.error: str | None = None
        self.queued_ops = 0
        self.committed_ops = 0
        self.committed_ticket = 0
        self._batch = _Batch()
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self.purge_pending = False  # deleted contents may still have copies in the files
        self._purge_at: asyncio.TimerHandle | None = None
        self._purge_now = False

    @property
    def congested(self) -> bool:
        return self.queued_ops >= self.max_queued_ops

    def put(self, event: Changed) -> None:
        self._batch.add(event)
        self.queued_ops += len(event.applied)
        self._wake.set()

    def ack(self, ticket: int) -> asyncio.Future[None]:
        """Resolves once the change numbered `ticket` is committed; fails with
        `NotWritable` if its commit fails (it is retried, but not waited for)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if ticket <= self.committed_ticket:
            future.set_result(None)
        else:
            self._waiters[ticket] = future
        return future

    async def close(self) -> None:
        """Commit what is queued (one last try if the store is failing), then end `run`."""
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            # A closing writer never waits to be woken: it commits what is queued, then
            # ends. Waiting after a batch queued when `close` was called (nothing wakes
            # it then) hung the node's stop for good.
            if not self._closing:
                await self._wake.wait()
            self._wake.clear()
            batch, self._batch = self._batch, _Batch()
            if self._purge_now or (self._closing and self.purge_pending and not batch.ticket):
                await self._purge()
            if not batch.ticket:
                if self._closing:
                    if self._purge_at is not None:
                        self._purge_at.cancel()
                    return
                continue
            try:
                await self.store.write(batch.applied, batch.excluded,
                                       list(batch.records.values()), batch.dropped,
                                       sync=batch.own, contents=batch.contents)
            except StoreError as exc:
                self._failed(batch, str(exc))
                if self._closing:
                    log.error("stopping with %d ops not stored: %s (own writes among them "
                              "were never acknowledged)", self.queued_ops, exc)
                    return
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                self._wake.set()
                continue
            delay = RETRY_FIRST_S
            self._committed(batch)
            if batch.purges:
                self._schedule_purge()

    def _schedule_purge(self, after: float = PURGE_DELAY_S) -> None:
        self.purge_pending = True
        if self._purge_at is None:
            self._purge_at = asyncio.get_running_loop().call_later(after, self._purge_due)

    def _purge_due(self) -> None:
        self._purge_at = None
        self._purge_now = True
        self._wake.set()

    async def _purge(self) -> None:
        self._purge_now = False
        try:
            await self.store.checkpoint()
        except StoreError as exc:
            log.info("purging deleted contents from the files waits: %s", exc)
            if not self._closing:
                self._schedule_purge(RETRY_MAX_S)
            return
        if self._purge_at is None:  # no batch deleted anything meanwhile
            self.purge_pending = False

    def _failed(self, batch: _Batch, reason: str) -> None:
        if self.error is None:
            log.error("the store cannot commit: %s; writes are refused and the batch is "
                      "retried until it commits", reason)
        self.error = reason
        # Put the batch back in front of what arrived meanwhile, in order.
        later, self._batch = self._batch, batch
        self._batch.merge(later)
        failure = NotWritable(f"the store cannot commit ({reason}); this write was not "
                              "acknowledged: it is stored and published if the store "
                              "recovers before the node stops")
        for ticket in [t for t in self._waiters if t <= batch.ticket]:
            future = self._waiters.pop(ticket)
            if not future.done():
                future.set_exception(failure)
        self.on_state()

    def _committed(self, batch: _Batch) -> None:
        if self.error is not None:
            log.warning("the store commits again; writes are accepted")
            self.error = None
        self.queued_ops -= len(batch.applied)
        self.committed_ops += len(batch.applied)
        self.committed_ticket = batch.ticket
        self.on_commit(batch.ticket, len(batch.applied))
        for ticket in [t for t in self._waiters if t <= batch.ticket]:
            future = self._waiters.pop(ticket)
            if not future.done():
                future.set_result(None)
        self.on_state()
