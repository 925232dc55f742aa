#!/usr/bin/env python3
"""Gossip and simulator targets (issue 10), each next to a baseline from the same run.

Runs the simulator's scenarios with this checkout's code and, with `--baseline DIR`,
with the code of another checkout of the project (say, a detached worktree at the
commit before a change), each run in its own process, and prints one row per
figure: this tree, the baseline, their ratio, the target. Scenarios:

- `busy`: N nodes, degree 8, 50 ops at random times over 5 s, latency 10-100 ms:
  RMR <= 0.5, last hop <= 12, delivery when the writes end >= 99%. Also printed: the
  most any dissemination could have delivered by then (an op reaches a node d links
  away no sooner than its commit plus d times the lowest latency: with seed 7 the last
  op is written 7 ms before the end, so no code can pass 98%), and the delivery of the
  ops written at least 1 s before the end;
- `spaced`: one broadcast at a time (one op a second): RMR <= 0.1, last hop <= 10;
- `slow`: the busy run at 2 s latency per frame: RMR <= 1, no session timeouts;
- `speed`: no faults, a trickle of writes: simulated node-seconds per wall-second
  (target >= 300 at 300 nodes).

Without `--baseline` only this tree's figures are printed. Each run's full JSON goes
to stderr. Minutes at 300 nodes; not run by the tests.

    .venv/test/bin/python scripts/bench_gossip.py --nodes 300 --baseline ../base
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

# Runs in the checkout under test: only SimConfig fields every version has.
RUNNER = r"""
import collections, heapq, json, random, sys, time
from liberation_node.runtime import tune_gc
from liberation_node.sim import NetworkOptions, SimConfig
from liberation_node.sim.world import World
import liberation_node
a = json.loads(sys.argv[1])
tune_gc()
config = SimConfig(nodes=a["nodes"], seed=a["seed"], degree=a["degree"], ops=a["ops"],
                   boot_ms=a["boot_ms"], write_interval_ms=a["interval_ms"],
                   duration_ms=a["duration_ms"], liveness_ms=a["liveness_ms"],
                   network=NetworkOptions(latency_ms=tuple(a["latency_ms"])), memo_verify=True)
world = World(config)
written = {}  # op id -> (when written, writer)
wrote = world.metrics.wrote
def watch(node, op):
    written[op.id] = (world.clock.now, node)
    wrote(node, op)
world.metrics.wrote = watch
extra = {}
def flood_reach(graph, now, count, draws=20):
    # What flooding over the same links would have delivered when the writes end, with
    # no time spent in the nodes: every link carries each op once each way, each frame
    # with a latency drawn as the simulator draws it (uniform within latency_ms), and a
    # node holds the op from its first copy (Dijkstra per op and draw; the mean of
    # `draws`). No protocol that uses fewer links can expect to do better.
    rng = random.Random(a["seed"])
    lo, hi = a["latency_ms"]
    reach = 0
    for t, writer in written.values():
        budget = now - t - config.commit_ms
        for _ in range(draws):
            best, heap = {writer: 0}, [(0, writer)]
            while heap:
                d, u = heapq.heappop(heap)
                if d > best.get(u, d):
                    continue
                for v in graph[u]:
                    nd = d + rng.randint(lo, hi)
                    if nd <= budget and nd < best.get(v, nd + 1):
                        best[v] = nd
                        heapq.heappush(heap, (nd, v))
            reach += len(best)
    return round(reach / (len(written) * count * draws), 4)
def at_write_end():
    # When the writes end: ops written at least 1 s earlier (a gossip's worth of time:
    # 10 hops at the top latency) that are not everywhere yet, and the most any
    # dissemination could have delivered: an op reaches a node at distance d in the
    # overlay no sooner than the commit plus d times the lowest latency.
    now = world.clock.now
    nodes = [n for n in world.nodes if n.alive and n.mesh is not None]
    old = [o for o, (t, _) in written.items() if now - t >= 1_000]
    if old:
        held = sum(1 for n in nodes for o in old if o in n.mesh.replica.ops)
        extra["delivery_at_write_end_1s"] = round(held / (len(old) * len(nodes)), 4)
    graph = collections.defaultdict(set)
    for end in world.network.endpoints.values():
        other = world.network.endpoints.get(end.peer)
        if other is not None:
            graph[end.node].add(other.node)
    hop_ms, reach = a["latency_ms"][0], 0
    for t, writer in written.values():
        budget, seen, frontier, d = now - t - config.commit_ms, {writer}, [writer], 0
        while frontier and (d + 1) * hop_ms <= budget:
            d += 1
            frontier = [v for u in frontier for v in graph[u] if v not in seen]
            seen.update(frontier)
        reach += len(seen)
    if written:
        extra["delivery_at_write_end_bound"] = round(reach / (len(written) * len(nodes)), 4)
        extra["delivery_at_write_end_flood"] = flood_reach(graph, now, len(nodes))
