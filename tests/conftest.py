"""Fixtures shared by the store tests (tests/test_store*.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from liberation_node.store import MemoryStore, SqliteStore, Store


@pytest.fixture(params=["memory", "sqlite"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """A factory of unopened stores over the same data: a restart is a new store."""
    if request.param == "memory":
        shared = MemoryStore()
        return lambda: shared
    return lambda: SqliteStore(tmp_path / "replica.sqlite3")
