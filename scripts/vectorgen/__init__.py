"""The protocol vector generator behind scripts/make_vectors.py (protocols/ops.md, sync.md,
transport.md, discovery.md)."""

from __future__ import annotations

from typing import Any

from . import (
    binding,
    bodies,
    discovery,
    encoding,
    feeds,
    frames,
    identity,
    ledger,
    ops,
    records,
)


def build_all() -> dict[str, dict[str, Any]]:
    """File name -> content of every vector file in protocols/vectors/."""
    return {
        "identity.json": identity.build(),
        "encoding.json": encoding.build(),
        "ops_valid.json": ops.build_valid(),
        "ops_invalid.json": {
            "description": "Ops a node refuses. 'cases': wires decoded on their own for "
                           "'network' (and, where 'now' is given, with that receiver clock, "
                           "ms), each with the rejection reason. 'sequences': wires "
                           "ingested in order by one replica, with the outcome of each step "
                           "(applied, duplicate, pending + the op it waits for, fork, "
                           "rejected + reason), the ops each step applied (released waiters "
                           "included) or excluded, waiters dropped, and the final state.",
            "spec": "protocols/ops.md §3-§7, §5.3, §9",
            "cases": ops.decode_cases(),
            "sequences": feeds.sequence_cases(),
        },
        "records.json": records.build(),
        "ledger.json": ledger.build_ledger(),
        "forks.json": ledger.build_forks(),
        "frames.json": frames.build(),
        "binding.json": binding.build(),
        "discovery.json": discovery.build(),
        "bodies.json": bodies.build(),
    }
