#!/usr/bin/env python3
"""Seed sweep (issue #3): the simulator with every fault on, over many seeds.

Each seed is one run of `liberation_node.sim.sweep.all_faults` (loss and
retransmissions, broken connections, a partition, crashes, byzantine nodes, clock
skew, the production connection manager). Prints one
line per failing seed with its violations and the command that reproduces it,
then a summary. Exit status 1 if any seed failed. The tests run a small fixed
set of seeds (tests/sim/test_sweep.py); this is for many. With `--each`, one line
per seed (wall time, convergence, faults, violations): the way to time one large
run with every fault (issue 10: 1,000 nodes in under 10 minutes):

    .venv/test/bin/python scripts/seed_sweep.py --seeds 200
    .venv/test/bin/python scripts/seed_sweep.py --nodes 1000 --seeds 1 --each --memo-verify
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

from liberation_node.runtime import tune_gc
from liberation_node.sim import simulate
from liberation_node.sim.sweep import all_faults


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--nodes", type=int, default=12)
    parser.add_argument("--ops", type=int, default=60)
    parser.add_argument("--each", action="store_true",
                        help="a line per seed: wall and CPU time, convergence, faults, "
                             "violations; and progress lines on stderr")
    parser.add_argument("--memo-verify", action="store_true",
                        help="memoize signature checks (same results; for hundreds of nodes)")
    args = parser.parse_args()
    tune_gc()
    started = time.perf_counter()
    failing: list[int] = []
    slowest = (0, -1)
    seeds = range(args.start, args.start + args.seeds)
    for seed in seeds:
        wall, cpu = time.perf_counter(), time.process_time()
        result = simulate(all_faults(seed, args.nodes, ops=args.ops,
                                     memo_verify=args.memo_verify),
                          _progress(seed, wall, cpu) if args.each else None)
        if args.each:
            print(f"seed {result.seed}: {time.perf_counter() - wall:.1f} s wall "
                  f"({time.process_time() - cpu:.1f} s CPU), {args.nodes} nodes, "
                  f"{result.end_ms} ms simulated, converged {result.converged} "
                  f"(in {result.convergence_ms} ms), {len(result.violations)} violation(s); "
                  f"faults {json.dumps(result.faults)}", flush=True)
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


def _progress(seed: int, wall: float, cpu: float) -> Callable[[int, int], None]:
    """Every tenth of the run (simulated time), a line on stderr: a long run shows its pace."""
    shown = [0]

    def progress(done: int, total: int) -> None:
        if done * 10 // total > shown[0]:
            shown[0] = done * 10 // total
            print(f"seed {seed}: {done} of at most {total} ms simulated, "
                  f"{time.perf_counter() - wall:.0f} s wall, {time.process_time() - cpu:.0f} s CPU",
                  file=sys.stderr, flush=True)

    return progress


if __name__ == "__main__":
    sys.exit(main())
