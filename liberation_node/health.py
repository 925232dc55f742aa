"""Health checks (DESIGN §4 "connection manager ... reports health checks"), published
on the event bus as ``system.health.check`` every interval: store (commits
failing), clock (offset from peers past half the skew bound), mesh degree,
sync lag, event-loop lag and memory, each with an ``ok`` verdict."""

from __future__ import annotations

import asyncio
import os
import resource
from typing import TYPE_CHECKING, Any

from . import clock
from .core.ops import MAX_CLOCK_SKEW_MS

if TYPE_CHECKING:
    from .node import Node


def rss_bytes() -> int:
    """Resident memory now (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Health:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.ops_stored = 0
        self.last_store_ok = clock.monotonic_s()
        self.loop_lag_ms = 0.0

    def stored(self, count: int) -> None:
        self.ops_stored += count
        self.last_store_ok = clock.monotonic_s()

    def check(self) -> dict[str, Any]:
        node = self.node
        peers = len(node.mesh.peers())
        low = node.config.peering.low
        pending = len(node.mesh.replica.pending)
        rss = rss_bytes()
        writer = node._writer
        error = writer.error if writer is not None else None
        offset = node.clock_offset_ms()
        return {
            "store": {"ok": error is None, "ops_stored": self.ops_stored, "error": error,
                      "queued_ops": writer.queued_ops if writer is not None else 0},
            # Past half the bound a peer's ops or records may soon be refused (ops.md §5.4).
            "clock": {"ok": offset is None or abs(offset) <= MAX_CLOCK_SKEW_MS // 2,
                      "offset_ms": offset, "bound_ms": MAX_CLOCK_SKEW_MS},
            "degree": {"ok": peers >= min(low, 1), "peers": peers, "low": low,
                       "high": node.config.peering.high},
            "sync": {"ok": pending < 1000, "pending": pending,
                     "ops": len(node.mesh.replica.ops)},
            "loop": {"ok": self.loop_lag_ms < 250, "lag_ms": round(self.loop_lag_ms, 1)},
            "memory": {"ok": rss < 200 * 2**20, "rss_bytes": rss},
        }

    async def run(self, interval_s: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(interval_s)
            # How late the loop woke us: the lag anything else on the loop sees.
            self.loop_lag_ms = max(0.0, (loop.time() - before - interval_s) * 1000)
            report = self.check()
            report["ok"] = all(part["ok"] for part in report.values())
            self.node.bus.publish("system.health.check", report)
