"""Mesh routes derived from the replicated link graph (the seed's ``mesh_routes``).

Pure: shortest paths by total round-trip time over the ``node.links`` records a
replica holds. Ties break on fewer hops, then on the lexicographically smaller
path, so every replica derives the same routes from the same records.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

Graph = Mapping[bytes, Mapping[bytes, int]]  # node -> neighbour -> rtt ms


@dataclass(frozen=True, slots=True)
class Route:
    destination: bytes
    path: tuple[bytes, ...]  # source first, destination last
    total_latency: int  # ms

    @property
    def hop_count(self) -> int:
        return len(self.path) - 1


def undirected(links: Mapping[bytes, Mapping[bytes, int]]) -> dict[bytes, dict[bytes, int]]:
    """A link counts both ways; if both ends report it, the larger RTT is used (pessimistic)."""
    graph: dict[bytes, dict[bytes, int]] = {}
    for a, peers in links.items():
        for b, rtt in peers.items():
            if a == b:
                continue
            for x, y in ((a, b), (b, a)):
                row = graph.setdefault(x, {})
                row[y] = max(row.get(y, 0), rtt)
    return graph


def shortest_routes(graph: Graph, source: bytes) -> list[Route]:
    """Dijkstra from `source`; one route per reachable destination, sorted by destination."""
    best: dict[bytes, tuple[int, int, tuple[bytes, ...]]] = {source: (0, 0, (source,))}
    heap: list[tuple[int, int, tuple[bytes, ...]]] = [(0, 0, (source,))]
    done: set[bytes] = set()
    while heap:
        cost, hops, path = heapq.heappop(heap)
        node = path[-1]
        if node in done:
            continue
        done.add(node)
        for peer, rtt in graph.get(node, {}).items():
            if peer in done:
                continue
            candidate = (cost + rtt, hops + 1, (*path, peer))
            if peer not in best or candidate < best[peer]:
                best[peer] = candidate
                heapq.heappush(heap, candidate)
    return [Route(dest, path, cost) for dest, (cost, _, path) in sorted(best.items())
            if dest != source]
