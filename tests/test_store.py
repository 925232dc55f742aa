"""The durable store (store/): both stores alike, SQLite's schema, corruption and crash safety."""

from __future__ import annotations

import contextlib
import importlib.util
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from liberation_node.core.bodies import Claim, Post, Register, Retract, Transfer
from liberation_node.core.identity import Identity
from liberation_node.core.ingested import Ingested, Outcome
from liberation_node.core.ledger import iso_week
from liberation_node.core.ops import Op, create_op
from liberation_node.core.records import NodeInfo, NodeLinks, Record, create_record
from liberation_node.core.replica import Replica
from liberation_node.store import (
    MIGRATIONS,
    CorruptRow,
    MemoryStore,
    SchemaTooNew,
    SqliteStore,
    Store,
    StoreCounts,
    StoreError,
    open_replica,
    persist,
)

from .storekeys import assert_keyed_by_place

NET = "test"
NOW = 1_795_000_000_000  # 2026-11-18, ms
HOUR = 3_600_000
A, B, C = (Identity.from_seed(bytes([n]) * 32) for n in (1, 2, 3))


def history() -> list[Op]:
    """Every op kind from three authors, in the order the authors wrote them."""
    src = Replica(NET)
    ops = [src.append(who, Register(f"human {n}"), NOW + n).applied[0]
           for n, who in enumerate((A, B, C))]
    ops.append(src.append(A, Claim(iso_week(NOW)), NOW + 10).applied[0])
    ops.append(src.append(A, Transfer(B.public_key, 12_345, "rent"), NOW + 11).applied[0])
    # B's claim acknowledges A's transfer (deps).
    ops.append(src.append(B, Claim(iso_week(NOW)), NOW + 12).applied[0])
    post = src.append(C, Post("billboard", "hello mesh", 7, None), NOW + 13).applied[0]
    ops += [post, src.append(C, Retract(post.id), NOW + 14).applied[0]]
    ops += [src.append(B, Post("direct", f"note {n}", 3, A.public_key), NOW + 20 + n,
                       bytes([n]) * 32).applied[0] for n in range(5)]
    return ops


def deliver(ops: list[Op], seed: int) -> tuple[Replica, list[Ingested]]:
    """Ingest `ops` in a shuffled order, so that some wait and are released later."""
    order = list(ops)
    random.Random(seed).shuffle(order)
    replica = Replica(NET)
    return replica, [replica.ingest(op.wire) for op in order]


def info(who: Identity, version: int, ttl: int = HOUR) -> Record:
    body = NodeInfo(f"node {version}", "liberation-node/0.1", (), ("sync",), ())
    return create_record(who, network=NET, version=version, ttl_ms=ttl, body=body)


def fork(ops: list[Op], who: Identity) -> Op:
    """A second, different op at the seq of `who`'s second op: an equivocation."""
    second = [op for op in ops if op.author == who.public_key][1]
    return create_op(who, network=NET, seq=second.seq, prev=second.prev,
                     timestamp=second.timestamp, body=Post("social", "other", 1, None))


async def test_round_trip_rebuilds_the_same_replica(reopen: Callable[[], Store]) -> None:
    replica, results = deliver(history(), seed=1)
    records = [info(A, NOW), info(B, NOW + 1)]
    for record in records:
        replica.add_record(record)
    async with reopen() as store:
        await persist(store, results, records)
    async with reopen() as store:
        rebuilt = await open_replica(store, NET, now=NOW)
        assert await store.load_ops() == [op.wire for op in replica.order]
        counts = await store.counts()
    assert rebuilt.digest() == replica.digest()
    assert (counts.ops, counts.excluded, counts.records) == (len(history()), 0, 2)
    assert rebuilt.ledger.pool_available == replica.ledger.pool_available


async def test_a_batch_is_all_or_nothing(reopen: Callable[[], Store]) -> None:
    ops = history()
    async with reopen() as store:
        await store.write(ops[:5])
        for bad in (ops[4:8], [ops[6], ops[6]]):  # one already stored; one twice in a batch
            with pytest.raises(StoreError, match="nothing written"):
                await store.write(bad, records=[info(A, NOW)])
        assert await store.load_ops() == [op.wire for op in ops[:5]]
        assert await store.load_records() == []


