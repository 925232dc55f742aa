"""The store writer (liberation_node/writer.py): group commit, acknowledgement after the
commit, nothing lost while the store fails, and backpressure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from liberation_node.core.bodies import Post
from liberation_node.core.contents import Change
from liberation_node.core.errors import NotWritable
from liberation_node.core.events import Changed
from liberation_node.core.ops import Op
from liberation_node.core.records import Record
from liberation_node.store import MemoryStore, StoreError
from liberation_node.writer import StoreWriter

from .history import HistoryBuilder, identity

ALICE = identity(0)


class FlakyStore(MemoryStore):
    """Fails its writes while `broken` is set; records each commit."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False
        self.commits: list[tuple[int, bool]] = []  # (ops, sync)

    async def write(self, applied: Sequence[Op], excluded: Sequence[Op] = (),
                    records: Sequence[Record] = (), dropped_records: Sequence[Record] = (),
                    *, sync: bool = False,
                    contents: Sequence[Change] = ()) -> None:
        await asyncio.sleep(0)
        if self.broken:
            raise StoreError("database or disk is full")
        await super().write(applied, excluded, records, dropped_records, sync=sync,
                            contents=contents)
        self.commits.append((len(applied), sync))


def ops(n: int) -> list[Op]:
    h = HistoryBuilder()
    return [h.write(ALICE, Post("social", f"m{i}", 1, None)) for i in range(n)]


def changed(op: Op, ticket: int, own: bool) -> Changed:
    return Changed((op,), (), (), (), None if own else b"p" * 32, ticket)


async def _writer(store: FlakyStore, max_queued: int = 100
                  ) -> tuple[StoreWriter, list[int], asyncio.Task[None]]:
    await store.open()
    committed: list[int] = []
    writer = StoreWriter(store, lambda ticket, n: committed.append(ticket), lambda: None,
                         max_queued)
    return writer, committed, asyncio.create_task(writer.run())


async def test_writes_arriving_together_share_one_commit_and_are_acked_after_it() -> None:
    store = FlakyStore()
    writer, committed, task = await _writer(store)
    batch = ops(5)
    acks = []
    for ticket, op in enumerate(batch, 1):
        writer.put(changed(op, ticket, own=True))
        acks.append(writer.ack(ticket))
    assert not any(a.done() for a in acks)  # nothing acknowledged before the commit
    await asyncio.gather(*acks)
    assert store.commits == [(5, True)]  # one transaction, synced: own writes
    assert committed == [5]
    await writer.close()
    await task


async def test_foreign_ops_are_committed_without_sync() -> None:
    store = FlakyStore()
    writer, _, task = await _writer(store)
    writer.put(changed(ops(1)[0], 1, own=False))
    await writer.ack(1)
    assert store.commits == [(1, False)]
    await writer.close()
    await task


async def test_a_failing_store_refuses_acks_keeps_the_ops_and_catches_up() -> None:
    store = FlakyStore()
    store.broken = True
    writer, committed, task = await _writer(store)
    first, second = ops(2)
    writer.put(changed(first, 1, own=True))
    with pytest.raises(NotWritable, match="disk is full"):
        await writer.ack(1)
    assert writer.error == "database or disk is full"
    writer.put(changed(second, 2, own=True))  # arrives while the store fails
    later = writer.ack(2)
    store.broken = False
    await later  # the retry commits both, in order
    assert writer.error is None and committed[-1] == 2
    assert await store.load_ops() == [first.wire, second.wire]
    await writer.close()
    await task


async def test_a_long_queue_is_congested() -> None:
    store = FlakyStore()
    store.broken = True
    writer, _, task = await _writer(store, max_queued=3)
    for ticket, op in enumerate(ops(3), 1):
        writer.put(changed(op, ticket, own=False))
    assert writer.congested and writer.queued_ops == 3
    store.broken = False
    await writer.ack(3)
    assert not writer.congested and writer.queued_ops == 0
    await writer.close()
    await task


async def test_closing_with_ops_queued_commits_them_and_ends() -> None:
    """A node stopping right after a catch-up: ops were still queued when the writer was
    told to close. It committed them, then waited for more work that never came, and the
    daemon hung on SIGTERM until it was killed (seen between two daemons: 3 stops in 4)."""
    store = FlakyStore()
    writer, committed, task = await _writer(store)
    batch = ops(3)
    for ticket, op in enumerate(batch, 1):
        writer.put(changed(op, ticket, own=False))
    await writer.close()  # before the writer ran: all three are queued
    async with asyncio.timeout(5):
        await task
    assert committed == [3] and await store.load_ops() == [op.wire for op in batch]
