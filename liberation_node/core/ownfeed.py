"""This node's own feed: written durably before anyone sees it, and never forked
(DESIGN §8; protocols/sync.md §10).

Two rules keep a node from signing two ops at one position of its own feed,
whatever happens to its process or its disk:

1. **Durable before seen.** An own op is applied to the replica at once (so
   that the next write chains onto it and the ledger checks see it), but it is
   *held*: not pushed, announced, or served in a feed range, and not
   acknowledged to the user, until the driver reports that the store committed
   it (`stored`). An op that dies with the process before its commit was never
   seen by anyone, so signing another op at its seq after a restart forks
   nothing. Each `Changed` event carries a ticket; the driver reports the
   highest ticket whose batch is committed.

2. **Check before writing.** A data directory can be behind the network's copy
   of its own feed: restored from an old backup, a replica deleted or lost to a
   power cut. Writing then would sign a second op at a seq that peers already
   hold. So a node that did not just create its identity starts with writes
   *closed*: it runs an anti-entropy round with each peer it meets, asking
   first for every op of its own feed above its head (a WANT ahead of
   SYNC_OPEN, so the round's closing WANT comes after those ops). When a round
   ends with no own op still waiting for its past, that peer held nothing of
   ours that we lack: writes open. If no peer could be checked within
   `grace_ms`, writes open with a warning (a lone node must be able to work);
   with `grace_ms = None` (`run --recover`) they wait for a peer.

Pure: time comes in as `now`; the mesh calls in and reads `writable()`.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from .ops import Op


class Gate(enum.Enum):
    OPEN = "open"
    CHECKING = "checking"
    FORKED = "forked"


@dataclass(frozen=True)
class OwnFeedConfig:
    check: bool = True  # check the own feed with peers before the first write
    grace_ms: int | None = 10_000  # then open anyway if no peer could be checked; None: wait


CHECKING_REASON = ("checking this node's own feed with its peers before writing (a data "
                   "directory restored from a backup must not fork its identity)")
FORKED_REASON = "this identity has equivocated; its feed is closed"


class OwnFeed:
    def __init__(self, me: bytes, stored_head: int, config: OwnFeedConfig, now: int) -> None:
        self.me = me
        self.config = config
        self.published_seq = stored_head  # own ops at or below this are durable
        self._held: deque[tuple[int, list[Op]]] = deque()  # (ticket, own ops) awaiting commit
        self.gate = Gate.CHECKING if config.check else Gate.OPEN
        self.deadline = (now + config.grace_ms
                         if config.check and config.grace_ms is not None else None)
        self.checking: set[int] = set()  # connections with a checking round in flight
        self.checked_with = 0  # peers whose rounds found nothing of ours we lacked
        self.head_at_start = stored_head

    # -- rule 1: durable before seen ---------------------------------------------------

    def hold(self, ticket: int, ops: list[Op]) -> None:
        """`ops` (own writes and whatever they released) wait for ticket `ticket`."""
        self._held.append((ticket, ops))

    def stored(self, ticket: int) -> list[Op]:
        """Every batch up to `ticket` is committed: the held ops that may now be seen."""
        released: list[Op] = []
        while self._held and self._held[0][0] <= ticket:
            released.extend(self._held.popleft()[1])
        for op in released:
            if op.author == self.me:
                self.published_seq = max(self.published_seq, op.seq)
        return released

    def visible(self, op: Op) -> bool:
        """May `op` be pushed or served to a peer?"""
        return op.author != self.me or op.seq <= self.published_seq

    def cap(self, author: bytes, last: int) -> int:
        """The last seq of a range of `author`'s feed that may be served."""
        return min(last, self.published_seq) if author == self.me else last

    @property
    def unstored(self) -> int:
        """Own write batches not yet committed."""
        return len(self._held)

    # -- rule 2: check before writing ---------------------------------------------------

    def writable(self) -> str | None:
        """None when the node may write; else why not, for a person."""
        if self.gate is Gate.FORKED:
            return FORKED_REASON
        if self.gate is Gate.CHECKING:
            return CHECKING_REASON
        return None

    def round_started(self, conn: int) -> bool:
        """A round starts on `conn`: True when it must check our feed (ask for it first)."""
        if self.gate is not Gate.CHECKING:
            return False
        self.checking.add(conn)
        return True

    def round_ended(self, conn: int, *, own_waiting: bool) -> bool:
        """A checking round on `conn` finished (or was abandoned, `own_waiting` True).
        Returns True when this opened the gate."""
        if conn not in self.checking:
            return False
        self.checking.discard(conn)
        if self.gate is not Gate.CHECKING or own_waiting:
            return False
        self.checked_with += 1
        if not self.checking:  # every round in flight agrees: nothing of ours is elsewhere
            self.gate = Gate.OPEN
            return True
        return False

    def peer_gone(self, conn: int) -> None:
        self.checking.discard(conn)

    def expire(self, now: int) -> bool:
        """Past the grace period with no check in flight: open (True) with a warning."""
        if self.gate is Gate.CHECKING and self.deadline is not None and now >= self.deadline \
                and not self.checking:
            self.gate = Gate.OPEN
            return True
        return False

    def timer(self) -> int | None:
        """When `expire` may open the gate; none while a check is in flight (its end,
        or its abandonment, decides first)."""
        return self.deadline if self.gate is Gate.CHECKING and not self.checking else None

    def forked(self) -> None:
        self.gate = Gate.FORKED
