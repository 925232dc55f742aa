"""Durable storage of the replica: the `Store` protocol, an in-memory and an SQLite store,
and the loader that rebuilds a replica from a store (DESIGN.md §1, protocols/ops.md §5, §8)."""

from .base import CorruptRow, SchemaTooNew, Store, StoreCounts, StoreError
from .loader import apply_retention, bind_network, open_replica, persist
from .memory import MemoryStore
from .sqlite import MIGRATIONS, SqliteStore

__all__ = [
    "MIGRATIONS",
    "CorruptRow",
    "MemoryStore",
    "SchemaTooNew",
    "SqliteStore",
    "Store",
    "StoreCounts",
    "StoreError",
    "apply_retention",
    "bind_network",
    "open_replica",
    "persist",
]
