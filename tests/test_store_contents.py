"""Post contents in the store (store/, protocols/ops.md §12): kept apart from their headers,
rebuilt with the replica, gone from the files once deleted, and stores of schema 1 (format-1
ops, texts inline) migrated."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liberation_node.core.bodies import Post, Register, Retract
from liberation_node.core.contents import Retention, RetentionConfig
from liberation_node.core.identity import Identity
from liberation_node.core.ops import Op, create_op
from liberation_node.core.reading import Reader
from liberation_node.core.replica import Replica
from liberation_node.store import (
    MIGRATIONS,
    CorruptRow,
    MemoryStore,
    SqliteStore,
    Store,
    apply_retention,
    open_replica,
    persist,
)

from .history import NETWORK as HISTORY_NETWORK
from .history import HistoryBuilder
from .storekeys import assert_keyed_by_place
from .test_properties import FAST, histories

NET = "test"
NOW = 1_795_000_000_000
A, B, C = (Identity.from_seed(bytes([n]) * 32) for n in (1, 2, 3))
SECRET = "the password is swordfish"
PUBLIC = "meet at the square, nine o'clock, bring bread"


def written() -> tuple[Replica, list]:  # type: ignore[type-arg]
    src = Replica(NET)
    results = [src.append(A, Register("a"), NOW), src.append(B, Register("b"), NOW)]
    results.append(src.append(A, Post("social", PUBLIC, 1, None), NOW + 1))
    results.append(src.append(A, Post("direct", SECRET, 1, B.public_key), NOW + 2,
                              bytes([7]) * 32))
    return src, results


async def test_contents_come_back_with_the_replica(reopen: Callable[[], Store]) -> None:
    src, results = written()
    async with reopen() as store:
        await persist(store, results)
        assert (await store.counts()).contents == 2
    async with reopen() as store:
        rebuilt = await open_replica(store, NET)
    assert rebuilt.digest() == src.digest()
    assert dict(rebuilt.contents.items()) == dict(src.contents.items())
    post = results[2].applied[0]
    reading = Reader(B, NET).read(post, rebuilt.contents)
    assert reading.text == PUBLIC


async def test_a_retraction_deletes_the_content_row(reopen: Callable[[], Store]) -> None:
    src, results = written()
    post = results[2].applied[0]
    results.append(src.append(A, Retract(post.id), NOW + 3))
    assert results[-1].contents == [(post.author, post.seq, post.id, None)]
    async with reopen() as store:
        await persist(store, results[:3])  # the post and its content, then...
        await persist(store, results[3:])  # ...the retraction that purges it
        rebuilt = await open_replica(store, NET)
        assert post.id not in rebuilt.contents and post.id in rebuilt.ops
        assert post.id in rebuilt.contents.retracted
        assert (await store.counts()).contents == 1


async def test_a_damaged_content_row_is_named(tmp_path: Path) -> None:
    path = tmp_path / "replica.sqlite3"
    _, results = written()
    async with SqliteStore(path) as store:
        await persist(store, results)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE contents SET content = ? WHERE length(content) < 100",
                   (PUBLIC.upper().encode(),))
    db.close()
    async with SqliteStore(path) as store:
        with pytest.raises(CorruptRow, match=r"contents row .* is corrupt"):
            await open_replica(store, NET)


async def test_a_smaller_budget_at_start_drops_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "replica.sqlite3"
    src = Replica(NET)
    results = [src.append(A, Register("a"), NOW)]
    for n in range(6):
        results.append(src.append(A, Post("social", f"{n}" * 1000, 1, None), NOW + n))
    async with SqliteStore(path) as store:
        await persist(store, results)
        replica = await open_replica(store, NET)
        policy = Retention(RetentionConfig(max_mib=1), C.public_key)  # all of them others'
        policy.max_bytes = 3500
        assert await apply_retention(store, replica, policy, NOW) == 3
        assert (await store.counts()).contents == 3
        assert sorted(c for _, c in replica.contents.items()) == [
            b"3" * 1000, b"4" * 1000, b"5" * 1000]


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


async def test_deleted_text_is_gone_from_the_files_after_the_checkpoint(tmp_path: Path) -> None:
    """secure_delete zeroes the row's bytes and the pages it frees; the truncating
    checkpoint removes the older copies the WAL still holds (store/sqlite.py)."""
    path = tmp_path / "replica.sqlite3"
    src, results = written()
    post = results[2].applied[0]
    long_text = (PUBLIC * 91).ljust(4096, ".")  # over a page: it spills into overflow pages
    results.append(src.append(A, Post("billboard", long_text, 1, None), NOW + 3))
    big = results[-1].applied[0]
    async with SqliteStore(path) as store:
        await persist(store, results)
        await store.checkpoint()  # the texts are in the database file now, not only the WAL
        assert PUBLIC.encode() in path.read_bytes()
        for target in (post, big):
            results.append(src.append(A, Retract(target.id), NOW + 10))
        await persist(store, results[-2:])
        assert PUBLIC.encode() in file_bytes(path)  # the WAL still has the old pages
        await store.checkpoint()
        assert PUBLIC.encode() not in file_bytes(path)
        assert (path.parent / (path.name + "-wal")).stat().st_size == 0
    assert PUBLIC.encode() not in file_bytes(path)
    assert SECRET.encode() not in file_bytes(path)  # a direct message is never in the clear


async def test_a_schema_1_store_with_format_1_ops_is_migrated(tmp_path: Path) -> None:
    """A store written before op format 2: its ops (texts inline) stay valid, feeds go on."""
    path = tmp_path / "replica.sqlite3"
    old: list[Op] = []
    prev = None
    for seq, body in enumerate((Register("a"), Post("social", "from the old days", 1, None),
                                Post("direct", "old and in the clear", 1, B.public_key)), 1):
        op = create_op(A, network=NET, seq=seq, prev=prev, timestamp=NOW + seq, body=body,
                       format=1)
        old.append(op)
        prev = op.id
    async with SqliteStore(path, migrations=MIGRATIONS[:1]) as store:
        await store.write(old)
        await store.meta_set("network", NET)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (1,)
    db.close()
    async with SqliteStore(path) as store:
        replica = await open_replica(store, NET)
        assert [op.wire for op in replica.order] == [op.wire for op in old]
        new = replica.append(A, Post("social", "and the new", 1, None), NOW + 10)
        new_op = new.applied[0]
        assert new_op.format == 2 and new_op.seq == 4 and new_op.prev == old[-1].id
        await persist(store, [new])
        again = await open_replica(store, NET)
        assert again.digest() == replica.digest()
        # The old direct message stays plaintext in the store, but only its two
        # parties are shown its text.
        assert Reader(C, NET).read(old[2], again.contents).unreadable == "not_for_this_node"
        assert Reader(B, NET).read(old[2], again.contents).text == "old and in the clear"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert db.execute("SELECT count(*) FROM contents").fetchone() == (1,)
    db.close()


async def test_a_schema_3_store_keeps_its_contents_under_the_feed_key(tmp_path: Path) -> None:
    """Schema 4 indexes post texts by their op's place in its feed, as schema 3 did the
    ops (store/sqlite.py, "Keys"): every text comes back, a left-over one is not carried
    over, and a retraction's purge finds its row by the index."""
    path = tmp_path / "replica.sqlite3"
    src, results = written()
    async with SqliteStore(path, migrations=MIGRATIONS[:3]) as store:
        await store.write([op for r in results for op in r.applied])
        await store.meta_set("network", NET)
    with sqlite3.connect(path) as db:  # schema 3: the texts keyed by op id alone
        db.executemany("INSERT INTO contents (id, content) VALUES (?, ?)",
                       [*src.contents.items(), (bytes(32), b"an op nobody holds")])
    db.close()
    async with SqliteStore(path) as store:
        rebuilt = await open_replica(store, NET)
        assert dict(rebuilt.contents.items()) == dict(src.contents.items())
        assert (await store.counts()).contents == 2
        post = results[2].applied[0]
        await persist(store, [src.append(A, Retract(post.id), NOW + 3)])
        assert (await store.counts()).contents == 1
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert_keyed_by_place(db, "contents", "contents_in_feed")
    db.close()


