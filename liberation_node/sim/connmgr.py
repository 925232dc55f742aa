"""A connection manager for simulated nodes: keep every topology edge connected.

Each edge has one dialer. When its connection is gone (closed by either side,
timed out by the heartbeat, refused, or the dialer restarted), the dialer dials
again after an exponential backoff with jitter (DESIGN §4, "connection
manager"). A dial needs a round trip of signaling and fails when the other node
is down or on the far side of a partition; then the backoff grows.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ..core.events import ConnId
from .clock import Clock, EventQueue
from .topology import Edge

BACKOFF_BASE_MS = 250
BACKOFF_MAX_MS = 8_000


@dataclass(slots=True)
class Dial:
    dialer: int
    acceptor: int
    conn: ConnId | None = None  # the dialer's end, while a connection exists
    attempts: int = 0  # failures since the last session that came up
    generation: int = 0  # bumped to cancel a scheduled attempt


class ConnectionManager:
    def __init__(self, edges: list[Edge], rng: random.Random, clock: Clock, queue: EventQueue,
                 *, alive: Callable[[int], bool], reachable: Callable[[int, int], bool],
                 signaling_delay: Callable[[], int], connect: Callable[[int, int], ConnId]
                 ) -> None:
        self._rng = rng
        self._clock = clock
        self._queue = queue
        self._alive = alive
        self._reachable = reachable
        self._signaling_delay = signaling_delay
        self._connect = connect
        self.dials = [Dial(a, b) for a, b in edges]
        self._by_dialer: dict[int, list[Dial]] = {}
        for d in self.dials:
            self._by_dialer.setdefault(d.dialer, []).append(d)
        self._by_conn: dict[ConnId, Dial] = {}
        self.counts = {"dials": 0, "dial_failures": 0, "connects": 0}

    def start(self, node: int, spread_ms: int) -> None:
        """`node` (re)started: dial all its edges within `spread_ms`."""
        for d in self._by_dialer.get(node, []):
            d.attempts = 0
            self._schedule(d, self._rng.randint(0, spread_ms))

    def crashed(self, node: int) -> None:
        for d in self._by_dialer.get(node, []):
            if d.conn is not None:
                self._by_conn.pop(d.conn, None)
                d.conn = None
            d.generation += 1

    def up(self, conn: ConnId) -> None:
        d = self._by_conn.get(conn)
        if d is not None:
            d.attempts = 0

    def down(self, conn: ConnId) -> None:
        """The dialer's end of a connection is gone (any reason): dial again later."""
        d = self._by_conn.pop(conn, None)
        if d is not None:
            d.conn = None
            self._retry(d)

    def degree(self, node: int) -> int:
        return sum(1 for d in self.dials if d.conn is not None and node in (d.dialer, d.acceptor))

    def _schedule(self, d: Dial, delay: int) -> None:
        d.generation += 1
        generation = d.generation
        self._queue.push(self._clock.now + delay, lambda: self._attempt(d, generation))

    def _retry(self, d: Dial) -> None:
        if not self._alive(d.dialer):
            return  # its restart dials again
        d.attempts += 1
        backoff = min(BACKOFF_MAX_MS, BACKOFF_BASE_MS << min(d.attempts, 16))
        self._schedule(d, int(backoff * self._rng.uniform(0.5, 1.5)))

    def _attempt(self, d: Dial, generation: int) -> None:
        if generation != d.generation or d.conn is not None or not self._alive(d.dialer):
            return
        self.counts["dials"] += 1
        self._queue.push(self._clock.now + self._signaling_delay(),
                         lambda: self._establish(d, generation))

    def _establish(self, d: Dial, generation: int) -> None:
        if generation != d.generation or d.conn is not None or not self._alive(d.dialer):
            return
        if not self._alive(d.acceptor) or not self._reachable(d.dialer, d.acceptor):
            self.counts["dial_failures"] += 1
            self._retry(d)
            return
        self.counts["connects"] += 1
        d.conn = self._connect(d.dialer, d.acceptor)  # the nodes act on it after this
        self._by_conn[d.conn] = d
