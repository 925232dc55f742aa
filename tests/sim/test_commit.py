"""The simulator's group commit (sim/node.py), which stands for the daemon's writer
(writer.py): what it reports committed decides when own writes go out (sync.md §10.1)."""

from __future__ import annotations

import random

from liberation_node.core.bodies import Post
from liberation_node.core.events import Changed
from liberation_node.core.mesh import MeshConfig
from liberation_node.core.records import NodeLinks, create_record
from liberation_node.sim.node import SimNode
from liberation_node.store.memory import MemoryStore

from ..history import NETWORK, T0, identity


def test_a_commit_reports_its_highest_ticket_so_own_writes_go_out() -> None:
    """A batch of records only carries ticket 0 (events.py). Queued after an own write's
    batch, it made the commit report ticket 0: the write stayed held, unsent and never
    served, until a later commit happened to end with an op, or for good (seed 718 of
    the sweep of every fault: one node's last write never left it, and the run never
    converged). The daemon's writer takes the highest ticket of what it merges."""
    node = SimNode(0, identity(0), MemoryStore(), random.Random(1), MeshConfig(), NETWORK,
                   byzantine=False)
    mesh = node.start(T0)
    op = mesh.write(Post("social", "held until stored", 1, None), T0)
    node.acks.append((mesh.ticket, op))
    while (event := mesh.next_event()) is not None:
        if isinstance(event, Changed):
            node.unstored.append(event)
    peer = identity(1)
    record = create_record(peer, network=NETWORK, version=T0, ttl_ms=60_000,
                           body=NodeLinks(((identity(2).public_key, 3),)))
    record_batch = Changed((), (), (record,), (), peer.public_key)
    assert record_batch.records and record_batch.ticket == 0
    assert node.unstored[-1].ticket == mesh.ticket > 0
    node.unstored.append(record_batch)  # arrived from a peer before the commit
    assert mesh.own.unstored == 1
    batches, acked, ticket = node.commit()
    assert len(batches) == 2 and acked == [op] and ticket == mesh.ticket
    mesh.stored(ticket, T0 + 1)
    assert mesh.own.unstored == 0  # released: it may be pushed, announced and served
