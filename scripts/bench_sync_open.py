#!/usr/bin/env python3
"""What answering one SYNC_OPEN costs a responder (protocols/sync.md §4.8, §6.3): the
bucket hashes for a fresh salt, computed from scratch (`reconcile.bucket_hashes`, what
every SYNC_OPEN cost before the bucket index) and from the index kept as the replica
changes (`buckets.BucketIndex`), with one op applied between answers, as in a live node.

    .venv/test/bin/python scripts/bench_sync_open.py --feeds 8000 20000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from liberation_node.core.bodies import Post, Register
from liberation_node.core.buckets import BucketIndex
from liberation_node.core.identity import Identity
from liberation_node.core.ops import create_op
from liberation_node.core.reconcile import bucket_hashes, choose_bits
from liberation_node.core.replica import Replica

NETWORK = "bench"
T0 = 1_767_225_600_000


def replica_of(feeds: int) -> tuple[Replica, list[Identity]]:
    replica = Replica(NETWORK)
    people = [Identity.from_seed(i.to_bytes(32, "big")) for i in range(feeds)]
    for who in people:
        replica.add(create_op(who, network=NETWORK, seq=1, prev=None, timestamp=T0,
                              body=Register("x")))
    return replica, people


class Writer:
    """One op at a time, round robin over the feeds, as a live node applies them."""

    def __init__(self, replica: Replica, people: list[Identity]) -> None:
        self.replica, self.people = replica, people
        self.seq = {p.public_key: 1 for p in people}
        self.heads = {p.public_key: replica.feeds[p.public_key].ops[0].id for p in people}

    def write(self, i: int) -> None:
        who = self.people[i % len(self.people)]
        op = create_op(who, network=NETWORK, seq=self.seq[who.public_key] + 1,
                       prev=self.heads[who.public_key], timestamp=T0 + i,
                       body=Post("social", "x", 1, None))
        self.replica.add(op)
        self.seq[who.public_key] += 1
        self.heads[who.public_key] = op.id


def measure(feeds: int, answers: int) -> None:
    replica, people = replica_of(feeds)
    bits = choose_bits(feeds)
    index = BucketIndex(replica)
    index.hashes(bits, os.urandom(8))  # built once, as a live node's is
    writer = Writer(replica, people)
    timings: dict[str, float] = {}
    for name in ("from scratch", "bucket index"):
        spent = 0.0
        for i in range(answers):
            writer.write(i)  # not timed: signing the op costs the same either way
            salt = os.urandom(8)
            started = time.perf_counter()
            if name == "from scratch":
                bucket_hashes(replica, bits, salt)
            else:
                index.hashes(bits, salt)
            spent += time.perf_counter() - started
        timings[name] = spent / answers * 1000
    same = bucket_hashes(replica, bits, b"12345678") == index.hashes(bits, b"12345678")
    print(f"{feeds} feeds, {1 << bits} buckets: from scratch {timings['from scratch']:.1f} "
          f"ms per SYNC_OPEN, bucket index {timings['bucket index']:.2f} ms "
          f"({timings['from scratch'] / timings['bucket index']:.0f}x); same hashes: {same}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, nargs="+", default=[8000, 20000])
    parser.add_argument("--answers", type=int, default=40)
    args = parser.parse_args()
    for feeds in args.feeds:
        measure(feeds, args.answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
