"""The store's size by kind, for `status` and `/metrics` (docs/api.md).

Counted from the replica, which holds exactly what the store holds but for the
batches not committed yet, and which keeps these totals as it changes: a status
request never scans the store. The files' sizes come from the file system.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.replica import Replica


def store_sizes(replica: Replica, path: Path | None = None) -> dict[str, Any]:
    """`kinds`: {kind: {count, bytes}} for op headers by op kind, post `contents` and
    `records`; `retention`: the contents retention may drop, and its budget;
    `file_bytes` and `wal_bytes` when `path` (the SQLite file) is given."""
    kinds: dict[str, dict[str, int]] = {
        kind: {"count": count, "bytes": size}
        for kind, (count, size) in sorted(replica.kinds.items()) if count}
    contents = replica.contents
    kinds["contents"] = {"count": len(contents), "bytes": contents.bytes}
    kinds["records"] = {"count": len(replica.records),
                        "bytes": sum(len(r.wire) for r in replica.records.values())}
    policy = contents.policy
    out: dict[str, Any] = {
        "kinds": kinds,
        "retention": {"droppable_bytes": contents.droppable_bytes,
                      "budget_bytes": policy.max_bytes if policy else 0,
                      "max_days": policy.config.max_days if policy else 0,
                      "dropped": contents.dropped}}
    if path is not None:
        out["file_bytes"] = _size(path)
        out["wal_bytes"] = _size(path.with_name(path.name + "-wal"))
    return out


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
