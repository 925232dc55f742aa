#!/usr/bin/env python3
"""Dissemination benchmark (issue #3): N real nodes, degree ~K, and how ops spread.

Runs the simulator (liberation_node/sim) and prints, per scenario, the delivery
ratio (when the write phase ends, and at the end after anti-entropy), the last
and mean delivery hop, the relative message redundancy (RMR), the time to
converge, bytes per node, and wall time. Targets from issue #3: delivery 100%,
last hop <= 10, RMR <= 0.5 without loss; delivery 100% with 5% loss after
anti-entropy. Not run by the tests (minutes at 1,000 nodes).

Scenarios: `spaced` writes one op every --interval-ms (one broadcast in flight
at a time, how the Plumtree paper measures); `busy` writes the same ops at
random times over --busy-ms (many broadcasts in flight at once); `loss` is
`busy` with 5% of frames lost on the way (each is retransmitted, as SCTP does:
loss costs time, and after ten losses in a row the connection).

    .venv/test/bin/python scripts/bench_dissemination.py --nodes 1000 --degree 8
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from liberation_node.runtime import tune_gc
from liberation_node.sim import NetworkOptions, SimConfig, SimResult, simulate

TARGETS = "targets: delivery 100%, last hop <= 10, RMR <= 0.5 (no loss); 100% after anti-entropy"


def scenario(name: str, args: argparse.Namespace) -> SimConfig:
    network = NetworkOptions(latency_ms=(args.lo, args.hi), jitter_ms=args.jitter_ms,
                             loss=0.05 if name == "loss" else 0.0)
    boot = args.boot_ms
    if name == "spaced":
        return SimConfig(nodes=args.nodes, seed=args.seed, degree=args.degree, ops=args.ops,
                         boot_ms=boot, write_interval_ms=args.interval_ms,
                         duration_ms=boot + args.ops * args.interval_ms,
                         liveness_ms=args.liveness_ms, network=network, memo_verify=True)
    return SimConfig(nodes=args.nodes, seed=args.seed, degree=args.degree, ops=args.ops,
                     boot_ms=boot, duration_ms=boot + args.busy_ms, liveness_ms=args.liveness_ms,
                     network=network, memo_verify=True)


def show(name: str, result: SimResult, wall: float) -> dict[str, object]:
    row = {"scenario": name, "nodes": result.nodes, "ops": result.writes,
           "delivery_at_write_end": round(result.delivery_ratio_at_heal, 6),
           "delivery": round(result.delivery_ratio, 6),
           "last_hop": result.last_delivery_hop, "mean_hop": round(result.mean_hop, 2),
           "rmr": round(result.rmr, 3), "convergence_ms": result.convergence_ms,
           "bytes_per_node": result.bytes_per_node, "lost": result.faults.get("lost", 0),
           "violations": len(result.violations), "wall_s": round(wall, 1)}
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--degree", type=int, default=8)
    parser.add_argument("--ops", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", default="10:100", help="LO:HI")
    parser.add_argument("--jitter-ms", type=int, default=None,
                        help="per-link latency plus this jitter (default: per-frame latency)")
    parser.add_argument("--boot-ms", type=int, default=3_000)
    parser.add_argument("--interval-ms", type=int, default=1_000)
    parser.add_argument("--busy-ms", type=int, default=10_000)
    parser.add_argument("--liveness-ms", type=int, default=60_000)
    parser.add_argument("--scenarios", default="spaced,busy,loss")
    args = parser.parse_args()
    args.lo, args.hi = (int(x) for x in args.latency_ms.split(":"))
    tune_gc()
    print(TARGETS, file=sys.stderr)
    failed = False
    for name in args.scenarios.split(","):
        started = time.perf_counter()
        result = simulate(scenario(name, args))
        show(name, result, time.perf_counter() - started)
        failed = failed or bool(result.violations)
        for line in result.violations[:5]:
            print(f"  violation: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