async def test_forked_ops_move_to_the_forensic_table(reopen: Callable[[], Store]) -> None:
    ops = history()
    replica, results = deliver(ops, seed=2)
    forked = replica.ingest(fork(ops, B).wire)
    assert forked.outcome is Outcome.FORK and forked.excluded
    async with reopen() as store:  # one batch: some ops are applied, then voided, in it
        await persist(store, [*results, forked])
    async with reopen() as store:
        rebuilt = await open_replica(store, NET)
        excluded = await store.load_excluded()
    assert rebuilt.digest() == replica.digest()
    assert excluded == [(op.wire, "forked") for op in forked.excluded]
    assert [author for author, _, _ in rebuilt.forks()] == [B.public_key]


async def test_records_are_replaced_and_dropped(reopen: Callable[[], Store]) -> None:
    old, new, b_info = info(A, NOW), info(A, NOW + 5), info(B, NOW)
    async with reopen() as store:
        await store.write([], records=[old, b_info])
        await store.write([], records=[new], dropped_records=[old])  # old is no longer held
        assert sorted(await store.load_records()) == sorted([new.wire, b_info.wire])
        await store.write([], dropped_records=[new])
        assert await store.load_records() == [b_info.wire]
        b_links = create_record(B, network=NET, version=NOW, ttl_ms=HOUR, body=NodeLinks(()))
        await store.write([], records=[b_links])  # another kind: another row
        assert await store.counts() == StoreCounts(0, 0, 2)
        rebuilt = await open_replica(store, NET, now=NOW + HOUR)  # both expired at NOW + HOUR
        assert rebuilt.records == {}
        assert await store.load_records() == []  # expired ones are deleted on load


async def test_both_stores_behave_alike(tmp_path: Path) -> None:
    ops = history()
    replica, results = deliver(ops, seed=3)
    forked = replica.ingest(fork(ops, A).wire)
    records = [info(A, NOW), info(C, NOW), info(A, NOW + 9)]
    seen = []
    for store in (MemoryStore(), SqliteStore(tmp_path / "alike.sqlite3")):
        async with store:
            await persist(store, results[:7], records[:2])
            await persist(store, [*results[7:], forked], records[2:], records[:1])
            await store.meta_set("k", "v1")
            await store.meta_set("k", "v2")
            seen.append((await store.load_ops(), await store.load_excluded(),
                         await store.load_records(), await store.counts(),
                         await store.meta_get("k"), await store.meta_get("missing")))
    assert seen[0] == seen[1]


async def test_the_network_is_bound_on_first_use(reopen: Callable[[], Store]) -> None:
    async with reopen() as store:
        await open_replica(store, NET)
        with pytest.raises(StoreError, match="holds network 'test', not 'other'"):
            await open_replica(store, "other")


async def test_the_genesis_is_bound_on_first_use(reopen: Callable[[], Store]) -> None:
    """ops.md §14: ops stored under one genesis may be invalid under another."""
    async with reopen() as store:
        assert (await open_replica(store, NET, genesis=1_000)).genesis == 1_000
    async with reopen() as store:
        assert (await open_replica(store, NET)).genesis == 1_000  # None: the stored one
        with pytest.raises(StoreError, match="genesis 1000, not 2000"):
            await open_replica(store, NET, genesis=2_000)


async def test_a_closed_store_refuses_use(reopen: Callable[[], Store]) -> None:
    store = reopen()
    with pytest.raises(StoreError, match="not open"):
        await store.load_ops()
    async with store:
        pass
    await store.close()  # twice is fine
    with pytest.raises(StoreError, match="not open"):
        await store.write(history()[:1])


# -- SQLite only -------------------------------------------------------------------------


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection, as someone with the sqlite3 shell has: committed, closed."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        yield db


