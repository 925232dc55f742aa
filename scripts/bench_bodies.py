#!/usr/bin/env python3
"""Message bodies benchmark (issue #11): what op format 2 costs in store bytes and ingest.

1. Store bytes per op: N posts stored in an SQLite store (after a checkpoint; the
   file's used pages, freelist excluded), as format-1 ops (the text inline, the
   baseline), as format-2 headers with their contents, and as format-2 headers
   whose contents were dropped (retention) — for public posts and for direct
   messages (format 1: plaintext; format 2: sealed and padded).
2. Ingest: carried forms through decode, verify, apply, the read index (which
   tries to open every direct message: one X25519 each) and a batched SQLite
   commit, for plain posts (the baseline) and for direct messages to other nodes.

Every figure is measured in this run; ratios are to the baseline measured beside it
(best of --repeat, interleaved: the machines are noisy).

    .venv/test/bin/python scripts/bench_bodies.py --ops 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from liberation_node.core.bodies import Post, Register
from liberation_node.core.identity import Identity
from liberation_node.core.ingested import Ingested
from liberation_node.core.ops import Op, create_op
from liberation_node.core.queries import Index
from liberation_node.core.reading import Reader
from liberation_node.core.replica import Replica
from liberation_node.runtime import tune_gc
from liberation_node.store.loader import persist
from liberation_node.store.sqlite import SqliteStore

NETWORK = "bench"
T0 = 1_764_000_000_000


def texts(n: int, rnd: random.Random) -> list[str]:
    """Feed-like texts: 45 to 180 bytes."""
    return ["a message of a typical length for the feed; " * rnd.randint(1, 4) + f"#{i}"
            for i in range(n)]


def feed(who: Identity, bodies: list[Post], fmt: int, rnd: random.Random) -> list[Op]:
    """One author's feed of `bodies` in op format `fmt` (contents attached in format 2)."""
    ops: list[Op] = []
    prev = None
    register = create_op(who, network=NETWORK, seq=1, prev=None, timestamp=T0,
                         body=Register("bench"), format=fmt)
    ops.append(register)
    prev = register.id
    for seq, body in enumerate(bodies, 2):
        op = create_op(who, network=NETWORK, seq=seq, prev=prev, timestamp=T0 + seq,
                       body=body, format=fmt, seal=rnd.randbytes(32))
        ops.append(op)
        prev = op.id
    return ops


async def stored_bytes(ops: list[Op], directory: Path, drop: bool) -> float:
    """Used bytes of an SQLite store holding `ops` (and their contents unless `drop`),
    per post."""
    path = directory / f"store-{time.monotonic_ns()}.sqlite3"
    async with SqliteStore(path) as store:
        replica = Replica(NETWORK)
        results: list[Ingested] = [replica.ingest(op.carried) for op in ops]
        await persist(store, results)
        if drop:
            await store.write((), contents=replica.drop_contents(
                [i for i, _ in list(replica.contents.items())]))
        await store.checkpoint()
    db = sqlite3.connect(path)
    try:
        pages, free, size = (db.execute(f"PRAGMA {p}").fetchone()[0]
                             for p in ("page_count", "freelist_count", "page_size"))
    finally:
        db.close()
    return (pages - free) * size / (len(ops) - 1)


async def ingest(wires: list[bytes], reader: Identity, directory: Path, batch: int) -> float:
    path = directory / f"ingest-{time.monotonic_ns()}.sqlite3"
    async with SqliteStore(path) as store:
        replica = Replica(NETWORK)
        index = Index(replica, reader.public_key, Reader(reader, NETWORK))
        start = time.perf_counter()
        for i in range(0, len(wires), batch):
            results = [replica.ingest(w) for w in wires[i : i + batch]]
            index.messages(1, now=T0)  # the read index catches up (and opens what it can)
            await persist(store, results)
        elapsed = time.perf_counter() - start
    return len(wires) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tune_gc()
    rnd = random.Random(args.seed)
    alice, bob, carol = (Identity.from_seed(rnd.randbytes(32)) for _ in range(3))
    words = texts(args.ops, rnd)
    public = [Post("social", t, 1, None) for t in words]
    direct = [Post("direct", t, 1, bob.public_key) for t in words]
    feeds = {(kind, fmt): feed(alice, bodies, fmt, rnd)
             for kind, bodies in (("public", public), ("direct", direct)) for fmt in (1, 2)}
    report: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        for kind in ("public", "direct"):
            v1 = asyncio.run(stored_bytes(feeds[kind, 1], where, drop=False))
            v2 = asyncio.run(stored_bytes(feeds[kind, 2], where, drop=False))
            dropped = asyncio.run(stored_bytes(feeds[kind, 2], where, drop=True))
            report |= {f"{kind}_v1_bytes": v1, f"{kind}_v2_bytes": v2,
                       f"{kind}_v2_dropped_bytes": dropped}
        plain = [op.carried for op in feeds["public", 2]]
        sealed = [op.carried for op in feeds["direct", 2]]
        best = {"plain": 0.0, "direct": 0.0, "direct_mine": 0.0}
        for _ in range(args.repeat):
            best["plain"] = max(best["plain"], asyncio.run(ingest(plain, carol, where,
                                                                  args.batch)))
            best["direct"] = max(best["direct"], asyncio.run(ingest(sealed, carol, where,
                                                                    args.batch)))
            best["direct_mine"] = max(best["direct_mine"], asyncio.run(
                ingest(sealed, bob, where, args.batch)))
        report |= {f"ingest_{k}": v for k, v in best.items()}
    mean_text = sum(len(t.encode()) for t in words) / len(words)
    if args.json:
        print(json.dumps({"ops": args.ops, "mean_text_bytes": mean_text,
                          **{k: round(v, 1) for k, v in report.items()}}))
        return 0
    print(f"{args.ops} posts of one author, texts of {mean_text:.0f} B on average")
    print("store bytes per post (used pages after a checkpoint)      ratio to format 1")
    for kind in ("public", "direct"):
        base = report[f"{kind}_v1_bytes"]
        print(f"  {kind:<7} format 1, text inline (baseline)  {base:>7.0f} B   1.00")
        for key, label in (("v2", "format 2, header + content     "),
                           ("v2_dropped", "format 2, content dropped      ")):
            value = report[f"{kind}_{key}_bytes"]
            print(f"  {kind:<7} {label} {value:>7.0f} B   {value / base:.2f}")
    base = report["ingest_plain"]
    print("ingest: decode, verify, apply, index, SQLite commit        ratio to plain posts")
    print(f"  plain posts (baseline)                   {base:>8.0f} ops/s   1.00")
    print(f"  direct messages, for other nodes         {report['ingest_direct']:>8.0f} ops/s"
          f"   {report['ingest_direct'] / base:.2f}")
    print(f"  direct messages, for this node (opened)  {report['ingest_direct_mine']:>8.0f} "
          f"ops/s   {report['ingest_direct_mine'] / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
