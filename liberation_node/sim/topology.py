"""Who dials whom: a random ring (so the graph is connected) plus random chords.

Each edge is (dialer, acceptor); the dialer is the side that re-dials it after
it breaks (connmgr.py). About `degree` edges end at each node on average: the
ring gives every node two, the chords the rest.
"""

from __future__ import annotations

import random

Edge = tuple[int, int]


def build(nodes: int, degree: int, rng: random.Random) -> list[Edge]:
    order = list(range(nodes))
    rng.shuffle(order)
    edges: list[Edge] = []
    seen: set[tuple[int, int]] = set()  # ints hash alike in every process

    def add(a: int, b: int) -> bool:
        key = (min(a, b), max(a, b))
        if a == b or key in seen:
            return False
        seen.add(key)
        edges.append((a, b) if rng.random() < 0.5 else (b, a))
        return True

    for i, a in enumerate(order):
        add(a, order[(i + 1) % nodes])
    want = max(len(edges), nodes * degree // 2)
    possible = nodes * (nodes - 1) // 2
    while len(edges) < min(want, possible):
        add(rng.randrange(nodes), rng.randrange(nodes))
    return edges


def connected(nodes: int, edges: list[Edge]) -> bool:
    adjacent: dict[int, list[int]] = {n: [] for n in range(nodes)}
    for a, b in edges:
        adjacent[a].append(b)
        adjacent[b].append(a)
    seen = {0}
    stack = [0]
    while stack:
        for nxt in adjacent[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return len(seen) == nodes
