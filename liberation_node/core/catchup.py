"""Requests for missing causal past, outside any round (protocols/sync.md §7.1).

An op that waits for its past was applied by the peer that sent it, so that peer
holds the past: we ask it at once with a standalone WANT for everything of that
feed we lack up to the missing seq. Requests are de-duplicated by range: while a
request for a feed is outstanding (younger than `retry_ms`, to a peer still
connected), a later waiter of the same feed asks only for the seqs above what
was already asked, or nothing. One fast writer whose ops arrive ahead of their
predecessors thus costs one request per gap, not one per op.

Every `retry_ms` the pending set is swept: the oldest missing ops are asked
again, round-robin over the open peers from a different first peer each time
(Appendix A.13), once the request that covered them has aged out.

Pure: time comes in as `now`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import ConnId
from .frames import Want
from .replica import Replica

SWEEP_MAX = 256  # missing ops asked for per sweep


@dataclass(slots=True)
class _Asked:
    upto: int  # seqs head+1 .. upto are asked for
    at: int  # when the first of those requests went out
    conn: ConnId  # to whom (the last request)


class CatchUp:
    def __init__(self, replica: Replica, retry_ms: int) -> None:
        self.replica = replica
        self.retry_ms = retry_ms
        self._asked: dict[bytes, _Asked] = {}  # author -> the outstanding request
        self._forks: dict[tuple[bytes, int], int] = {}  # (author, seq) -> asked at
        self._turn = 0  # the sweep's first peer

    def ask(self, conn: ConnId, author: bytes, seq: int, now: int) -> Want | None:
        """The WANT to send `conn` for `author`'s past up to `seq`, or None when an
        outstanding request already covers it."""
        feed = self.replica.feeds.get(author)
        head = feed.head_seq if feed is not None else 0
        if head >= seq:
            # We hold a different op at `seq`: ask for the peer's, so that the two meet
            # and prove the fork (sync.md §7.1).
            asked = self._forks.get((author, seq))
            if asked is not None and now - asked < self.retry_ms:
                return None
            self._forks[(author, seq)] = now
            return Want(0, ((author, seq, seq),), (), ())
        outstanding = self._asked.get(author)
        start = head + 1
        if outstanding is not None and now - outstanding.at < self.retry_ms:
            if seq <= outstanding.upto:
                return None
            start = max(start, outstanding.upto + 1)
            outstanding.upto, outstanding.conn = seq, conn
        else:
            self._asked[author] = _Asked(seq, now, conn)
        return Want(0, ((author, start, seq),), (), ())

    def applied(self, author: bytes, seq: int) -> None:
        """An op of `author` at `seq` was applied."""
        outstanding = self._asked.get(author)
        if outstanding is not None and seq >= outstanding.upto:
            del self._asked[author]
        self._forks.pop((author, seq), None)

    def peer_gone(self, conn: ConnId) -> None:
        """Requests to `conn` will not be answered: the next waiter asks again."""
        for author in [a for a, r in self._asked.items() if r.conn == conn]:
            del self._asked[author]

    def sweep(self, conns: list[ConnId], now: int) -> list[tuple[ConnId, Want]]:
        """Ask again for causal past still missing, round-robin over `conns`."""
        if not conns:
            return []
        self._asked = {a: r for a, r in self._asked.items() if now - r.at < 10 * self.retry_ms}
        self._forks = {k: t for k, t in self._forks.items() if now - t < 10 * self.retry_ms}
        out: list[tuple[ConnId, Want]] = []
        self._turn += 1
        for i, dep in enumerate(self.replica.pending.wanted()):
            if i >= SWEEP_MAX:
                break
            conn = conns[(i + self._turn) % len(conns)]
            want = self.ask(conn, dep.author, dep.seq, now)
            if want is not None:
                out.append((conn, want))
        return out
