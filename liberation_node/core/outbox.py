"""What the mesh sends: frames per connection, produced only for connections marked as
having something to send, with the bulk of answers capped by the driver's budget and
the rest owed until the link drains (protocols/sync.md §4.8, §6.5: serving and flow
control; transport.md §2.4). Also the events the driver drains.

A mixin of `Mesh` (mesh.py); the state it shares: meshstate.py.
"""

from __future__ import annotations

from collections.abc import Callable

from .events import ConnId, Event
from .frames import TARGET_FRAME_BYTES
from .meshstate import MeshState
from .serving import produce
from .session import State


class Outbox(MeshState):
    """Frames out, owed answers (backlogs), and events out."""

    def _mark(self, conn: ConnId) -> None:
        """`conn` may have something to send, and its timer may have moved."""
        self._dirty[conn] = None
        self._touched.add(conn)

    def backlog(self, conn: ConnId) -> int:
        """Answers still owed to the peer on `conn` (sent as its link drains)."""
        peer = self._peers.get(conn)
        return peer.owed.answers if peer else 0

    def backlogged(self) -> list[ConnId]:
        """The connections with answers still owed (`backlog(conn) > 0`), without a look
        at the others: after `datagrams_to_send` they are all still marked to send."""
        peers = self._peers
        return [c for c in self._dirty if (p := peers.get(c)) is not None and p.owed.answers]

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self, now: int, budget: Callable[[ConnId], int] | None = None
                          ) -> list[tuple[ConnId, bytes]]:
        """Frames to transmit, per connection. `budget(conn)` caps the bytes of bulk data
        (sync ranges) produced for a connection now: the driver's flow control."""
        self._now = now
        out: list[tuple[ConnId, bytes]] = []
        self.settling.expire(now - self._settle_ms(now))
        settled = self.settling.settled
        dirty, self._dirty = self._dirty, {}
        for conn in dirty:
            peer = self._peers.get(conn)
            if peer is None:
                continue
            limit = budget(conn) if budget is not None else 4 * TARGET_FRAME_BYTES
            produce(peer.session, peer.owed, self.replica, self.own, limit, now,
                    self.config.serve, settled)
            data = peer.session.take_output()
            self._dirty.pop(conn, None)
            if data:
                peer.session.note_sent(now)
                self._touched.add(conn)
                out.extend((conn, d) for d in data)
            if peer.session.state is State.CLOSED:
                self._drop(peer, now)
            elif peer.owed.answers:
                self._dirty[conn] = None  # the rest as the link drains, or the budget refills
        return out
