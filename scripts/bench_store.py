#!/usr/bin/env python3
"""Store write cost as the store grows: CPU per op committed, per slice of ops.

Commits N ops (a realistic mix: registrations, claims, posts with their texts,
payments; 100 authors) into a fresh SQLite store through the node's own path
(`persist`, one transaction per --batch ops, as the writer does), and prints the CPU
time per op of the process that commits (the loop and SQLite's thread) for each
--slice ops, so that a cost that grows with the store shows. With --baseline DIR,
the same ops are committed by another checkout of the project (a detached worktree
at the commit before a change, say) in the same run, runs alternating (--repeat),
each slice's best printed: these machines are noisy. Then this checkout opens the
baseline's last store and times it: the migration of its schema to this one.

Each run is a process of its own with PYTHONPATH at its checkout; the ops are made
once and handed to both as a file of wire bytes.

    .venv/test/bin/python scripts/bench_store.py --ops 300000 --baseline ../base
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import NETWORK, make_history

from liberation_node.core.ingested import Ingested
from liberation_node.core.replica import Replica
from liberation_node.store import SqliteStore
from liberation_node.store.loader import persist

HERE = Path(__file__).resolve().parent


async def commit_all(results: list[Ingested], batch: int, slice_ops: int,
                     path: Path) -> list[float]:
    """CPU µs per op of each slice of `slice_ops` ops, committed `batch` at a time."""
    costs: list[float] = []
    async with SqliteStore(path) as store:
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


def run(code: Path, wires: Path, store: Path, args: argparse.Namespace) -> list[float]:
    """One run in its own process, with the project at `code` (the store is kept)."""
    for leftover in store.parent.glob(store.name + "*"):
        leftover.unlink()
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run(
        [sys.executable, __file__, "--commit", str(wires), str(store), "--batch",
         str(args.batch), "--slice", str(args.slice)],
        env=env, check=True, capture_output=True, text=True).stdout
    return [float(c) for c in json.loads(out.splitlines()[-1])["cpu_us_per_op"]]


async def commit_file(wires: Path, store: Path, batch: int, slice_ops: int) -> None:
    """The child's part: ingest the ops (checking them), then time their commits."""
    replica = Replica(NETWORK)
    results = [replica.ingest(w) for w in msgpack.unpackb(wires.read_bytes())]
    costs = await commit_all(results, batch, slice_ops, store)
    print(json.dumps({"cpu_us_per_op": [round(c, 2) for c in costs]}))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=300_000)
    parser.add_argument("--authors", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1024, help="ops per transaction")
    parser.add_argument("--slice", type=int, default=100_000, help="ops per figure")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="another checkout of the project")
    parser.add_argument("--commit", nargs=2, type=Path, metavar=("WIRES", "STORE"),
                        help=argparse.SUPPRESS)  # a run's own process
    args = parser.parse_args()
    if args.commit:
        await commit_file(*args.commit, args.batch, args.slice)
        return 0
    print(f"making {args.ops} signed ops...", file=sys.stderr)
    _, wires = make_history(args.ops, args.authors, seed=1)
    codes = {"this": HERE.parent}
    if args.baseline is not None:
        codes = {"baseline": args.baseline.resolve(), **codes}
    best: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "wires.msgpack"
        data.write_bytes(msgpack.packb(wires))
        for _ in range(args.repeat):
            for name, code in codes.items():
                costs = run(code, data, Path(tmp) / f"{name}.sqlite3", args)
                print(json.dumps({name: [round(c, 1) for c in costs]}), file=sys.stderr)
                old = best.get(name)
                best[name] = costs if old is None else [
                    min(a, b) for a, b in zip(old, costs, strict=True)]
        # The last baseline store, migrated as a node of this version opens it.
        migrated = await migrate(Path(tmp) / "baseline.sqlite3") if args.baseline else None
    for k, this in enumerate(best["this"]):
        row: dict[str, object] = {"ops_stored_before": k * args.slice, "ops": args.slice,
                                  "cpu_us_per_op": round(this, 1)}
        if "baseline" in best:
            base = best["baseline"][k]
            row |= {"baseline_cpu_us_per_op": round(base, 1), "ratio": round(this / base, 3)}
        print(json.dumps(row))
    if migrated is not None:
        print(json.dumps({"migrate_baseline_store_s": round(migrated, 2), "ops": args.ops}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
