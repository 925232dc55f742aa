"""The one place that reads the real clock (STYLE rule 2): everything else takes `now`."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Wall-clock milliseconds since 1970: op timestamps and protocol timers."""
    return time.time_ns() // 1_000_000


def monotonic_s() -> float:
    """For measuring durations (loop lag, uptime) immune to clock steps."""
    return time.monotonic()