world.queue.push(world.safety_end, at_write_end)
started, cpu = time.perf_counter(), time.process_time()
r = world.run()
wall, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({**extra,
    "code": str(liberation_node.__file__),
    "rmr": round(r.rmr, 3), "last_hop": r.last_delivery_hop,
    "p99_hop": getattr(r, "p99_hop", None), "mean_hop": round(r.mean_hop, 2),
    "delivery_at_write_end": round(r.delivery_ratio_at_heal, 4),
    "delivery": round(r.delivery_ratio, 4), "converged": r.converged,
    "timeouts": sum(v for k, v in r.closes.items() if k.startswith("timeout")),
    "closes": r.closes, "violations": len(r.violations),
    "bytes_per_node": r.bytes_per_node, "end_ms": r.end_ms, "wall_s": round(wall, 1),
    "node_s_per_wall_s": round(a["nodes"] * r.end_ms / 1000 / wall, 1),
    "node_s_per_cpu_s": round(a["nodes"] * r.end_ms / 1000 / cpu, 1),
}))
"""

# The figures printed per scenario, with their targets (issue 10).
FIGURES = {
    "busy": [("rmr", "<= 0.5"), ("last_hop", "<= 12"), ("p99_hop", ""),
             ("delivery_at_write_end", ">= 0.99"),
             ("delivery_at_write_end_bound", "(most possible)"),
             ("delivery_at_write_end_flood", "(flooding, mean)"),
             ("delivery_at_write_end_1s", "(ops >= 1 s old)"), ("violations", "0")],
    "spaced": [("rmr", "<= 0.1"), ("last_hop", "<= 10"), ("p99_hop", ""),
               ("violations", "0")],
    "slow": [("rmr", "<= 1"), ("timeouts", "0"), ("last_hop", ""),
             ("delivery_at_write_end", ""), ("violations", "0")],
    # Per CPU second too: on a machine shared with other work, wall time says more about
    # the others than about this code.
    "speed": [("node_s_per_wall_s", ">= 300 (300 nodes)"), ("node_s_per_cpu_s", "")],
}


def scenario(name: str, args: argparse.Namespace) -> dict[str, object]:
    common = {"nodes": args.nodes, "seed": args.seed, "degree": args.degree,
              "boot_ms": 1_000, "interval_ms": None, "liveness_ms": 20_000,
              "latency_ms": [10, 100]}
    if name == "busy":
        return {**common, "ops": 50, "duration_ms": 5_000}
    if name == "spaced":
        ops = args.spaced_ops
        return {**common, "ops": ops, "boot_ms": 3_000, "interval_ms": 1_000,
                "duration_ms": 3_000 + ops * 1_000}
    if name == "slow":
        return {**common, "ops": 50, "duration_ms": 20_000, "liveness_ms": 60_000,
                "latency_ms": [2_000, 2_000]}
    if name == "speed":
        return {**common, "ops": 5 * args.speed_s, "boot_ms": 2_000,
                "duration_ms": args.speed_s * 1_000, "liveness_ms": 1}
    raise SystemExit(f"unknown scenario {name!r}")


def run(tree: Path, params: dict[str, object]) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    out = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(params)], cwd=tree,
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"run in {tree} failed:\n{out.stderr[-3000:]}")
    row: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    if not str(row["code"]).startswith(str(tree)):
        raise SystemExit(f"ran {row['code']}, not the code in {tree}")
    print(json.dumps({"tree": str(tree), **params, **row}), file=sys.stderr, flush=True)
    return row


def cell(value: object) -> str:
    return "-" if value is None else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--degree", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--spaced-ops", type=int, default=20)
    parser.add_argument("--speed-s", type=int, default=20, help="virtual seconds")
    parser.add_argument("--scenarios", default="busy,spaced,slow,speed")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout of the project to compare with")
    args = parser.parse_args()
    trees = [HERE] + ([args.baseline.resolve()] if args.baseline else [])
    print(f"{'scenario':8} {'figure':28} {'this':>10} {'baseline':>10} {'ratio':>7}  target")
    for name in args.scenarios.split(","):
        params = scenario(name, args)
        rows = [run(tree, params) for tree in trees]
        for figure, target in FIGURES[name]:
            mine = rows[0].get(figure)
            base = rows[1].get(figure) if len(rows) > 1 else None
            ratio = "-"
            if isinstance(mine, int | float) and isinstance(base, int | float) and base:
                ratio = f"{mine / base:.2f}"
            print(f"{name:8} {figure:28} {cell(mine):>10} {cell(base):>10} {ratio:>7}  "
                  f"{target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
