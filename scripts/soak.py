#!/usr/bin/env python3
"""A churn soak: real daemons joining, leaving and killed every few seconds while they
write, for minutes (issue 9). It checks that the mesh stays connected throughout, that
the nodes that stay up do not grow (RSS), and that everyone converges at the end.

    .venv/test/bin/python scripts/soak.py                      # 14 daemons, 10 minutes
    .venv/test/bin/python scripts/soak.py --nodes 10 --minutes 2 --seed 3

`--core` nodes run from start to end (their RSS is compared between the end of the
warm-up and the end); the others churn: every 2-5 s one is stopped (SIGTERM), killed
(SIGKILL) or (re)started, bootstrapping from a random live node. Every 3 s each live
node's peers are read: a node up for more than `--grace` seconds with no peer, or live
nodes split into groups, counts as disconnected. At the end the churn stops and all
live nodes must reach the same digest.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.daemon.harness import Daemon


def rss(d: Daemon) -> int:
    assert d.proc is not None
    with open(f"/proc/{d.proc.pid}/status") as f:
        return int(next(x for x in f if x.startswith("VmRSS:")).split()[1]) * 1024


class Soak:
    def __init__(self, tmp: Path, nodes: int, core: int, rng: random.Random,
                 grace_s: float) -> None:
        self.tmp, self.rng, self.grace_s = tmp, rng, grace_s
        self.all = [Daemon(tmp / f"n{i}", name=f"n{i}") for i in range(nodes)]
        self.core = self.all[:core]
        self.started_at: dict[str, float] = {}
        self.counts = {"joins": 0, "leaves": 0, "kills": 0, "writes": 0, "samples": 0,
                       "disconnected_samples": 0, "isolated_node_samples": 0}
        self.min_peers: list[int] = []
        self.notes: list[str] = []

    def live(self) -> list[Daemon]:
        return [d for d in self.all if d.proc is not None and d.proc.poll() is None]

    def start(self, d: Daemon) -> None:
        others = [o for o in self.live() if o is not d]
        d.bootstrap = [self.rng.choice(others).peer_url] if others else []
        d.start(timeout=60)
        self.started_at[d.name] = time.monotonic()

    def churn(self) -> None:
        spare = [d for d in self.all if d not in self.core]
        live = [d for d in spare if d in self.live()]
        dead = [d for d in spare if d not in live]
        action = self.rng.choice(["join", "leave", "kill"] if live and dead else
                                 ["join"] if dead else ["leave", "kill"])
        if action == "join":
            self.start(self.rng.choice(dead))
            self.counts["joins"] += 1
        else:
            victim = self.rng.choice(live)
            if action == "leave":
                victim.stop()
                self.counts["leaves"] += 1
            else:
                victim.kill()
                self.counts["kills"] += 1

    def write(self) -> None:
        for d in self.live():
            try:
                d.call("POST", "/api/v1/messages", {"text": f"soak {time.time():.3f}"}, 5)
                self.counts["writes"] += 1
            except Exception:
                pass

    def sample(self) -> None:
        """Is every settled node connected, and are the live nodes one group?"""
        now = time.monotonic()
        graph: dict[str, set[str]] = {}
        settled: set[str] = set()
        for d in self.live():
            try:
                status = d.status()
            except Exception:
                continue
            me = status["node_id"]
            graph[me] = {p["id"] for p in status["peers"]}
            if now - self.started_at.get(d.name, now) > self.grace_s:
                settled.add(me)
        self.counts["samples"] += 1
        isolated = [n for n in settled if not graph.get(n)]
        self.counts["isolated_node_samples"] += len(isolated)
        if graph:
            self.min_peers.append(min(len(graph[n]) for n in settled) if settled else 0)
            seen, todo = set(), [next(iter(settled or graph))]
            while todo:
                n = todo.pop()
                if n in seen:
                    continue
                seen.add(n)
                todo.extend(m for m in graph.get(n, ()) if m in graph)
                todo.extend(m for m, peers in graph.items() if n in peers)
            if not settled <= seen:
                self.counts["disconnected_samples"] += 1
                self.notes.append(f"split at {time.strftime('%H:%M:%S')}: "
                                  f"{len(settled - seen)} settled nodes apart")

    def converge(self, timeout: float) -> float | None:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                digests = {d.status()["digest"] for d in self.live()}
            except Exception:
                digests = {"?", "!"}
            if len(digests) == 1:
                return time.monotonic() - started
            time.sleep(1)
        return None

    def close(self) -> None:
        for d in self.all:
            d.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=14)
    parser.add_argument("--core", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS is taken")
    parser.add_argument("--grace", type=float, default=15.0,
                        help="seconds a node may take to find a peer after it starts")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        soak = Soak(Path(tmp), args.nodes, args.core, rng, args.grace)
        try:
            began = time.monotonic()
            for d in soak.all[: max(args.core, args.nodes * 2 // 3)]:
                soak.start(d)
            end = began + args.minutes * 60
            rss_start: dict[str, int] = {}
            next_churn = next_write = next_sample = time.monotonic()
            while time.monotonic() < end:
                now = time.monotonic()
                if not rss_start and now - began >= args.warmup:
                    rss_start = {d.name: rss(d) for d in soak.core}
                if now >= next_churn:
                    soak.churn()
                    next_churn = now + rng.uniform(2, 5)
                if now >= next_write:
                    soak.write()
                    next_write = now + 5
                if now >= next_sample:
                    soak.sample()
                    next_sample = now + 3
                time.sleep(0.2)
            rss_end = {d.name: rss(d) for d in soak.core}
            took = soak.converge(120)
            growth = {n: round(100 * (rss_end[n] - rss_start[n]) / rss_start[n], 1)
                      for n in rss_start}
            result: dict[str, Any] = {
                "nodes": args.nodes, "core": args.core, "minutes": args.minutes,
                **soak.counts, "min_peers_of_settled_nodes": min(soak.min_peers, default=0),
                "live_at_end": len(soak.live()),
                "rss_start_mb": {n: round(v / 2**20, 1) for n, v in rss_start.items()},
                "rss_end_mb": {n: round(v / 2**20, 1) for n, v in rss_end.items()},
                "rss_growth_percent": growth, "converged_after_s":
                    round(took, 1) if took is not None else None,
                "notes": soak.notes[:10]}
            print(json.dumps(result, indent=1))
            ok = (took is not None and soak.counts["disconnected_samples"] == 0
                  and all(g < 10 for g in growth.values()))
            return 0 if ok else 1
        finally:
            soak.close()


if __name__ == "__main__":
    sys.exit(main())
