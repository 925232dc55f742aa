"""The faulty network on its own (sim/network.py): latency, loss, duplication,
order and reordering, partitions, closes and crashes."""

from __future__ import annotations

import random

from liberation_node.sim.clock import Clock, EventQueue
from liberation_node.sim.network import Endpoint, Network
from liberation_node.sim.options import NetworkOptions


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


def send_many(h: Harness, conn: int, n: int) -> None:
    for i in range(n):
        h.net.send(conn, i.to_bytes(4, "big"))


def test_latency_within_bounds_and_in_order_by_default() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 100)))
    a, b, binding = h.net.open(0, 1)
    assert len(binding) == 32 and a.peer == b.conn and b.peer == a.conn
    send_many(h, a.conn, 500)
    h.run()
    assert [f[2] for f in h.frames] == [b.conn] * 500
    assert all(10 <= f[0] <= 100 for f in h.frames)  # FIFO only ever waits for earlier ones
    assert h.payloads() == [i.to_bytes(4, "big") for i in range(500)]
    assert h.net.counts["frames"] == 500 and h.net.counts["bytes"] == 2000


def test_unordered_connections_reorder_by_jitter() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 100), fifo=False))
    a, _, _ = h.net.open(0, 1)
    send_many(h, a.conn, 200)
    h.run()
    assert len(h.frames) == 200
    assert h.payloads() != sorted(h.payloads())


def test_reorder_option_lets_frames_overtake_on_an_ordered_connection() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 20), reorder=0.3))
    a, _, _ = h.net.open(0, 1)
    send_many(h, a.conn, 300)
    h.run()
    assert 50 < h.net.counts["reordered"] < 150
    assert sorted(h.payloads()) == [i.to_bytes(4, "big") for i in range(300)]
    assert h.payloads() != sorted(h.payloads())


def test_loss_and_duplication_at_their_rates() -> None:
    h = Harness(NetworkOptions(loss=0.2, duplicate=0.1))
    a, _, _ = h.net.open(0, 1)
    send_many(h, a.conn, 2000)
    h.run()
    lost, dup = h.net.counts["lost"], h.net.counts["duplicated"]
    assert 320 < lost < 480 and 110 < dup < 210
    assert len(h.frames) == 2000 - lost + dup
    assert len(set(h.payloads())) == 2000 - lost


def test_per_link_latency_with_jitter() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 100), jitter_ms=5, fifo=False))
    a, _, _ = h.net.open(0, 1)
    send_many(h, a.conn, 100)
    h.run()
    assert 10 <= a.base_ms <= 100
    assert all(a.base_ms <= f[0] <= a.base_ms + 5 for f in h.frames)  # one base, plus jitter


def test_partition_drops_frames_across_the_cut_until_healed() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 10)))
    across, _, _ = h.net.open(0, 2)
    same_side, _, _ = h.net.open(0, 1)
    h.net.partition([0, 1], nodes=4)
    assert h.net.cut(0, 2) and not h.net.cut(0, 1) and not h.net.cut(2, 3)
    h.net.send(across.conn, b"x")
    h.net.send(same_side.conn, b"y")
    h.run()
    assert h.payloads() == [b"y"] and h.net.counts["cut"] == 1
    h.net.heal()
    h.net.send(across.conn, b"z")
    h.run()
    assert h.payloads() == [b"y", b"z"]


def test_a_frame_in_flight_when_the_cut_comes_is_lost() -> None:
    h = Harness(NetworkOptions(latency_ms=(50, 50)))
    a, _, _ = h.net.open(0, 1)
    h.net.send(a.conn, b"x")
    h.run(until=10)
    h.net.partition([0], nodes=2)
    h.run()
    assert h.frames == [] and h.net.counts["cut"] == 1


def test_closing_one_end_tells_the_other_after_its_frames() -> None:
    h = Harness(NetworkOptions(latency_ms=(10, 90)))
    a, b, _ = h.net.open(0, 1)
    send_many(h, a.conn, 20)
    h.net.close(a.conn)
    h.run()
    assert h.closed and h.closed[0][1] == b.conn
    assert h.closed[0][0] >= max(f[0] for f in h.frames)
    assert a.conn not in h.net.endpoints and b.conn in h.net.endpoints


def test_no_close_notice_across_a_cut_and_none_to_a_crashed_node() -> None:
    h = Harness(NetworkOptions())
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


def test_quiet_keeps_latency_and_stops_faults() -> None:
    h = Harness(NetworkOptions(loss=0.5, duplicate=0.5, reorder=0.5))
    h.net.quiet()
    a, _, _ = h.net.open(0, 1)
    send_many(h, a.conn, 100)
    h.run()
    assert h.payloads() == [i.to_bytes(4, "big") for i in range(100)]
