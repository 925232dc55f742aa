"""The simulated network on its own (sim/network.py): reliable, ordered connections
with latency, bandwidth and send buffers; loss as retransmission; partitions, closes,
broken associations and crashes."""

from __future__ import annotations

import random

from liberation_node.sim.clock import Clock, EventQueue
from liberation_node.sim.network import Endpoint, Network
from liberation_node.sim.options import NetworkOptions

UNLIMITED = NetworkOptions(bandwidth_bytes_s=None)


class Harness:
    def __init__(self, options: NetworkOptions, seed: int = 1) -> None:
        self.clock = Clock(0)
        self.queue = EventQueue()
        self.frames: list[tuple[int, int, int, bytes]] = []  # (at, sender, conn, data)
        self.closed: list[tuple[int, int]] = []  # (at, conn)
        self.net = Network(options, random.Random(seed), self.clock, self.queue,
                           self._frame, self._closed)

    def _frame(self, sender: int, end: Endpoint, data: bytes) -> None:
        self.frames.append((self.clock.now, sender, end.conn, data))

    def _closed(self, end: Endpoint) -> None:
        self.closed.append((self.clock.now, end.conn))

    def run(self, until: int | None = None) -> None:
        while self.queue and (until is None or (self.queue.peek() or 0) <= until):
            at, action = self.queue.pop()
            self.clock.now = at
            action()

    def payloads(self) -> list[bytes]:
        return [f[3] for f in self.frames]


def send_many(h: Harness, conn: int, n: int, size: int = 4) -> None:
    for i in range(n):
        h.net.send(conn, i.to_bytes(size, "big"))


def numbered(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") for i in range(n)]


def test_latency_within_bounds_and_always_in_order() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 100), bandwidth_bytes_s=None))
    a, b, binding = h.net.open(0, 1)
    assert len(binding) == 32 and a.peer == b.conn and b.peer == a.conn
    send_many(h, a.conn, 500)
    h.run()
    assert [f[2] for f in h.frames] == [b.conn] * 500
    assert all(10 <= f[0] <= 100 for f in h.frames)  # order only ever waits for earlier ones
    assert h.payloads() == numbered(500)
    assert h.net.counts["frames"] == 500 and h.net.counts["bytes"] == 2000


def test_bandwidth_paces_frames_and_fills_the_send_buffer() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 10), bandwidth_bytes_s=1_000_000))
    a, _, _ = h.net.open(0, 1)
    send_many(h, a.conn, 100, size=10_000)  # 1 MB at 1 MB/s: a second on the wire
    assert 990_000 <= h.net.buffered(a.conn) <= 1_000_000
    assert h.net.drained_at(a.conn, 0) == 1_000
    h.run(until=500)
    assert 45 <= len(h.frames) <= 50 and 490_000 <= h.net.buffered(a.conn) <= 560_000
    h.run()
    assert h.frames[-1][0] == 1_010 and h.net.buffered(a.conn) == 0


def test_a_send_buffer_past_its_limit_breaks_the_connection() -> None:
    h = Harness(NetworkOptions(bandwidth_bytes_s=1_000, max_buffer_bytes=50_000,
                               high_water=20_000, low_water=10_000))
    a, b, _ = h.net.open(0, 1)
    send_many(h, a.conn, 6, size=10_000)
    h.run()
    assert h.net.counts["overflow"] == 1 and h.net.counts["broken"] == 1
    assert {conn for _, conn in h.closed} == {a.conn, b.conn}  # both ends are told
    assert a.conn not in h.net.endpoints and b.conn not in h.net.endpoints


def test_per_link_latency_with_jitter() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 100), jitter_ms=5, bandwidth_bytes_s=None))
    a, _, _ = h.net.open(0, 1)
    h.net.send(a.conn, b"x")
    h.run()
    assert 10 <= a.base_ms <= 100
    assert a.base_ms <= h.frames[0][0] <= a.base_ms + 5  # one base, plus jitter


