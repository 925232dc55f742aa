"""The bucket index (core/buckets.py) against the definitions in core/reconcile.py, as
feeds and records come, are replaced by newer versions, and expire; built on an empty
replica and on one that already holds some."""

from __future__ import annotations

import random

from liberation_node.core.bodies import Post
from liberation_node.core.buckets import BucketIndex
from liberation_node.core.reconcile import MAX_BITS, bucket_hashes, bucket_of
from liberation_node.core.records import NodeInfo, NodeLinks
from liberation_node.core.replica import Replica

from .history import NETWORK, identity
from .history import HistoryBuilder as History


def held_authors(replica: Replica) -> list[bytes]:
    return sorted(set(replica.feeds) | {author for author, _ in replica.records})


def test_the_index_answers_like_the_definitions() -> None:
    history = History()
    replica = Replica(NETWORK)
    rng = random.Random(11)
    index: BucketIndex | None = None
    for step in range(400):
        if step == 150:
            index = BucketIndex(replica)  # built over what is held already
        who = identity(rng.randrange(60))
        roll = rng.random()
        if roll < 0.4:
            replica.ingest(history.write(who, Post("social", f"{step}", 1, None)).wire)
        elif roll < 0.7:
            replica.add_record(history.record(who, NodeLinks(())))
        else:
            replica.add_record(history.record(who, NodeInfo(f"n{step}", "s", (), (), ())))
        if step % 41 == 0:
            replica.prune_records(history.now + 10**9 if step % 82 == 0 else 0)
        if index is None:
            continue
        authors = held_authors(replica)
        bits = rng.randrange(0, MAX_BITS + 1)
        salt = rng.randbytes(8)
        assert index.hashes(bits, salt) == bucket_hashes(replica, bits, salt), step
        assert index.author_count == len(authors)
        buckets = [rng.randrange(1 << bits) for _ in range(3)] + [1 << bits]  # one past
        assert list(index.authors(buckets, bits)) == [
            a for b in sorted(set(buckets)) for a in authors if bucket_of(a, bits) == b]
        for author, kind in replica.records:
            assert kind in index.kinds(author)
        probe = who.public_key[:8]
        assert index.with_prefix(probe) == [a for a in authors if a.startswith(probe)]
