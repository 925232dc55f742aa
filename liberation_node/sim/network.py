"""The simulated network: connections between nodes that delay, lose, duplicate and
reorder frames, and partitions that cut the node set in two.

A connection is two endpoints, one per node, each with its own `ConnId` (unique
in the run, never reused, so a frame for a connection that is gone finds
nothing and is dropped). Frames are scheduled on the run's event queue; the
network decides only *whether* and *when* each one arrives, drawing from its
own seeded RNG. A node closing its end makes the transport tell the other end
after one latency ("the data channel closed"), unless a partition is in the
way, in which case the other end finds out from its own heartbeat, as it would.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from ..core.events import ConnId
from .clock import Clock, EventQueue
from .options import NetworkOptions


@dataclass(slots=True)
class Endpoint:
    conn: ConnId
    node: int
    peer: ConnId  # the other end's conn id
    base_ms: int  # the link's latency before jitter (NetworkOptions.jitter_ms)
    last_arrival: int = 0  # FIFO: when the last frame sent from here arrives


FrameHandler = Callable[[int, Endpoint, bytes], None]  # (sender node, receiving end, frame)
CloseHandler = Callable[[Endpoint], None]


class Network:
    def __init__(self, options: NetworkOptions, rng: random.Random, clock: Clock,
                 queue: EventQueue, on_frame: FrameHandler, on_closed: CloseHandler) -> None:
        self.options = options
        self._rng = rng
        self._clock = clock
        self._queue = queue
        self._on_frame = on_frame
        self._on_closed = on_closed
        self.endpoints: dict[ConnId, Endpoint] = {}
        self._by_node: dict[int, dict[ConnId, None]] = {}  # an ordered set per node
        self._next_conn = 0
        self._group: list[int] | None = None  # partition: node -> side (0 or 1)
        self.counts = {"frames": 0, "bytes": 0, "lost": 0, "duplicated": 0, "reordered": 0,
                       "cut": 0, "to_closed": 0}

    # -- connections ------------------------------------------------------------------

    def open(self, a: int, b: int) -> tuple[Endpoint, Endpoint, bytes]:
        """A new connection between nodes a and b; both ends sign the returned binding."""
        ca, cb = self._next_conn + 1, self._next_conn + 2
        self._next_conn += 2
        lo, hi = self.options.latency_ms
        base = self._rng.randint(lo, hi) if self.options.jitter_ms is not None else 0
        ea, eb = Endpoint(ca, a, cb, base), Endpoint(cb, b, ca, base)
        for end in (ea, eb):
            self.endpoints[end.conn] = end
            self._by_node.setdefault(end.node, {})[end.conn] = None
        return ea, eb, self._rng.randbytes(32)

    def close(self, conn: ConnId) -> None:
        """`conn`'s node let go of it: the other end hears of it after a latency."""
        end = self._remove(conn)
        if end is None:
            return
        peer = self.endpoints.get(end.peer)
        if peer is not None and not self.cut(end.node, peer.node):
            at = max(self._clock.now + self._latency(end), end.last_arrival)
            self._queue.push(at, functools.partial(self._closed, end.node, peer.conn))

    def forget_node(self, node: int) -> list[ConnId]:
        """The node crashed: its ends vanish without a word (peers time out)."""
        conns = list(self._by_node.get(node, {}))
        for conn in conns:
            self._remove(conn)
        return conns

    def conns_of(self, node: int) -> list[ConnId]:
        return list(self._by_node.get(node, {}))

    def _remove(self, conn: ConnId) -> Endpoint | None:
        end = self.endpoints.pop(conn, None)
        if end is not None:
            del self._by_node[end.node][conn]
        return end

    def _closed(self, sender: int, conn: ConnId) -> None:
        end = self.endpoints.get(conn)
        if end is not None and not self.cut(sender, end.node):
            self._on_closed(end)

    # -- frames -----------------------------------------------------------------------

    def send(self, conn: ConnId, data: bytes) -> None:
        end = self.endpoints.get(conn)
        if end is None:
            return
        self.counts["frames"] += 1
        self.counts["bytes"] += len(data)
        opts, rng = self.options, self._rng
        if opts.loss and rng.random() < opts.loss:
            self.counts["lost"] += 1
            return
        copies = 1
        if opts.duplicate and rng.random() < opts.duplicate:
            self.counts["duplicated"] += 1
            copies = 2
        for _ in range(copies):
            at = self._clock.now + self._latency(end)
            if opts.reorder and rng.random() < opts.reorder:
                self.counts["reordered"] += 1
                at += rng.randint(0, opts.latency_ms[1])
            elif opts.fifo:
                at = max(at, end.last_arrival)
                end.last_arrival = at
            self._queue.push(at, functools.partial(self._arrive, end.node, end.peer, data))

    def _arrive(self, sender: int, conn: ConnId, data: bytes) -> None:
        end = self.endpoints.get(conn)
        if end is None:
            self.counts["to_closed"] += 1
        elif self.cut(sender, end.node):
            self.counts["cut"] += 1
        else:
            self._on_frame(sender, end, data)

    def _latency(self, end: Endpoint | None = None) -> int:
        jitter = self.options.jitter_ms
        if jitter is None or end is None:
            lo, hi = self.options.latency_ms
            return self._rng.randint(lo, hi)
        return end.base_ms + self._rng.randint(0, jitter)

    def signaling_delay(self) -> int:
        """Time to set up a connection: an offer and an answer, one round trip."""
        return 2 * self._latency()

    # -- partitions and quiet ---------------------------------------------------------

    def partition(self, side_a: list[int], nodes: int) -> None:
        chosen = set(side_a)
        self._group = [0 if n in chosen else 1 for n in range(nodes)]

    def heal(self) -> None:
        self._group = None

    def cut(self, a: int, b: int) -> bool:
        return self._group is not None and self._group[a] != self._group[b]

    def quiet(self) -> None:
        """From now on frames are only delayed (the liveness phase)."""
        self.options = dataclasses.replace(self.options, loss=0.0, duplicate=0.0, reorder=0.0)
