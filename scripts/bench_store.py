#!/usr/bin/env python3
"""Store write cost as the store grows: CPU per op committed, per slice of ops.

Commits N ops (a realistic mix: registrations, claims, posts with their texts,
payments; 100 authors) into a fresh SQLite store through the node's own path
(`persist`, one transaction per --batch ops, as the writer does), and prints the CPU
time per op of this process (the loop and SQLite's thread) for each --slice ops,
so that a cost that grows with the store shows. Baseline in the same run: the same
ops into a store at schema version 2, whose op rows were indexed by id (schema 3
indexes them by their place in their feed: liberation_node/store/sqlite.py, "Keys").
Runs alternate (--repeat), and each slice's best is printed: these machines are noisy.

    .venv/test/bin/python scripts/bench_store.py --ops 300000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import NETWORK, make_history

from liberation_node.core.ingested import Ingested
from liberation_node.core.replica import Replica
from liberation_node.store import MIGRATIONS, SqliteStore
from liberation_node.store.loader import persist
from liberation_node.store.sqlite import Migration


async def commit_all(results: list[Ingested], migrations: Sequence[Migration], batch: int,
                     slice_ops: int, path: Path) -> list[float]:
    """CPU µs per op of each slice of `slice_ops` ops, committed `batch` at a time."""
    costs: list[float] = []
    async with SqliteStore(path, migrations=migrations) as store:
        cpu, done = time.process_time(), 0
        for i in range(0, len(results), batch):
            chunk = results[i : i + batch]
            await persist(store, chunk)
            done += len(chunk)
            if done >= slice_ops:
                costs.append((time.process_time() - cpu) / done * 1e6)
                cpu, done = time.process_time(), 0
        if done >= slice_ops // 2:  # the rest, if near a slice
            costs.append((time.process_time() - cpu) / done * 1e6)
        assert (await store.counts()).ops == len(results)
    return costs


async def migrate(path: Path) -> float:
    """Seconds to open a store of an older schema: the migration to this one."""
    start = time.perf_counter()
    async with SqliteStore(path):
        pass
    return time.perf_counter() - start


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=300_000)
    parser.add_argument("--authors", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1024, help="ops per transaction")
    parser.add_argument("--slice", type=int, default=100_000, help="ops per figure")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"making {args.ops} signed ops...", file=sys.stderr)
    _, wires = make_history(args.ops, args.authors, seed=1)
    replica = Replica(NETWORK)
    results = [replica.ingest(w) for w in wires]
    best: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name, migrations in (("baseline_schema_2", MIGRATIONS[:2]),
                                     ("this", MIGRATIONS)):
                path = Path(tmp) / f"{name}.sqlite3"
                for leftover in Path(tmp).glob(f"{name}.sqlite3*"):
                    leftover.unlink()
                costs = await commit_all(results, migrations, args.batch, args.slice, path)
                print(json.dumps({name: [round(c, 1) for c in costs]}), file=sys.stderr)
                old = best.get(name)
                best[name] = costs if old is None else [
                    min(a, b) for a, b in zip(old, costs, strict=True)]
        # The last baseline store, migrated as a node of this version opens it.
        migrated = await migrate(Path(tmp) / "baseline_schema_2.sqlite3")
    for k, (this, base) in enumerate(zip(best["this"], best["baseline_schema_2"], strict=True)):
        print(json.dumps({
            "ops_stored_before": k * args.slice, "ops": args.slice,
            "cpu_us_per_op": round(this, 1), "baseline_cpu_us_per_op": round(base, 1),
            "ratio": round(this / base, 3)}))
    print(json.dumps({"migrate_schema_2_to_3_s": round(migrated, 2), "ops": len(results)}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
