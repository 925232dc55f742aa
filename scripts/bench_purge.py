#!/usr/bin/env python3
"""Retraction purge benchmark (issue #11): in a simulated mesh of real nodes, how long
from a retraction being written until no node holds the post's text any more, in its
replica or in its (committed) store.

The baseline, measured in the same runs: how long the retract op itself took to reach
every node (gossip along the tree Plumtree has built by then; the post before it, the
first op, flooded every link and is shown for reference). The ratio shows what purging
adds to dissemination: the drop and its store commit. Simulated time, on the
simulator's default network (every frame 10-100 ms), one run per seed.

    .venv/test/bin/python scripts/bench_purge.py --nodes 20 --runs 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable

from liberation_node.core.bodies import Body, Post, Retract
from liberation_node.core.ops import Op
from liberation_node.sim import SimConfig, World
from liberation_node.sim.node import SimNode, run_sync

POST_AT, RETRACT_AT, STEP = 3_000, 8_000, 5  # ms into the run; sampling period


def write(world: World, node: SimNode, body: Body) -> Op:
    """A user's write on `node`, as the simulator's workload does it."""
    assert node.mesh is not None
    op = node.mesh.write(body, node.now(world.clock.now))
    world.checker.signed(node.index, op, byzantine=False, body=body)
    node.acks.append((node.mesh.ticket, op))
    world._flush(node)  # a benchmark drives the world's internals
    return op


def one_run(nodes: int, degree: int, seed: int) -> tuple[int, int, int, list[str]]:
    """(ms for the post to reach every node, ms for the retract op to, ms for the post's
    text to leave every node's replica and store)."""
    world = World(SimConfig(nodes=nodes, degree=degree, ops=0, seed=seed,
                            duration_ms=12_000, liveness_ms=20_000))
    times: dict[str, int] = {}
    state: dict[str, Op] = {}
    author = world.nodes[0]

    def at(ms: int, action: Callable[[], None]) -> None:
        world.queue.push(world.clock.at(ms), action)

    def post() -> None:
        state["post"] = write(world, author, Post("social", "a post to take back", 1, None))
        times["post"] = world.clock.now

    def retract() -> None:
        state["retract"] = write(world, author, Retract(state["post"].id))
        times["retract"] = world.clock.now

    def sample() -> None:
        now = world.clock.now
        post_op = state.get("post")
        if post_op is not None and "reached" not in times and all(
                n.mesh is not None and post_op.id in n.replica.contents for n in world.nodes):
            times["reached"] = now
        retract_op = state.get("retract")
        if retract_op is not None and "known" not in times and all(
                n.mesh is not None and retract_op.id in n.replica.ops for n in world.nodes):
            times["known"] = now
        if retract_op is not None and post_op is not None and "purged" not in times and all(
                n.mesh is not None and retract_op.id in n.replica.ops
                and post_op.id not in n.replica.contents
                and post_op.id not in dict(run_sync(n.store.load_contents()))
                for n in world.nodes):
            times["purged"] = now
        if "purged" not in times:
            world.queue.push(now + STEP, sample)

    at(POST_AT, post)
    at(RETRACT_AT, retract)
    at(POST_AT, sample)
    result = world.run()
    if "reached" not in times or "purged" not in times:
        raise RuntimeError(f"seed {seed}: the post or its purge never reached every node")
    return (times["reached"] - times["post"], times["known"] - times["retract"],
            times["purged"] - times["retract"], result.violations)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--degree", type=int, default=4)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reach, known, purge = [], [], []
    for seed in range(1, args.runs + 1):
        reached, spread, purged, violations = one_run(args.nodes, args.degree, seed)
        if violations:
            print(f"seed {seed}: {violations}", file=sys.stderr)
            return 1
        reach.append(reached)
        known.append(spread)
        purge.append(purged)
    report = {"nodes": args.nodes, "degree": args.degree, "runs": args.runs,
              "post_reach_median_ms": statistics.median(reach),
              "retract_reach_median_ms": statistics.median(known),
              "retract_reach_max_ms": max(known),
              "purge_median_ms": statistics.median(purge), "purge_max_ms": max(purge)}
    report["ratio_median"] = round(report["purge_median_ms"]
                                   / report["retract_reach_median_ms"], 2)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.nodes} simulated nodes, degree {args.degree}, frames 10-100 ms, "
          f"{args.runs} runs (seeds 1-{args.runs})")
    print(f"the post reaches every node (flooding)   median "
          f"{report['post_reach_median_ms']:>6} ms")
    print(f"the retract op reaches every node (baseline) median "
          f"{report['retract_reach_median_ms']:>6} ms  max {report['retract_reach_max_ms']} ms")
    print(f"the text is gone from every replica and store median "
          f"{report['purge_median_ms']:>6} ms  max {report['purge_max_ms']} ms"
          f"  (ratio {report['ratio_median']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
