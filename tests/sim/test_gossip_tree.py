"""The gossip tree in a whole mesh: breadth-first around the beacon (sync.md §5.9).

Each node's distance from the beacon by its parent must be its distance in the
overlay once the mesh has formed: a node deeper than that makes every op that
crosses it take longer ways (the last hop of issue 10 was twice the overlay's
diameter and more)."""

from __future__ import annotations

from collections import deque

from liberation_node.sim import NetworkOptions, World

from .common import small


def _overlay(world: World) -> dict[int, set[int]]:
    graph: dict[int, set[int]] = {n.index: set() for n in world.nodes}
    for end in world.network.endpoints.values():
        other = world.network.endpoints.get(end.peer)
        if other is not None:
            graph[end.node].add(other.node)
    return graph


def test_every_node_sits_at_its_distance_from_the_beacon() -> None:
    world = World(small(nodes=60, degree=8, ops=10, seed=7, boot_ms=3_000,
                        write_interval_ms=300, duration_ms=8_000, liveness_ms=10_000,
                        network=NetworkOptions(latency_ms=(10, 100))))
    found: dict[str, object] = {}

    def look() -> None:
        graph = _overlay(world)
        meshes = {n.index: n.mesh for n in world.nodes if n.mesh is not None}
        beacons = {m.gossip.beacon for m in meshes.values()}
        root = next(i for i, m in meshes.items() if m.gossip.distance == 0)
        depth, queue = {root: 0}, deque([root])
        while queue:
            u = queue.popleft()
            for v in graph[u]:
                if v not in depth:
                    depth[v] = depth[u] + 1
                    queue.append(v)
        found["beacons"] = len(beacons)
        found["off"] = {i: (m.gossip.distance, depth.get(i)) for i, m in meshes.items()
                        if m.gossip.distance != depth.get(i)}

    world.queue.push(world.clock.at(7_999), look)
    result = world.run()
    assert result.violations == [] and result.converged
    assert found["beacons"] == 1
    assert found["off"] == {}


def test_the_tree_forms_while_the_overlay_does() -> None:
    """Writes start 1 s after the nodes (booting within 0.5 s): by then most nodes must
    know the beacon and their distance from it, or the first ops cross the eager links
    of boot, twice as deep as the overlay (issue 10: up to 15 links at 300 nodes). The
    beacon's record reached the median node by a graft timeout per hop and mostly
    without a distance (copies served in rounds carried none): 28 of 60 nodes had one
    0.2 s after the writes started; pushed to every peer, with the distance, 57
    (sync.md §5.9)."""
    world = World(small(nodes=60, degree=8, ops=10, seed=7, boot_ms=1_000, duration_ms=2_500,
                        liveness_ms=5_000, network=NetworkOptions(latency_ms=(10, 100))))
    beacon = min(n.identity.public_key for n in world.nodes)
    placed: list[int] = []

    def look() -> None:
        placed.append(sum(1 for n in world.nodes if n.mesh is not None
                          and n.mesh.gossip.beacon == beacon
                          and n.mesh.gossip.distance is not None))

    world.queue.push(world.clock.at(1_200), look)
    result = world.run()
    assert result.violations == [] and result.converged
    assert placed[0] >= 48
