"""Who dials whom (sim/topology.py): connected, about `degree` per node, seeded."""

from __future__ import annotations

import random

import pytest

from liberation_node.sim import topology


@pytest.mark.parametrize(("nodes", "degree"), [(2, 1), (3, 2), (10, 4), (50, 8), (200, 6)])
def test_connected_with_about_the_asked_degree(nodes: int, degree: int) -> None:
    for seed in range(5):
        edges = topology.build(nodes, degree, random.Random(seed))
        assert topology.connected(nodes, edges)
        pairs = {(min(a, b), max(a, b)) for a, b in edges}
        assert len(pairs) == len(edges)  # no edge twice, in either direction
        assert all(a != b for a, b in edges)
        mean = 2 * len(edges) / nodes
        assert min(degree, nodes - 1) <= mean + 1
        assert mean <= max(degree, 2) + 1


def test_same_seed_same_graph() -> None:
    first = topology.build(30, 4, random.Random(7))
    assert first == topology.build(30, 4, random.Random(7))
    assert first != topology.build(30, 4, random.Random(8))