def test_a_lost_frame_is_retransmitted_and_holds_up_the_frames_behind_it() -> None:
    """SCTP: a lost frame comes again after the retransmission timeout (1 s, doubling);
    nothing is missing, nothing overtakes it."""
    h = Harness(NetworkOptions(latency_ms=(10, 10), loss=0.2, bandwidth_bytes_s=None))
    a, _, _ = h.net.open(0, 1)
    send_many(h, a.conn, 2000)
    h.run()
    assert h.payloads() == numbered(2000)
    assert 300 < h.net.counts["lost"] < 700
    assert h.net.counts["retransmitted"] == h.net.counts["lost"]
    assert h.frames[-1][0] >= 1_000 * h.net.counts["lost"] // 2


def test_too_many_retransmissions_break_the_connection() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 10), loss=0.9, bandwidth_bytes_s=None,
                               max_retransmits=3))
    a, b, _ = h.net.open(0, 1)
    send_many(h, a.conn, 50)
    h.run()
    assert h.net.counts["broken"] == 1 and len(h.frames) < 50
    assert h.payloads() == numbered(len(h.frames))  # in order up to the break
    assert {conn for _, conn in h.closed} == {a.conn, b.conn}


def test_a_partition_holds_frames_back_until_it_heals() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 10), bandwidth_bytes_s=None))
    across, _, _ = h.net.open(0, 2)
    same_side, _, _ = h.net.open(0, 1)
    h.net.partition([0, 1], nodes=4)
    assert h.net.cut(0, 2) and not h.net.cut(0, 1) and not h.net.cut(2, 3)
    h.net.send(across.conn, b"x")
    h.net.send(same_side.conn, b"y")
    h.run(until=2_000)
    assert h.payloads() == [b"y"] and h.net.counts["cut"] >= 1
    h.net.heal()
    h.run()
    assert h.payloads() == [b"y", b"x"]  # retransmitted once the way was free


def test_a_partition_longer_than_the_retransmissions_breaks_the_connection() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 10), bandwidth_bytes_s=None,
                               max_retransmits=2))
    a, b, _ = h.net.open(0, 1)
    h.net.partition([0], nodes=2)
    h.net.send(a.conn, b"x")
    h.run()
    assert h.frames == [] and h.net.counts["broken"] == 1
    assert {conn for _, conn in h.closed} == {a.conn, b.conn}


def test_closing_one_end_tells_the_other_after_its_frames() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 90), loss=0.3, bandwidth_bytes_s=None))
    a, b, _ = h.net.open(0, 1)
    send_many(h, a.conn, 20)
    h.net.close(a.conn)
    h.run()
    assert h.payloads() == numbered(20)  # an orderly close delivers what was sent
    assert h.closed and h.closed[0][1] == b.conn
    assert h.closed[0][0] >= max(f[0] for f in h.frames)
    assert a.conn not in h.net.endpoints and b.conn in h.net.endpoints


def test_no_close_notice_across_a_cut_and_none_to_a_crashed_node() -> None:
    h = Harness(UNLIMITED)
    a, b, _ = h.net.open(0, 1)
    h.net.partition([0], nodes=2)
    h.net.close(a.conn)
    h.run()
    assert h.closed == []  # node 1 finds out from its heartbeat
    c, d, _ = h.net.open(0, 1)
    h.net.heal()
    h.net.send(d.conn, b"to a dead node")
    assert h.net.forget_node(0) == [c.conn]
    h.run()
    assert h.closed == [] and h.frames == [] and h.net.counts["to_closed"] == 1
    assert h.net.conns_of(1) == [b.conn, d.conn]


def test_quiet_keeps_latency_and_stops_loss() -> None:
    h = Harness(NetworkOptions(loss=0.5, bandwidth_bytes_s=None))
    h.net.quiet()
    a, _, _ = h.net.open(0, 1)
    send_many(h, a.conn, 100)
    h.run()
    assert h.payloads() == numbered(100) and h.net.counts["lost"] == 0
