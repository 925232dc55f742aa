"""A check shared by the store's tests: a table indexed by its rows' place in their feed
(store/sqlite.py, "Keys")."""

from __future__ import annotations

import sqlite3


def assert_keyed_by_place(db: sqlite3.Connection, table: str, index: str) -> None:
    """`table`'s one index is `index`, unique over (author, seq, id), and a row that goes
    is found by it."""
    indexes = [(row[1], row[2]) for row in db.execute(f"PRAGMA index_list({table})")]
    assert indexes == [(index, 1)]  # unique, and the only one
    columns = [row[2] for row in db.execute(f"PRAGMA index_info({index})")]
    assert columns == ["author", "seq", "id"]
    plan = " ".join(str(row) for row in db.execute(
        f"EXPLAIN QUERY PLAN DELETE FROM {table} WHERE author = ? AND seq = ? AND id = ?",
        (b"", 0, b"")))
    assert index in plan
