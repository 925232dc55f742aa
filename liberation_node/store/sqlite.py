"""The node's store: one SQLite file, written through aiosqlite.

Durability. WAL with synchronous=NORMAL: a transaction is in the WAL file (in
the OS's hands) when COMMIT returns, so a batch that `write` acknowledged
survives a crash of this process (SIGKILL included); a power cut may lose the
last batches before a checkpoint, never corrupt the file, and peers send those
ops again on the next sync. A batch written with `sync=True` (the node's own
writes, which it acknowledges and publishes next) runs with synchronous=FULL:
COMMIT returns after the WAL is fsynced, so it survives a power cut too. One
batch is one transaction (executemany), and one fsync for a whole group of
writes, which is what keeps the write rate up.

Read-only. `SqliteStore(path, read_only=True)` opens the file without creating,
migrating or writing anything (`summary` beside a running node).

Schema. `MIGRATIONS[n]` takes a database from schema version n to n + 1; the
version is `PRAGMA user_version`, and each step commits with its version bump.
A database from a newer version is refused before anything is written to it,
so that a downgrade can never damage the data of an upgrade.

Order. `ops` is a rowid table and rows are only appended: SQLite gives a new
row the largest rowid plus one, so rowid order is storage order, a causal order.

Keys. An op row is indexed by (author, seq, id), its place in its feed, not by
its id alone (schema 3), and so is a post's text in `contents` (schema 4). An id
is a hash: an index on it puts each new row at a random place, so a batch dirties
about as many index pages as it has rows (each written to the WAL at commit), and
the more so as the index grows. New ops of a feed go next to each other by
(author, seq). Measured by `scripts/bench_store.py` (each op committed with its
post's text, 1,024 ops per transaction; CPU per op over the first, second and
third 100,000 ops, best of 2, each step against the schema before it in one run):
ops by id 18.9, 32.6, 34.5 µs, ops by place 15.3, 22.0, 24.5 µs (schema 3); ops by
place 20.8, 29.5, 32.3 µs, ops and texts by place 20.9, 24.3, 23.6 µs (schema 4,
on a slower day). Below about 50,000 ops the longer keys cost about what they
save. The id stays unique with them: an id names one (author, seq). Nothing looks
a row up by id alone (ops are loaded in rowid order; an excluded op, and a text
that goes, are deleted by their place, author and seq first), so every change a
store writes carries its op's place (core/contents.py `Change`), and a text stored
at another place than its op's is refused at load as damage: no purge would ever
find it.

Contents that go must be gone (protocols/ops.md §12.6: a retracted post's text).
`secure_delete` makes SQLite overwrite a deleted row's bytes, and the pages it
frees, with zeros; the WAL still holds older copies of those pages until a
checkpoint that truncates it, which `checkpoint` runs (the writer calls it a
little after a batch that deleted contents). VACUUM would do it too, but it
rewrites the whole file (and needs as much free space again) for each purge.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from ..core.contents import Change
from ..core.ops import Op
from ..core.records import Record
from .base import (
    DUPLICATE_OP,
    EXCLUDED_REASON,
    NOT_OPEN,
    ContentRow,
    SchemaTooNew,
    Store,
    StoreCounts,
    StoreError,
    check_row,
    final_contents,
    op_row,
    record_row,
)

APPLICATION_ID = 0x4C4E4F44  # "LNOD" in the file header: this file is a liberation-node store

Migration = tuple[str, ...]

MIGRATIONS: tuple[Migration, ...] = (
    (  # 1: the first schema
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT",
        "CREATE TABLE ops (id BLOB PRIMARY KEY, author BLOB NOT NULL, seq INTEGER NOT NULL,"
        " kind TEXT NOT NULL, wire BLOB NOT NULL) STRICT",
        "CREATE TABLE excluded_ops (id BLOB PRIMARY KEY, author BLOB NOT NULL,"
        " seq INTEGER NOT NULL, kind TEXT NOT NULL, wire BLOB NOT NULL,"
        " reason TEXT NOT NULL) STRICT",
        "CREATE TABLE records (author BLOB NOT NULL, kind TEXT NOT NULL, id BLOB NOT NULL,"
        " version INTEGER NOT NULL, expires INTEGER NOT NULL, wire BLOB NOT NULL,"
        " PRIMARY KEY (author, kind)) STRICT, WITHOUT ROWID",
        f"PRAGMA application_id = {APPLICATION_ID}",
    ),
    (  # 2: post contents apart from their headers (op format 2, protocols/ops.md §12).
        # Ops already stored are format 1 and keep their bodies inline: still valid.
        "CREATE TABLE contents (id BLOB PRIMARY KEY, content BLOB NOT NULL) STRICT",
    ),
    (  # 3: ops indexed by their place in their feed, not by id (see "Keys" above).
        # The rows keep their rowids: rowid order is the order they are loaded in.
        "CREATE TABLE ops_3 (id BLOB NOT NULL, author BLOB NOT NULL, seq INTEGER NOT NULL,"
        " kind TEXT NOT NULL, wire BLOB NOT NULL) STRICT",
        "INSERT INTO ops_3 (rowid, id, author, seq, kind, wire)"
        " SELECT rowid, id, author, seq, kind, wire FROM ops ORDER BY rowid",
        "DROP TABLE ops",
        "ALTER TABLE ops_3 RENAME TO ops",
        "CREATE UNIQUE INDEX ops_in_feed ON ops (author, seq, id)",
    ),
    (  # 4: post contents indexed by their op's place in its feed too (see "Keys" above).
        # A content whose op is not held is left out: the loader would delete it.
        "CREATE TABLE contents_4 (author BLOB NOT NULL, seq INTEGER NOT NULL,"
        " id BLOB NOT NULL, content BLOB NOT NULL) STRICT",
        "INSERT INTO contents_4 (author, seq, id, content)"
        " SELECT ops.author, ops.seq, contents.id, contents.content"
        " FROM contents JOIN ops ON ops.id = contents.id ORDER BY ops.author, ops.seq",
        "DROP TABLE contents",
        "ALTER TABLE contents_4 RENAME TO contents",
        "CREATE UNIQUE INDEX contents_in_feed ON contents (author, seq, id)",
    ),
)

_INSERT_OP = "INSERT INTO ops (id, author, seq, kind, wire) VALUES (?, ?, ?, ?, ?)"
_EXCLUDE_OP = ("INSERT OR IGNORE INTO excluded_ops (id, author, seq, kind, wire, reason)"
               " VALUES (?, ?, ?, ?, ?, ?)")
_PUT_RECORD = ("INSERT OR REPLACE INTO records (author, kind, id, version, expires, wire)"
               " VALUES (?, ?, ?, ?, ?, ?)")


class SqliteStore(Store):
    def __init__(self, path: Path | str, *, migrations: Sequence[Migration] = MIGRATIONS,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        self.migrations = tuple(migrations)  # injectable so tests can play a later version
        self.read_only = read_only
        self._db: aiosqlite.Connection | None = None
        # One connection, one transaction at a time: without the lock, a read or a
        # meta_set awaited during a write would run inside that write's transaction.
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            if self.read_only:
                if not self.path.exists():
                    raise StoreError(f"{self.path} does not exist")
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                db = await aiosqlite.connect(uri, isolation_level=None, uri=True)
            else:
                db = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            await self._prepare(db)
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:
                await db.close()

    async def _prepare(self, db: aiosqlite.Connection) -> None:
        try:
            version = int(await _first(db, "PRAGMA user_version"))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a liberation-node store ({exc})") from exc
        latest = len(self.migrations)
        # Decide whether the file is ours to change before changing anything,
        # even the journal mode.
        if version > latest:
            raise SchemaTooNew(
                f"{self.path} has schema version {version}, but this liberation-node knows "
                f"versions up to {latest}; upgrade liberation-node (the file was left untouched)")
        if version == 0 and await _first(db, "SELECT count(*) FROM sqlite_master"):
            raise StoreError(f"{self.path} is an SQLite database but not a liberation-node store")
        if version > 0 and await _first(db, "PRAGMA application_id") != APPLICATION_ID:
            raise StoreError(f"{self.path} is an SQLite database but not a liberation-node store")
        if self.read_only:
            if version < latest:
                raise StoreError(f"{self.path} has schema version {version}; start the node "
                                 f"once to migrate it to version {latest}")
            return
        mode = await _first(db, "PRAGMA journal_mode = WAL")
        if mode != "wal":  # e.g. a file system without shared memory; say so, do not guess
            raise StoreError(f"{self.path}: SQLite cannot use WAL here (journal mode {mode})")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA secure_delete = ON")  # deleted contents are zeroed
        for target in range(version + 1, latest + 1):
            await db.execute("BEGIN IMMEDIATE")
            try:
                for statement in self.migrations[target - 1]:
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {target}")
                await db.commit()
            except sqlite3.Error as exc:
                await db.rollback()
                raise StoreError(f"{self.path}: migration to schema version {target} failed "
                                 f"({exc}); the file is still at version {target - 1}") from exc

    @contextlib.asynccontextmanager
    async def _using(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._db is None:
            raise StoreError(NOT_OPEN)
        async with self._lock:
            yield self._db

    async def load_ops(self) -> list[bytes]:
        async with self._using() as db:
            rows = await db.execute_fetchall("SELECT rowid, id, wire FROM ops ORDER BY rowid")
        return [check_row("ops", rowid, oid, wire) for rowid, oid, wire in rows]

    async def load_excluded(self) -> list[tuple[bytes, str]]:
        async with self._using() as db:
            rows = await db.execute_fetchall(
                "SELECT rowid, id, wire, reason FROM excluded_ops ORDER BY rowid")
        return [(check_row("excluded_ops", rowid, oid, wire), reason)
                for rowid, oid, wire, reason in rows]

    async def load_records(self) -> list[bytes]:
        async with self._using() as db:
            rows = await db.execute_fetchall(
                "SELECT id, wire FROM records ORDER BY author, kind")
        return [check_row("records", n, rid, wire) for n, (rid, wire) in enumerate(rows, 1)]

    async def load_contents(self) -> list[ContentRow]:
        async with self._using() as db:
            rows = await db.execute_fetchall("SELECT author, seq, id, content FROM contents")
        return [(bytes(a), s, bytes(i), bytes(c)) for a, s, i, c in rows]

    async def write(self, applied: Sequence[Op], excluded: Sequence[Op] = (),
                    records: Sequence[Record] = (),
                    dropped_records: Sequence[Record] = (), *, sync: bool = False,
                    contents: Sequence[Change] = ()) -> None:
        async with self._using() as db:
            if not (applied or excluded or records or dropped_records or contents):
                return
            if self.read_only:
                raise StoreError(f"{self.path} is open read-only")
            if sync:
                await db.execute("PRAGMA synchronous = FULL")
            try:
                await self._transaction(db, applied, excluded, records, dropped_records,
                                        final_contents(contents, excluded))
            finally:
                if sync:
                    await db.execute("PRAGMA synchronous = NORMAL")

    async def _transaction(self, db: aiosqlite.Connection, applied: Sequence[Op],
                           excluded: Sequence[Op], records: Sequence[Record],
                           dropped_records: Sequence[Record],
                           contents: list[Change]) -> None:
        await db.execute("BEGIN IMMEDIATE")
        try:
            if applied:
                await db.executemany(_INSERT_OP, [op_row(op) for op in applied])
            if excluded:
                await db.executemany("DELETE FROM ops WHERE author = ? AND seq = ? AND id = ?",
                                     [(op.author, op.seq, op.id) for op in excluded])
                await db.executemany(_EXCLUDE_OP, [(*op_row(op), EXCLUDED_REASON)
                                                   for op in excluded])
            if records:
                await db.executemany(_PUT_RECORD, [record_row(r) for r in records])
            if dropped_records:
                await db.executemany(
                    "DELETE FROM records WHERE author = ? AND kind = ? AND id = ?",
                    [(r.author, r.kind, r.id) for r in dropped_records])
            gone = [(a, s, i) for a, s, i, c in contents if c is None]
            if gone:
                await db.executemany(
                    "DELETE FROM contents WHERE author = ? AND seq = ? AND id = ?", gone)
            held = [change for change in contents if change[3] is not None]
            if held:
                await db.executemany("INSERT OR REPLACE INTO contents (author, seq, id, content)"
                                     " VALUES (?, ?, ?, ?)", held)
            await db.commit()
        except BaseException as exc:
            # Also on cancellation: the statements already queued run first
            # on aiosqlite's thread, then this rollback, so no half batch stays.
            # A failed COMMIT (disk full, I/O error) may have rolled back already.
            with contextlib.suppress(sqlite3.Error):
                await db.rollback()
            if isinstance(exc, sqlite3.IntegrityError):
                raise StoreError(DUPLICATE_OP) from exc
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"write to {self.path} failed, nothing written: {exc}") \
                    from exc
            raise

    async def meta_get(self, key: str) -> str | None:
        async with self._using() as db:
            value = await _first(db, "SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    async def meta_set(self, key: str, value: str) -> None:
        async with self._using() as db:
            await db.execute("INSERT INTO meta (key, value) VALUES (?, ?)"
                             " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             (key, value))

    async def counts(self) -> StoreCounts:
        async with self._using() as db:
            ops = await _first(db, "SELECT count(*) FROM ops")
            excluded = await _first(db, "SELECT count(*) FROM excluded_ops")
            records = await _first(db, "SELECT count(*) FROM records")
            contents = await _first(db, "SELECT count(*) FROM contents")
        return StoreCounts(ops, excluded, records, contents)

    async def checkpoint(self) -> None:
        """Copy the WAL into the file and truncate it to nothing, so that deleted
        contents (zeroed in their pages by secure_delete) leave no older copy behind.
        Raises `StoreError` when a reader holds an older snapshot (try again later)."""
        async with self._using() as db:
            if self.read_only:
                return
            try:
                row = await db.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise StoreError(f"checkpoint of {self.path} failed: {exc}") from exc
        busy = next(iter(row))[0] if row else 1
        if busy:
            raise StoreError(f"checkpoint of {self.path} could not finish: a reader is busy")


async def _first(db: aiosqlite.Connection, sql: str, params: tuple[object, ...] = ()) -> Any:
    """The first column of the first row, or None when there is no row."""
    for row in await db.execute_fetchall(sql, params):
        return row[0]
    return None
