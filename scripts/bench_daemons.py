#!/usr/bin/env python3
"""Real-daemon benchmarks (issue #4), all on 127.0.0.1, each process its own node.

  dissemination  N daemons (default 20) in a random graph; M ops (default 1000) posted
                 at one node through its API; per-op latency to every other node,
                 p50/p99/max, and whether all arrived (target p50 < 100 ms, all < 3 s)
  startup        `run` to /api/v1/status answering (target < 500 ms), best of K
  memory         RSS idle, and of one node with 30 peers (targets <= 80 / 100 MiB)
  dead-peer      SIGKILL a node: time until its neighbour logs it down (target <= 5 s)

Latency is measured from the moment the posting node's API returned the new op
id (the op is signed, stored locally and handed to gossip by then) to the moment
each receiving node reports it on its event WebSocket: one machine, one clock.

    .venv/test/bin/python scripts/bench_daemons.py all
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.daemon.harness import Daemon, converged, wait_until


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_mesh(root: Path, n: int, degree: int, seed: int, extra: list[str] | None = None
               ) -> list[Daemon]:
    rnd = random.Random(seed)
    daemons: list[Daemon] = []
    for i in range(n):
        boot = [d.peer_url for d in rnd.sample(daemons, min(degree // 2 or 1, len(daemons)))]
        d = Daemon(root / f"n{i}", name=f"n{i}", bootstrap=boot,
                   extra=["--low", str(degree // 2 + 1), "--high", str(degree + 2),
                          *(extra or [])])
        daemons.append(d.start(timeout=60))
    return daemons


async def dissemination(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    daemons = start_mesh(root, args.nodes, args.degree, args.seed)
    try:
        wait_until(lambda: all(len(d.status()["peers"]) >= 1 for d in daemons), 60,
                   "every node connected")
        source, others = daemons[0], daemons[1:]
        # Receivers report arrivals on their event streams; each op is timed from
        # the moment the posting API returned its id.
        ids: list[str] = []
        stamps: dict[str, float] = {}
        arrivals: dict[Daemon, dict[str, float]] = {d: {} for d in others}
        wanted: set[str] = set()
        readies = [asyncio.Event() for _ in others]
        # Subscribe before posting: ids are unknown yet, so watch for all posts.
        tasks = [asyncio.create_task(_collect_all(d, arrivals[d], r, args.ops))
                 for d, r in zip(others, readies, strict=True)]
        await asyncio.gather(*(r.wait() for r in readies))
        start = time.time()
        async with aiohttp.ClientSession() as session:
            for i in range(args.ops):
                async with session.post(
                        source.run["control_url"] + "/api/v1/messages",
                        json={"text": f"bench message {i}"},
                        headers={"Authorization": f"Bearer {source.token}"}) as resp:
                    op = (await resp.json())["id"]
                ids.append(op)
                stamps[op] = time.time()
        wanted = set(ids)
        posted = time.time() - start
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        except TimeoutError:
            for t in tasks:
                t.cancel()
        latencies = [(arr[op] - stamps[op]) * 1000 for arr in arrivals.values()
                     for op in wanted if op in arr]
        delivered = sum(len(set(arr) & wanted) for arr in arrivals.values())
        expected = len(wanted) * len(others)
        last = max((arr[op] for arr in arrivals.values() for op in wanted if op in arr),
                   default=start)
        return {"nodes": args.nodes, "ops": args.ops, "posting_s": round(posted, 2),
                "delivered": delivered, "expected": expected,
                "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
                "p99_ms": round(statistics.quantiles(latencies, n=100)[98], 1)
                if len(latencies) > 100 else None,
                "max_ms": round(max(latencies), 1) if latencies else None,
                "all_delivered_within_s": round(last - stamps[ids[-1]], 2),
                # Replicas hold records too (node.links changes with each peer set), so
                # one look at an instant can catch a record on its way: wait for it.
                "converged_within_s": _converge(daemons, 30.0)}
    finally:
        for d in daemons:
            d.kill()


def _converge(daemons: list[Daemon], timeout: float) -> float | None:
    """Seconds until every replica has the same digest, None if not within `timeout`."""
    began = time.monotonic()
    try:
        wait_until(lambda: converged(daemons), timeout, "the replicas to converge", 0.2)
    except TimeoutError:
        return None
    return round(time.monotonic() - began, 2)


async def _collect_all(daemon: Daemon, arrivals: dict[str, float], ready: asyncio.Event,
                       count: int) -> None:
    url = daemon.run["control_url"].replace("http", "ws") + "/api/v1/events"
    async with aiohttp.ClientSession() as session, session.ws_connect(
            url, headers={"Authorization": f"Bearer {daemon.token}"}) as ws:
        ready.set()
        async for msg in ws:
            event = json.loads(msg.data)
            if event.get("type") == "truth.spread":
                arrivals.setdefault(event["op"], time.time())
                if len(arrivals) >= count:
                    return


def startup(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    times = []
    for k in range(args.repeat):
        d = Daemon(root / f"s{k}", name=f"s{k}")
        t0 = time.monotonic()
        d.start(timeout=30)
        wait_until(lambda d=d: bool(d.status()), 10, "status", interval=0.005)
        times.append((time.monotonic() - t0) * 1000)
        d.stop()
    # A second start of the same data dir (identity and store exist): the common case.
    d = Daemon(root / "s0", name="s0")
    t0 = time.monotonic()
    d.start(timeout=30)
    wait_until(lambda: bool(d.status()), 10, "status", interval=0.005)
    again = (time.monotonic() - t0) * 1000
    d.stop()
    python = subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "import aiortc"], check=True)
    aiortc_import = (time.monotonic() - t0) * 1000
    assert python.returncode == 0
    return {"first_start_ms": [round(t) for t in times], "best_ms": round(min(times)),
            "restart_ms": round(again), "baseline_import_aiortc_ms": round(aiortc_import)}


def memory(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    hub = Daemon(root / "hub", name="hub", extra=["--low", "1", "--high", "40"]).start()
    # Idle means running with its WebRTC stack loaded (it loads just after start).
    wait_until(lambda: hub.status()["transport"] == "ready", 30, "the transport to load")
    idle = rss_mib(hub.proc.pid)  # type: ignore[union-attr]
    leaves = []
    try:
        for i in range(args.peers):
            leaves.append(Daemon(root / f"l{i}", name=f"l{i}", bootstrap=[hub.peer_url],
                                 extra=["--low", "1", "--high", "2"]).start(timeout=60))
        wait_until(lambda: len(hub.status()["peers"]) >= args.peers, 120,
                   f"{args.peers} peers at the hub")
        for i, leaf in enumerate(leaves):
            leaf.api("POST", "/api/v1/messages", {"text": f"from leaf {i}"})
        wait_until(lambda: hub.status()["ops"] >= args.peers, 60, "ops at the hub")
        busy = rss_mib(hub.proc.pid)  # type: ignore[union-attr]
        leaf_rss = statistics.median(rss_mib(d.proc.pid) for d in leaves)  # type: ignore[union-attr]
        return {"idle_rss_mib": round(idle, 1), "peers": len(hub.status()["peers"]),
                "rss_with_peers_mib": round(busy, 1), "median_leaf_rss_mib": round(leaf_rss, 1)}
    finally:
        for d in [hub, *leaves]:
            d.kill()


def dead_peer(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    a = Daemon(root / "a", name="a").start()
    b = Daemon(root / "b", name="b", bootstrap=[a.peer_url]).start()
    try:
        wait_until(lambda: len(a.status()["peers"]) == 1, 30, "a and b connected")
        a.read_log()
        t0 = time.monotonic()
        b.kill()
        line = a.wait_for_line(lambda line: "peer down" in line, 60)
        return {"noticed_s": round(time.monotonic() - t0, 2), "line": line}
    finally:
        a.kill()
        b.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["all", "dissemination", "startup", "memory", "dead-peer"])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--degree", type=int, default=4)
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--peers", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.what in ("all", "startup"):
            report["startup"] = startup(args, root / "startup")
            print(json.dumps({"startup": report["startup"]}), flush=True)
        if args.what in ("all", "dead-peer"):
            report["dead_peer"] = dead_peer(args, root / "dead")
            print(json.dumps({"dead_peer": report["dead_peer"]}), flush=True)
        if args.what in ("all", "dissemination"):
            report["dissemination"] = asyncio.run(dissemination(args, root / "dis"))
            print(json.dumps({"dissemination": report["dissemination"]}), flush=True)
        if args.what in ("all", "memory"):
            report["memory"] = memory(args, root / "mem")
            print(json.dumps({"memory": report["memory"]}), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
