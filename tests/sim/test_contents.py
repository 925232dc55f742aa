"""Post contents in simulated meshes (protocols/ops.md §12): nodes that keep different
contents (small retention budgets) still converge on every header, under faults, and
the checkers find no leaked direct message and no retracted text left anywhere."""

from __future__ import annotations

from liberation_node.core.bodies import PostHeader
from liberation_node.sim import FaultOptions, NetworkOptions, World

from .common import small


def test_nodes_keeping_different_contents_converge_on_the_headers() -> None:
    config = small(seed=4, ops=150, retain_bytes=150,
                   network=NetworkOptions(loss=0.03),
                   faults=FaultOptions(crashes=2, breaks=3, partition_at_ms=2_000,
                                       heal_at_ms=6_000))
    world = World(config)
    result = world.run()
    assert result.converged and result.violations == []
    posts = {op.id for op in world.nodes[0].replica.ops.values()
             if isinstance(op.body, PostHeader)}
    held = [{i for i, _ in n.replica.contents.items()} for n in world.nodes]
    assert len(posts) > 30
    # Each keeps its own posts and readable messages, and a few of the newest others':
    # the nodes hold different contents, and every one lacks most.
    assert len({frozenset(h) for h in held}) > 1
    assert all(len(h) < len(posts) for h in held)
    for node, kept in zip(world.nodes, held, strict=True):
        droppable = node.replica.contents.droppable_bytes
        assert droppable <= 150, (node.index, droppable)
        assert all(node.replica.contents.get(i) is not None for i in kept)
