"""How the commands print things for people: tables, amounts, times and sizes.

Amounts are integer cents everywhere else (API contract); here, and only here,
they become dollars. Times are the node's Unix milliseconds, shown in local time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence


def dollars(cents: object) -> str:
    """Integer cents as dollars: 80000 -> "$800.00" (no float ever touches money)."""
    if not isinstance(cents, int) or isinstance(cents, bool):
        return "?"
    whole, part = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}${whole:,}.{part:02d}"


def duration(seconds: object) -> str:
    """A span for a person: "42s", "3m 05s", "2h 03m", "4d 02h"."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return "?"
    secs = int(seconds)
    minutes, secs = divmod(secs, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def since(ms: object, now_ms: int) -> str:
    """How long ago the Unix-millisecond time `ms` was."""
    if not isinstance(ms, int) or isinstance(ms, bool):
        return "?"
    return duration(max(0, now_ms - ms) / 1000)


def when(ms: object) -> str:
    """A Unix-millisecond time in local time: "2026-12-01 06:49"."""
    if not isinstance(ms, int) or isinstance(ms, bool):
        return "?"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def size(count: object) -> str:
    """Bytes for a person: "512 B", "1.5 KiB", "3.2 MiB"."""
    if not isinstance(count, int) or isinstance(count, bool):
        return "-"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def rtt(ms: object) -> str:
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        return "-"
    return f"{ms:.0f} ms"


def short(node_id: object) -> str:
    """A node id shortened for a table (core/identity.py short_id: "ln" + 8 characters)."""
    return node_id[:10] if isinstance(node_id, str) else "?"


def who(node_id: object, name: object) -> str:
    """A person or node as a table shows it: the name, else the short id."""
    return name if isinstance(name, str) and name else short(node_id)


def oneline(text: object, width: int = 0) -> str:
    """Text on one line (a table row), cut to `width` characters when given."""
    flat = " ".join(str(text).split())
    return flat if not width or len(flat) <= width else flat[: width - 1] + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]],
          right: Iterable[int] = ()) -> list[str]:
    """Aligned columns, two spaces apart; columns listed in `right` align right.
    The last column is not padded (no trailing spaces)."""
    cells = [[str(h) for h in headers], *([oneline(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right = set(right)
    lines = []
    for row in cells:
        parts = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
    return lines
