"""Health checks (DESIGN §4 "connection manager ... reports health checks"), published
on the event bus as ``system.health.check`` every interval: store (commits
failing), clock (offset from peers past half the skew bound), mesh degree,
sync lag, event-loop lag, memory and free disk space, each with an ``ok`` verdict.

Event-loop lag is sampled every `PROBE_S` (how late a short sleep wakes up) and
reported as the worst since the last check: a burst of work that blocks the loop
for a second between two checks shows. Free disk space is looked at as often:
below `min_free_disk_mb` (or a twentieth of the disk, if less) the node takes in no
more data from peers (its own writes go on: sync.md §9.1) until there is a quarter
more than that again."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import shutil
from typing import TYPE_CHECKING, Any

from . import clock
from .core.ops import MAX_CLOCK_SKEW_MS

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("liberation_node")
PROBE_S = 0.1


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
        self.loop_lag_ms = 0.0  # the worst since the last check
        self._lag_max = 0.0
        self.disk_free: int | None = None

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
            "disk": {"ok": node.mesh.quotas.no_room is None, "free_bytes": self.disk_free},
        }

    def look_at_disk(self) -> None:
        """Refuse data from peers below the free space floor, take it again above 1.25x."""
        node = self.node
        try:
            usage = shutil.disk_usage(node.dir.path)
        except OSError:
            return
        free = self.disk_free = usage.free
        # A twentieth of a small disk at most: a 4 GiB card keeps 205 MiB for its own writes.
        floor = min(node.config.min_free_disk_mb * 2**20, usage.total // 20)
        quotas = node.mesh.quotas
        if quotas.no_room is None and free < floor:
            quotas.no_room = f"{free // 2**20} MiB free"
            log.warning("only %d MiB free on the disk of %s: no more ops or records are taken "
                        "in from peers (this node's own writes go on) until %d MiB are free",
                        free // 2**20, node.dir.path, floor * 5 // 4 // 2**20)
        elif quotas.no_room is not None and free >= floor * 5 // 4:
            quotas.no_room = None
            log.info("%d MiB free again: taking in data from peers", free // 2**20)

    async def run(self, interval_s: float) -> None:
        loop = asyncio.get_running_loop()
        next_report = loop.time() + interval_s
        while True:
            before = loop.time()
            await asyncio.sleep(PROBE_S)
            # How late the loop woke us: the lag anything else on the loop sees.
            self._lag_max = max(self._lag_max, (loop.time() - before - PROBE_S) * 1000)
            self.look_at_disk()
            if loop.time() < next_report:
                continue
            next_report = loop.time() + interval_s
            self.loop_lag_ms, self._lag_max = self._lag_max, 0.0
            report = self.check()
            report["ok"] = all(part["ok"] for part in report.values())
            self.node.bus.publish("system.health.check", report)
