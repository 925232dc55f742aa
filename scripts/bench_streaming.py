#!/usr/bin/env python3
"""Bulk op streaming between two real daemons vs a raw aiortc data channel (issue #4).

Node A starts with --ops signed ops already in its store; node B, empty, dials A
and catches up by anti-entropy (bucketed heads, then ranges of ops in ~16 KiB
frames with flow control). We time from B's "up" log line to B holding every op
(polling its status every 20 ms: that much resolution), then report op bytes per
second beside the raw aiortc throughput for 16 KiB messages
measured in this same run (scripts/bench_datachannel.py's RawPair). Target:
streaming >= 50% of raw.

Also printed: the ceiling that signature checks alone put on the ratio, whatever
else the code does: every op's signature is verified once, so B takes in at
most (cores x one core's raw verify rate) ops/s, i.e. that many times the mean op
size in bytes per second (`verify_ceiling_ratio`, measured in this run too). And
the ceiling that the CPU both daemons spend per op puts on it (`cpu_ceiling_ratio`):
A serving, B taking in and its workers checking share the cores, so they stream at
most (cores / CPU per op) ops/s, whatever the scheduling (Linux: from /proc).

    .venv/test/bin/python scripts/bench_streaming.py --ops 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import nacl.bindings
from bench_datachannel import RawPair, stream

from liberation_node import datadir
from liberation_node.core.bodies import Post
from liberation_node.core.identity import Identity
from liberation_node.core.ops import OP_DOMAIN, Op
from liberation_node.core.replica import Replica
from tests.daemon.harness import NETWORK, Daemon, wait_until

T0 = 1_764_000_000_000


def cpu_s(pid: int, children: bool = True) -> float:
    """CPU seconds (user + system) process `pid` has spent so far, and with `children`
    those of its living child processes (the daemon's signature-check workers), from
    /proc; 0 where there is no /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        if children:
            for tid in os.listdir(f"/proc/{pid}/task"):
                kids = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
                total += sum(cpu_s(int(kid), children=False) for kid in kids)
    except (OSError, ValueError, IndexError):
        pass
    return total


def verify_rate(ops: list[Op]) -> float:
    """One core's raw PyNaCl verify rate on these ops (scripts/bench_ingest.py's)."""
    items = [(op.signature + OP_DOMAIN + b"\x99" + op.wire[1:-66], op.author)
             for op in ops[:4000]]
    start = time.perf_counter()
    for signed, key in items:
        nacl.bindings.crypto_sign_open(signed, key)
    return len(items) / (time.perf_counter() - start)


async def preload(path: Path, count: int, authors: int) -> tuple[int, float]:
    node_dir, _ = datadir.init(path, NETWORK)
    rnd = random.Random(1)
    people = [Identity.from_seed(rnd.randbytes(32)) for _ in range(authors)]
    replica = Replica(NETWORK)
    ops = []
    for i in range(count):
        text = f"op {i} " + "x" * rnd.randint(40, 200)
        ops.append(replica.append(people[i % authors], Post("social", text, 1, None),
                                  T0 + i).applied[0])
    async with node_dir.open_store() as store:
        for i in range(0, len(ops), 1000):
            await store.write(ops[i : i + 1000])
    return sum(len(op.wire) for op in ops), max(verify_rate(ops) for _ in range(3))


async def raw_mb_s(repeat: int, mib: int) -> float:
    best = 0.0
    for _ in range(repeat):
        pair = RawPair()
        await pair.open()
        seconds = await stream(pair, 16 * 1024, mib * 64)
        await pair.close()
        best = max(best, mib * 2**20 / seconds / 1e6)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=50_000)
    parser.add_argument("--authors", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"signing and storing {args.ops} ops...", file=sys.stderr)
        payload, verify = asyncio.run(preload(root / "a", args.ops, args.authors))
        raw = asyncio.run(raw_mb_s(args.repeat, 32))
        results = []
        for k in range(args.repeat):
            a = Daemon(root / "a", name="a").start(timeout=60)
            b = Daemon(root / f"b{k}", name=f"b{k}", bootstrap=[a.peer_url])
            try:
                t0 = time.monotonic()
                b.start(timeout=60)
                started = time.monotonic() - t0
                assert a.proc is not None and b.proc is not None
                cpu_a, cpu_b = cpu_s(a.proc.pid), cpu_s(b.proc.pid)
                wait_until(lambda b=b: b.status()["ops"] >= args.ops, 300, "B to catch up",
                           interval=0.02)
                total = time.monotonic() - t0
                cpu_a, cpu_b = cpu_s(a.proc.pid) - cpu_a, cpu_s(b.proc.pid) - cpu_b
                seconds = total - started
                results.append({"seconds": round(seconds, 2),
                                "ops_per_s": round(args.ops / seconds),
                                "mb_per_s": round(payload / seconds / 1e6, 2),
                                "cpu_us_per_op": round((cpu_a + cpu_b) / args.ops * 1e6, 1),
                                "a_cpu_us_per_op": round(cpu_a / args.ops * 1e6, 1),
                                "b_cpu_us_per_op": round(cpu_b / args.ops * 1e6, 1)})
            finally:
                b.kill()
                a.kill()
        best = max(results, key=lambda r: r["mb_per_s"])
        cores = os.cpu_count() or 1
        ceiling = cores * verify * payload / args.ops / 1e6  # MB/s
        # What the cores allow at the CPU both daemons spent per op (A serving, B taking
        # in, its workers checking; the least of the runs): cores / that, in MB/s.
        cpu_op = min(r["cpu_us_per_op"] for r in results) or float("nan")
        cpu_ceiling = cores * 1e6 / cpu_op * payload / args.ops / 1e6
        print(json.dumps({"ops": args.ops, "payload_mb": round(payload / 1e6, 1),
                          "runs": results, "best_mb_per_s": best["mb_per_s"],
                          "raw_16k_mb_per_s": round(raw, 2),
                          "ratio_to_raw": round(best["mb_per_s"] / raw, 3), "target": 0.5,
                          "raw_verify_per_s": round(verify), "cores": cores,
                          "verify_ceiling_mb_per_s": round(ceiling, 2),
                          "verify_ceiling_ratio": round(ceiling / raw, 3),
                          "cpu_us_per_op": cpu_op, "cpu_ceiling_mb_per_s": round(cpu_ceiling, 2),
                          "cpu_ceiling_ratio": round(cpu_ceiling / raw, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