async def test_a_content_row_out_of_its_place_is_named(tmp_path: Path) -> None:
    """A text stored at another place than its op's would never be found to delete (a
    retraction's purge goes by place): refused as damage, as a wrong text is."""
    path = tmp_path / "replica.sqlite3"
    _, results = written()
    async with SqliteStore(path) as store:
        await persist(store, results)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE contents SET seq = seq + 5 WHERE length(content) < 100")
    db.close()
    async with SqliteStore(path) as store:
        with pytest.raises(CorruptRow, match=r"contents row .* is corrupt: it is stored at"):
            await open_replica(store, NET)


@FAST
@given(histories, st.randoms(use_true_random=False))
def test_any_history_in_any_order_keeps_each_text_at_its_place(h: HistoryBuilder,
                                                               rnd: Any) -> None:
    """Posts with their texts, retractions and forks, in any order (the ops waiting for
    their past meanwhile), one batch per op: reopened, both stores hold exactly the
    replica's texts, each at its op's place in its feed."""
    wires = list(h.sent)
    rnd.shuffle(wires)
    with tempfile.TemporaryDirectory() as tmp:
        for store in (SqliteStore(Path(tmp) / "replica.sqlite3"), MemoryStore()):
            asyncio.run(_keeps_texts_at_their_places(store, wires))


async def _keeps_texts_at_their_places(store: Store, wires: list[bytes]) -> None:
    replica = Replica(HISTORY_NETWORK)
    async with store:
        for wire in wires:
            await persist(store, [replica.ingest(wire)])
        rows = await store.load_contents()
        rebuilt = await open_replica(store, HISTORY_NETWORK)
    assert dict(rebuilt.contents.items()) == dict(replica.contents.items())
    assert sorted((a, s, i) for a, s, i, _ in rows) == sorted(
        (replica.ops[i].author, replica.ops[i].seq, i) for i, _ in replica.contents.items())
