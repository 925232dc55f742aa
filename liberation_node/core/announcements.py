"""The IHAVE queue (protocols/sync.md §5.4): rows queued per peer, flushed together once
a batching window ends, less the rows of items the peer is known to hold.

The window is a typical round-trip time of our links (set by `measured`), within
`[ihave_delay_ms, ihave_max_ms]`. Why: an announcement matters only when the eager push
fails to come, and then its receiver waits several round trips before it grafts (§5.5),
so one more costs little; a 50 ms window carried a frame per item per lazy link
(300 nodes, 5 ops a second: about one row per IHAVE frame).

Pure bookkeeping, as gossip.py, which owns one.
"""

from __future__ import annotations

from collections import OrderedDict

from .events import ConnId
from .frames import Announced, Ref


class Holders:
    """Which peers are known to hold an item (an op or record id): those that announced
    it to us or pushed it to us. Bounded: the newest `most` items are remembered. A
    connection id names one connection for good (drivers never reuse one), so a peer's
    entries need no clearing when its link goes."""

    def __init__(self, most: int) -> None:
        self._most = most
        self._of: OrderedDict[bytes, set[ConnId]] = OrderedDict()

    def add(self, item: bytes, conn: ConnId) -> None:
        held = self._of.get(item)
        if held is None:
            held = self._of[item] = set()
            if len(self._of) > self._most:
                self._of.popitem(last=False)
        held.add(conn)

    def holds(self, conn: ConnId, item: bytes) -> bool:
        held = self._of.get(item)
        return held is not None and conn in held


class Announcements:
    def __init__(self, floor_ms: int, rtts: float, max_ms: int, remember: int) -> None:
        self._floor, self._rtts, self._max = floor_ms, rtts, max_ms
        self.delay_ms = floor_ms
        self.holders = Holders(remember)
        self._rows: dict[ConnId, list[Announced]] = {}
        self._due: int | None = None

    def measured(self, rtt: int) -> None:
        """Our links' typical round-trip time is now `rtt` ms."""
        self.delay_ms = max(self._floor, min(self._max, int(self._rtts * rtt)))

    def queue(self, conns: set[ConnId], source: ConnId | None, ref: Ref, hops: int,
              now: int, *, prompt: bool = False) -> None:
        """Announce `ref` at `hops` to each of `conns` but `source`, when the window ends
        (one opens now if none is open). A `prompt` row (a distance offer, §5.9) waits
        no longer than the shortest window: the tree forms from the offers as they go
        round while the mesh boots. (A trial where offers waited the round trip too:
        1000 nodes, 50 ops over 5 s from 1 s after boot, the first ops crossed up to 14
        links; the offers prompt, 12, as with a 50 ms window for all.)"""
        targets = [conn for conn in conns if conn != source]
        if not targets:
            return
        row = (ref[0], ref[1], ref[2], hops)
        for conn in targets:
            self._rows.setdefault(conn, []).append(row)
        due = now + (self._floor if prompt else self.delay_ms)
        if self._due is None or due < self._due:
            self._due = due

    def forget(self, conn: ConnId) -> None:
        self._rows.pop(conn, None)

    def timer(self) -> int | None:
        return self._due

    def due(self, now: int, always: bytes | None) -> dict[ConnId, list[Announced]]:
        """Once the window has ended: the rows per peer, but those of items the peer is
        known to hold (it would learn nothing), unless the item is `always` (the tracked
        item, whose rows are distance offers, §5.9); else nothing."""
        if self._due is None or now < self._due:
            return {}
        queued, self._rows, self._due = self._rows, {}, None
        holds = self.holders.holds
        out: dict[ConnId, list[Announced]] = {}
        for conn, rows in queued.items():
            if rows := [r for r in rows if r[2] == always or not holds(conn, r[2])]:
                out[conn] = rows
        return out
