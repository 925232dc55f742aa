#!/usr/bin/env python3
"""Reconciliation benchmark (issue #3): two replicas of N ops differing by d.

Builds one history of --ops signed ops from --authors authors, then for each d
gives replica B everything except d feed tails (d ops, spread over random
authors) and runs ONE anti-entropy round between two real `Mesh` engines over
a lossless in-memory link. Prints the bytes of every frame the round put on the
wire (both directions) and its round trips, beside the targets of issue #3:
in sync <= 100 bytes and 1 round trip; d missing ops <= 1.2 x d x op size +
2 KiB and <= 3 round trips. The "op payload" column is the d ops' own bytes,
the floor any protocol must send.

    .venv/test/bin/python scripts/bench_reconcile.py --ops 100000 --authors 1000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

from liberation_node.core.bodies import Post
from liberation_node.core.events import SyncFinished
from liberation_node.core.identity import Identity
from liberation_node.core.mesh import Mesh, MeshConfig
from liberation_node.core.ops import Op, create_op
from liberation_node.core.replica import Replica

NETWORK = "bench"
T0 = 1_764_000_000_000


def history(count: int, authors: int, seed: int) -> list[Op]:
    rnd = random.Random(seed)
    people = [Identity.from_seed(rnd.randbytes(32)) for _ in range(authors)]
    heads: dict[bytes, Op] = {}
    ops: list[Op] = []
    for i in range(count):
        who = people[i % authors]
        head = heads.get(who.public_key)
        op = create_op(who, network=NETWORK, seq=head.seq + 1 if head else 1,
                       prev=head.id if head else None, timestamp=T0 + i,
                       body=Post("social", f"message {i} " + "x" * rnd.randint(40, 200), 1, None))
        heads[who.public_key] = op
        ops.append(op)
    return ops


def tails(ops: list[Op], d: int, seed: int) -> set[bytes]:
    """d ops that are feed tails, so that the rest stays causally closed."""
    rnd = random.Random(seed)
    feeds: dict[bytes, list[Op]] = {}
    for op in ops:
        feeds.setdefault(op.author, []).append(op)
    authors = sorted(feeds)
    missing: set[bytes] = set()
    while len(missing) < d:
        feed = feeds[rnd.choice(authors)]
        if len(feed) > 1:
            missing.add(feed.pop().id)
    return missing


def run_round(a: Replica, b: Replica, initiator_b: bool) -> dict[str, int]:
    rnd = random.Random(7)
    config = MeshConfig()
    meshes = [Mesh(Identity.from_seed(bytes([1]) * 32), a, config, rnd.randbytes, T0),
              Mesh(Identity.from_seed(bytes([2]) * 32), b, config, rnd.randbytes, T0)]
    meshes[0].connection_made(1, b"bench-link", T0, initiator=not initiator_b)
    meshes[1].connection_made(2, b"bench-link", T0, initiator=initiator_b)
    other = {0: (1, 2), 1: (0, 1)}

    def pump(count: bool) -> dict[str, int]:
        stats = {"bytes": 0, "frames": 0}
        moved = True
        while moved:
            moved = False
            for n, mesh in enumerate(meshes):
                for _, data in mesh.datagrams_to_send(T0, budget=lambda _c: 1 << 30):
                    target, conn = other[n]
                    if count:
                        stats["bytes"] += len(data)
                        stats["frames"] += 1
                    meshes[target].data_received(conn, data, T0)
                    moved = True
        return stats

    pump(count=False)  # HELLOs
    for mesh in meshes:
        while mesh.next_event() is not None:
            pass
    start = time.perf_counter()
    starter = 1 if initiator_b else 0
    assert meshes[starter].start_sync(2 if initiator_b else 1, T0)
    stats = pump(count=True)
    stats["wall_ms"] = round((time.perf_counter() - start) * 1000)
    finished = [e for m in meshes for e in iter(m.next_event, None) if isinstance(e, SyncFinished)]
    stats["round_trips"] = finished[0].round_trips if finished else -1
    stats["converged"] = int(a.digest() == b.digest())
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--authors", type=int, default=1000)
    parser.add_argument("--d", type=int, nargs="*", default=[0, 1, 10, 1000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(f"signing {args.ops} ops from {args.authors} authors...", file=sys.stderr)
    ops = history(args.ops, args.authors, args.seed)
    full = Replica(NETWORK)
    full.load(op.wire for op in ops)
    rows = []
    for d, starter in [(d, s) for d in args.d for s in ("lacking", "full")]:
        missing = tails(ops, d, args.seed + d)
        lacking = Replica(NETWORK)
        lacking.load(op.wire for op in ops if op.id not in missing)
        payload = sum(len(op.wire) for op in ops if op.id in missing)
        mean = payload / d if d else 0
        target = int(1.2 * payload + 2048) if d else 100
        # Either side may start: the node that was offline, or its peer's periodic round.
        stats = run_round(full, lacking, initiator_b=starter == "lacking")
        rows.append({"d": d, "starter": starter, "op_payload": payload,
                     "mean_op_bytes": round(mean),
                     "bytes": stats["bytes"], "target_bytes": target,
                     "round_trips": stats["round_trips"], "target_round_trips": 1 if d == 0 else 3,
                     "frames": stats["frames"], "converged": bool(stats["converged"]),
                     "wall_ms": stats["wall_ms"]})
    if args.json:
        print(json.dumps({"ops": args.ops, "authors": args.authors, "rows": rows}))
    else:
        print(f"{args.ops} ops from {args.authors} authors; one round, started by either side")
        print(f"{'d':>6} {'starter':>8} {'payload B':>10} {'sent B':>10} {'target B':>10} "
              f"{'RTs':>4} {'target':>6} {'frames':>6} {'converged':>9} {'wall ms':>8}")
        for r in rows:
            print(f"{r['d']:>6} {r['starter']:>8} {r['op_payload']:>10} {r['bytes']:>10} "
                  f"{r['target_bytes']:>10} {r['round_trips']:>4} {r['target_round_trips']:>6} "
                  f"{r['frames']:>6} {r['converged']!s:>9} {r['wall_ms']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
