#!/usr/bin/env python3
"""Seed sweep (issue #3): the simulator with every fault on, over many seeds.

Each seed is one run of `liberation_node.sim.sweep.all_faults` (loss and
retransmissions, broken connections, a partition, crashes, byzantine nodes, clock
skew, the production connection manager). Prints one
line per failing seed with its violations and the command that reproduces it,
then a summary. Exit status 1 if any seed failed. The tests run a small fixed
set of seeds (tests/sim/test_sweep.py); this is for many.

    .venv/test/bin/python scripts/seed_sweep.py --seeds 200
"""

from __future__ import annotations

import argparse
import sys
import time

from liberation_node.runtime import tune_gc
from liberation_node.sim.sweep import all_faults, sweep


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--nodes", type=int, default=12)
    parser.add_argument("--ops", type=int, default=60)
    args = parser.parse_args()
    tune_gc()
    started = time.perf_counter()
    failing: list[int] = []
    slowest = (0, -1)
    seeds = range(args.start, args.start + args.seeds)
    for result in sweep(seeds, lambda s: all_faults(s, args.nodes, ops=args.ops)):
        if result.convergence_ms is not None:
            slowest = max(slowest, (result.convergence_ms, result.seed))
        if result.violations:
            failing.append(result.seed)
            print(f"seed {result.seed}: {len(result.violations)} violation(s)", flush=True)
            for line in result.violations[:10]:
                print(f"  {line}")
            print(f"  reproduce: {result.command}", flush=True)
    wall = time.perf_counter() - started
    print(f"{args.seeds} seeds ({args.nodes} nodes, every fault on) in {wall:.0f} s: "
          f"{len(failing)} failing {failing}; slowest convergence {slowest[0]} ms "
          f"(seed {slowest[1]})")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
