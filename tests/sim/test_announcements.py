"""IHAVE batching on slow links (protocols/sync.md §5.4; issue 10: at 2 s latency the
mesh flooded). Announcements wait a typical round-trip time of the node's links, which
the mesh measures: on a 1 s round trip, ops written 100 ms apart go out to each lazy
peer a handful per IHAVE frame, not one each (a fixed 50 ms window)."""

from __future__ import annotations

from liberation_node.core import frames
from liberation_node.core.events import ConnId
from liberation_node.core.frames import IHave
from liberation_node.sim import NetworkOptions, World

from .common import small


def test_announcements_on_a_slow_link_are_batched_by_its_round_trip() -> None:
    world = World(small(nodes=20, degree=4, ops=40, seed=3, boot_ms=1_000,
                        write_interval_ms=100, duration_ms=12_000, liveness_ms=30_000,
                        network=NetworkOptions(latency_ms=(500, 500))))
    ihaves: list[int] = []  # rows per IHAVE frame
    send = world.network.send

    def watch(conn: ConnId, data: bytes) -> None:
        frame = frames.decode(data)
        if isinstance(frame, IHave) and world.clock.elapsed > 6_000:  # RTTs measured
            ihaves.append(len(frame.refs))
        send(conn, data)

    world.network.send = watch  # type: ignore[method-assign]
    result = world.run()
    assert result.violations == [] and result.converged
    assert not any(k.startswith("timeout") for k in result.closes)
    assert len(ihaves) > 50
    assert sum(ihaves) / len(ihaves) >= 4, sorted(ihaves)
