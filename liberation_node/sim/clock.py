"""Virtual time: a clock that only moves when the event queue says so.

Every action in a run is an entry in one queue, ordered by (time, sequence
number). The sequence number is the order in which entries were pushed, so two
actions due at the same millisecond always run in the same order: the order of
the whole run is total, and a seed reproduces it exactly (DESIGN §6; the
TigerBeetle VOPR does the same with its own tick loop).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

Action = Callable[[], None]


class Clock:
    """Milliseconds of virtual time. `epoch` is what the nodes see at the start of a run."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.now = epoch

    @property
    def elapsed(self) -> int:
        """Virtual ms since the run started (what reports and options speak in)."""
        return self.now - self.epoch

    def at(self, elapsed: int) -> int:
        """The absolute time of `elapsed` ms into the run."""
        return self.epoch + elapsed


class EventQueue:
    """A heap of (time, seq, action): earliest first, then first pushed first."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Action]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, at: int, action: Action) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, action))

    def peek(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[int, Action]:
        at, _, action = heapq.heappop(self._heap)
        return at, action