def user_version(path: Path) -> int:
    with raw(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


async def test_an_old_schema_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    ops = history()
    async with SqliteStore(path) as store:
        await store.write(ops)
    assert user_version(path) == len(MIGRATIONS)
    later = (*MIGRATIONS, ("CREATE TABLE peers (id BLOB PRIMARY KEY) STRICT",))
    async with SqliteStore(path, migrations=later) as store:
        assert await store.load_ops() == [op.wire for op in ops]
    assert user_version(path) == len(MIGRATIONS) + 1
    with raw(path) as db:
        assert db.execute("SELECT count(*) FROM peers").fetchone() == (0,)


async def test_a_schema_2_store_keeps_its_ops_in_order_under_the_feed_key(
        tmp_path: Path) -> None:
    """Schema 3 indexes op rows by (author, seq, id), not by id (an id is a hash: each
    insert hit a random index page; store/sqlite.py, "Keys"). A store written at
    schema 2, forked ops and all, migrates with every row, in order, and goes on."""
    path = tmp_path / "v2.sqlite3"
    ops = history()
    replica, results = deliver(ops, seed=2)
    forked = replica.ingest(fork(ops, B).wire)
    async with SqliteStore(path, migrations=MIGRATIONS[:2]) as store:
        await persist(store, results[:6])
    with raw(path) as db:
        assert db.execute("PRAGMA index_list(ops)").fetchall()[0][1].startswith(
            "sqlite_autoindex_ops")  # schema 2: the id's own index
    async with SqliteStore(path) as store:
        await persist(store, [*results[6:], forked])
        rebuilt = await open_replica(store, NET)
        assert await store.load_excluded() == [(op.wire, "forked") for op in forked.excluded]
    assert user_version(path) == len(MIGRATIONS)
    assert rebuilt.digest() == replica.digest()
    with raw(path) as db:
        assert_keyed_by_place(db, "ops", "ops_in_feed")  # an excluded op is found by it
    async with SqliteStore(path) as store:
        with pytest.raises(StoreError, match="nothing written"):  # an id is still unique
            await store.write([ops[0]])


async def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    async with SqliteStore(path) as store:
        await store.write(history())
    with raw(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    before = path.read_bytes()
    threads = set(threading.enumerate())
    with pytest.raises(SchemaTooNew, match="upgrade liberation-node"):
        async with SqliteStore(path):
            pass
    assert path.read_bytes() == before
    for thread in set(threading.enumerate()) - threads:  # aiosqlite's, if not yet ended
        thread.join(timeout=10)  # ends only if the refused connection was closed
        assert not thread.is_alive()


async def test_foreign_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a database at all, " * 100)
    with pytest.raises(StoreError, match="not a liberation-node store"):
        await SqliteStore(junk).open()
    other = tmp_path / "other.sqlite3"
    with raw(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not a liberation-node store"):
        await SqliteStore(other).open()


@pytest.mark.parametrize("table", ["ops", "records"])
async def test_a_corrupt_row_is_named(tmp_path: Path, table: str) -> None:
    path = tmp_path / "corrupt.sqlite3"
    async with SqliteStore(path) as store:
        await store.write(history()[:3], records=[info(A, NOW), info(B, NOW)])
    key = "rowid" if table == "ops" else "author"  # records are listed by (author, kind)
    with raw(path) as db:  # flip one bit of the second row's wire
        target, wire = db.execute(f"SELECT {key}, wire FROM {table} ORDER BY {key}").fetchall()[1]
        damaged = wire[:40] + bytes([wire[40] ^ 1]) + wire[41:]
        db.execute(f"UPDATE {table} SET wire = ? WHERE {key} = ?", (damaged, target))
    async with SqliteStore(path) as store:
        with pytest.raises(CorruptRow, match=rf"{table} row 2 .* is corrupt"):
            await open_replica(store, NET)


CHILD = Path(__file__).with_name("store_crash_child.py")


def load_child() -> ModuleType:
    """The child's module, for its constants and its deterministic `batches`."""
    spec = importlib.util.spec_from_file_location("store_crash_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_acknowledged_batches_survive_sigkill(tmp_path: Path) -> None:
    child = load_child()
    path = tmp_path / "crash.sqlite3"
    acked = 4
    with (tmp_path / "stderr").open("w+") as errors:
        proc = subprocess.Popen([sys.executable, str(CHILD), str(path)],
                                stdout=subprocess.PIPE, stderr=errors, text=True)
        assert proc.stdout is not None
        for number in range(1, acked + 1):
            line = proc.stdout.readline()
            errors.seek(0)
            assert line == f"stored {number}\n", errors.read()
        proc.send_signal(signal.SIGKILL)  # while it is in the middle of later batches
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    async with SqliteStore(path) as store:
        stored = await store.load_ops()
        assert len(stored) % child.BATCH == 0  # whole transactions only
        expected = Replica(child.NETWORK)
        for batch in child.batches():
            if len(expected.ops) == len(stored):
                break
            for op in batch:
                expected.add(op)
        assert len(stored) >= acked * child.BATCH
        assert stored == [op.wire for op in expected.order]
        rebuilt = await open_replica(store, child.NETWORK)
    assert rebuilt.digest() == expected.digest()
