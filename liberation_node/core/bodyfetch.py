"""Fetching post contents this node lacks from peers that still hold them
(protocols/sync.md §7.4).

A header can arrive without its content: the peer that sent it had dropped the
content (retention, ops.md §12.5). When this node would keep that content, it
asks its peers for the op again, with a plain WANT of that one seq: a peer that
holds the content serves the carried form (ops.md §12.3), one that does not
serves the header, which changes nothing here.

Bounded and paced: at most `max_tracked` contents are wanted at once (more are
forgotten: a later header or a user's read can want them again); a sweep runs
at most every `sweep_ms` while some are wanted, and asks each peer for at most
`per_peer` of them; each is asked of one peer at a time, of a different peer
every `retry_ms`, and given up after `tries` peers. Serving is the WANT path,
which the peer paces by its transport (sync.md §6.5). The timer is one number:
nothing here is scanned per frame, only per sweep.

Pure: time and the open connections come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import ConnId
from .ops import Dep, Op


@dataclass(frozen=True)
class BodyFetchConfig:
    retry_ms: int = 2_000  # ask the next peer when no content came within this
    sweep_ms: int = 500  # sweeps at most this often
    per_peer: int = 64  # contents asked of one peer per sweep
    tries: int = 3  # peers asked before giving up
    max_tracked: int = 4_096  # contents wanted at once


@dataclass(slots=True)
class _Wanted:
    ref: Dep
    due: int  # when to ask (again)
    tries: int = 0


class BodyFetch:
    def __init__(self, config: BodyFetchConfig | None = None) -> None:
        self.config = config or BodyFetchConfig()
        self._wanted: dict[bytes, _Wanted] = {}  # op id -> state, oldest first
        self._next = 0  # the next sweep
        self.asked = 0  # requests sent (for tests and metrics)
        self.given_up = 0

    def __len__(self) -> int:
        return len(self._wanted)

    def want(self, op: Op, now: int) -> None:
        """This node would keep `op`'s content and lacks it: ask peers for it soon."""
        if op.id not in self._wanted and len(self._wanted) < self.config.max_tracked:
            self._wanted[op.id] = _Wanted(op.ref, now)

    def got(self, op_id: bytes) -> None:
        """The content came (or is no longer wanted): stop asking."""
        self._wanted.pop(op_id, None)

    def timer(self) -> int | None:
        return self._next if self._wanted else None

    def due(self, now: int, conns: list[ConnId]) -> dict[ConnId, list[Dep]]:
        """What to ask of whom now: per connection, the ops to request (oldest wanted
        first); each wanted content goes to the next peer in turn."""
        asks: dict[ConnId, list[Dep]] = {}
        cfg = self.config
        if not self._wanted or now < self._next:
            return asks
        self._next = now + cfg.sweep_ms
        if not conns:
            return asks
        for op_id, wanted in list(self._wanted.items()):
            if wanted.due > now:
                continue
            if wanted.tries >= cfg.tries:
                del self._wanted[op_id]
                self.given_up += 1
                continue
            conn = conns[(op_id[0] + wanted.tries) % len(conns)]
            batch = asks.setdefault(conn, [])
            if len(batch) >= cfg.per_peer:
                continue  # this peer's share is full: next sweep
            batch.append(wanted.ref)
            wanted.tries += 1
            wanted.due = now + cfg.retry_ms
            self.asked += 1
        return {c: refs for c, refs in asks.items() if refs}
