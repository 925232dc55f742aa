"""The virtual clock and the event queue (sim/clock.py)."""

from __future__ import annotations

from liberation_node.sim.clock import Clock, EventQueue


def test_queue_orders_by_time_then_by_push_order() -> None:
    queue = EventQueue()
    seen: list[str] = []
    for at, name in ((5, "c"), (1, "a"), (5, "d"), (1, "b"), (3, "x")):
        queue.push(at, lambda name=name: seen.append(name))  # type: ignore[misc]
    assert queue.peek() == 1
    while queue:
        _, action = queue.pop()
        action()
    assert seen == ["a", "b", "x", "c", "d"]


def test_clock_speaks_absolute_and_elapsed_time() -> None:
    clock = Clock(1_000_000)
    assert clock.now == clock.at(0) == 1_000_000
    clock.now = clock.at(250)
    assert clock.elapsed == 250
