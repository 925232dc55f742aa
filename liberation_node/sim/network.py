"""The simulated network: reliable, ordered connections between nodes, as WebRTC data
channels over SCTP are, with latency, bandwidth and send buffers, and partitions that
cut the node set in two.

A connection is two endpoints, one per node, each with its own `ConnId` (unique in
the run, never reused, so a frame for a connection that is gone finds nothing and
is dropped). What a node sends on its endpoint:

- waits in its send buffer while earlier frames go out at the connection's
  bandwidth (`buffered`: what the driver's flow control sees, as `bufferedAmount`);
- then takes a latency (drawn per frame, or the connection's own plus a jitter) to
  arrive, never before the frame sent ahead of it (ordered delivery);
- may be lost (`loss`) or cut by a partition on the way: like SCTP, the sender
  retransmits it after a retransmission timeout that doubles each time (1 s at
  first), and the frames behind it wait (head-of-line blocking); after
  `max_retransmits` retransmissions of one frame the association is dead and both
  ends are told the connection broke. Loss never drops a frame silently.

A send buffer past `max_buffer_bytes` also breaks the connection. A node closing
its end tells the other end after its frames arrived ("the data channel
closed"), unless a partition is in the way, in which case the other end finds out
from its own heartbeat, as it would. The network decides only whether and when
each frame arrives, drawing from its own seeded RNG.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.events import ConnId
from .clock import Clock, EventQueue
from .options import NetworkOptions


@dataclass(slots=True)
class Endpoint:
    conn: ConnId
    node: int
    peer: ConnId  # the other end's conn id
    base_ms: int  # the link's latency before jitter (NetworkOptions.jitter_ms)
    sent_until: int = 0  # when the last byte queued here has left (bandwidth)
    last_arrival: int = 0  # ordered delivery: when the last frame sent from here arrives
    # Frames on their way to the *other* end, in order: (due, retransmissions, data);
    # data None is the close notice, which follows the frames sent before it.
    in_flight: deque[tuple[int, int, bytes | None]] = field(default_factory=deque)
    delivering: bool = False  # a delivery of the head of `in_flight` is scheduled
    dead: bool = False  # crashed or aborted: nothing more is sent or retransmitted


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
        self.counts = {"frames": 0, "bytes": 0, "lost": 0, "retransmitted": 0, "cut": 0,
                       "broken": 0, "overflow": 0, "to_closed": 0}

    # -- connections ------------------------------------------------------------------

    def open(self, a: int, b: int) -> tuple[Endpoint, Endpoint, bytes]:
        """A new connection between nodes a and b; both ends sign the returned binding."""
        ca, cb = self._next_conn + 1, self._next_conn + 2
        self._next_conn += 2
        lo, hi = self.options.latency_ms
        base = self._rng.randint(lo, hi) if self.options.jitter_ms is not None else 0
        now = self._clock.now
        ea, eb = Endpoint(ca, a, cb, base, now, now), Endpoint(cb, b, ca, base, now, now)
        for end in (ea, eb):
            self.endpoints[end.conn] = end
            self._by_node.setdefault(end.node, {})[end.conn] = None
        return ea, eb, self._rng.randbytes(32)

    def close(self, conn: ConnId) -> None:
        """`conn`'s node let go of it: the other end hears of it once what was sent
        before has arrived (an orderly close), unless a partition is in the way."""
        end = self._remove(conn)
        if end is None:
            return
        due = max(self._clock.now + self._latency(end), end.last_arrival)
        end.in_flight.append((due, 0, None))
        if not end.delivering:
            end.delivering = True
            self._queue.push(due, functools.partial(self._deliver, end))

    def abort(self, conn: ConnId) -> None:
        """The association broke (retransmissions exhausted, buffer overflow): both ends
        are told at once, without a CLOSE."""
        end = self.endpoints.get(conn)
        if end is None:
            return
        self.counts["broken"] += 1
        for side in (end, self.endpoints.get(end.peer)):
            if side is not None and self._remove(side.conn) is not None:
                side.dead = True
                side.in_flight.clear()
                self._queue.push(self._clock.now, functools.partial(self._on_closed, side))

    def forget_node(self, node: int) -> list[ConnId]:
        """The node crashed: its ends vanish without a word (peers time out)."""
        conns = list(self._by_node.get(node, {}))
        for conn in conns:
            end = self._remove(conn)
            if end is not None:
                end.dead = True  # what is on the wire still arrives; no retransmission
        return conns

    def conns_of(self, node: int) -> list[ConnId]:
        return list(self._by_node.get(node, {}))

    def _remove(self, conn: ConnId) -> Endpoint | None:
        end = self.endpoints.pop(conn, None)
        if end is not None:
            del self._by_node[end.node][conn]
        return end

    # -- sending ----------------------------------------------------------------------

    def buffered(self, conn: ConnId) -> int:
        """Bytes queued on `conn`'s send side that have not left yet (`bufferedAmount`)."""
        end = self.endpoints.get(conn)
        rate = self.options.bandwidth_bytes_s
        if end is None or rate is None:
            return 0
        return max(0, end.sent_until - self._clock.now) * rate // 1000

    def drained_at(self, conn: ConnId, level: int) -> int:
        """When `conn`'s send buffer will be at `level` bytes or below."""
        end = self.endpoints.get(conn)
        rate = self.options.bandwidth_bytes_s
        if end is None or rate is None:
            return self._clock.now
        return max(self._clock.now, end.sent_until - level * 1000 // rate)

    def send(self, conn: ConnId, data: bytes) -> None:
        end = self.endpoints.get(conn)
        if end is None:
            return
        opts, now = self.options, self._clock.now
        counts = self.counts
        counts["frames"] += 1
        counts["bytes"] += len(data)
        rate = opts.bandwidth_bytes_s
        buffered = max(0, end.sent_until - now) * rate // 1000 if rate else 0  # `buffered`
        if buffered + len(data) > opts.max_buffer_bytes:
            counts["overflow"] += 1
            self.abort(conn)
            return
        start = max(now, end.sent_until)
        end.sent_until = start + (len(data) * 1000 // rate if rate else 0)
        due = max(end.sent_until + self._latency(end), end.last_arrival)
        end.last_arrival = due
        peer = self.endpoints.get(end.peer)
        if peer is None:
            self.counts["to_closed"] += 1
            return
        end.in_flight.append((due, 0, data))
        if not end.delivering:
            end.delivering = True
            self._queue.push(due, functools.partial(self._deliver, end))

    def _deliver(self, end: Endpoint) -> None:
        """The frame at the head of `end`'s flight arrives now, or is lost and sent again
        (the frames behind it wait: ordered delivery). A closed end's frames still go
        (an orderly close); a dead one's are not retransmitted."""
        end.delivering = False
        if not end.in_flight:
            return
        _, tries, data = end.in_flight[0]
        peer = self.endpoints.get(end.peer)
        if peer is None:
            self.counts["to_closed"] += len(end.in_flight)
            end.in_flight.clear()
            return
        if data is None:  # the close notice: lost to a partition (the heartbeat tells)
            end.in_flight.clear()
            if not self.cut(end.node, peer.node):
                self._on_closed(peer)
            else:
                self.counts["cut"] += 1
            return
        lost = self.options.loss and self._rng.random() < self.options.loss
        if lost or self.cut(end.node, peer.node):
            self.counts["lost" if lost else "cut"] += 1
            if end.dead:
                end.in_flight.clear()
                return
            if tries >= self.options.max_retransmits:
                self.abort(end.conn if end.conn in self.endpoints else peer.conn)
                return
            self.counts["retransmitted"] += 1
            rto = min(self.options.rto_min_ms << tries, self.options.rto_max_ms)
            end.in_flight[0] = (self._clock.now + rto, tries + 1, data)
            end.delivering = True
            self._queue.push(self._clock.now + rto, functools.partial(self._deliver, end))
            return
        end.in_flight.popleft()
        if end.in_flight:
            # The next frame arrives when it is due, and never before this one.
            nxt = max(end.in_flight[0][0], self._clock.now)
            end.delivering = True
            self._queue.push(nxt, functools.partial(self._deliver, end))
        self._on_frame(end.node, peer, data)

    def _latency(self, end: Endpoint | None = None) -> int:
        jitter = self.options.jitter_ms
        if jitter is None or end is None:
            lo, hi = self.options.latency_ms
            return self._rng.randint(lo, hi)
        return end.base_ms + self._rng.randint(0, jitter)

    def signaling_delay(self) -> int:
        """One round trip: an offer out and an answer back (HTTP), or ICE's checks."""
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
        self.options = dataclasses.replace(self.options, loss=0.0)
