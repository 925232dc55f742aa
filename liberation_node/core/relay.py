"""Relayed signaling: offers and answers carried hop by hop through the mesh
(protocols/sync.md §7.2).

Two nodes that share a peer but no connection exchange the transport's offer
and answer in SIGNAL frames, then connect directly. A signal goes to its
destination if connected, else to the peers whose `node.links` record lists it,
else to every peer; `ttl` bounds the flood and (origin, nonce) pairs seen are
dropped. Nothing here is signed: the HELLO of the connection that results
authenticates both ends (§4.1).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable

from .events import Event, SignalReceived
from .frames import Signal
from .peer import Peer
from .records import NodeLinks
from .replica import Replica

MAX_REMEMBERED = 4096  # (origin, nonce) pairs


def signal_payload(payload: str) -> tuple[str, dict[str, str]] | None:
    """A relayed signal's kind ("offer" or "answer") and its fields as text, or None
    when it is neither: a SIGNAL is unsigned, so anything else is dropped quietly."""
    try:
        fields = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(fields, dict) or fields.get("type") not in ("offer", "answer"):
        return None
    return str(fields["type"]), {str(k): str(v) for k, v in fields.items()}


class Relay:
    def __init__(self, me: bytes, replica: Replica, *, ttl: int, max_per_s: int,
                 events: deque[Event], open_peers: Callable[[], Iterable[Peer]]) -> None:
        self.me = me
        self.replica = replica
        self.ttl = ttl
        self.max_per_s = max_per_s
        self._events = events
        self._open_peers = open_peers
        self._seen: dict[tuple[bytes, int], None] = {}  # bounded, oldest first

    def send(self, to: bytes, payload: str, nonce: int) -> bool:
        """Send an offer/answer towards `to`; False if there is no peer to send it to."""
        frame = Signal(to, self.me, nonce, self.ttl, payload)
        self._remember(frame)
        return self._route(frame, exclude=None)

    def received(self, peer: Peer, frame: Signal, now: int) -> None:
        second, count = peer.signal_window
        if now // 1000 != second:
            second, count = now // 1000, 0
        peer.signal_window = (second, count + 1)
        if count + 1 > self.max_per_s or not self._remember(frame):
            return  # over the budget, or seen already: drop quietly
        if frame.to == self.me:
            self._events.append(SignalReceived(peer.conn, frame.origin, frame.nonce,
                                               frame.payload))
        elif frame.ttl > 0:
            self._route(Signal(frame.to, frame.origin, frame.nonce, frame.ttl - 1,
                               frame.payload), exclude=peer)

    def _remember(self, frame: Signal) -> bool:
        key = (frame.origin, frame.nonce)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > MAX_REMEMBERED:
            del self._seen[next(iter(self._seen))]
        return True

    def _route(self, frame: Signal, exclude: Peer | None) -> bool:
        """To the destination if connected; else to peers whose node.links name it; else
        to every peer (the TTL bounds the flood)."""
        candidates = [p for p in self._open_peers() if p is not exclude]
        direct = [p for p in candidates if p.session.peer == frame.to]
        if not direct:
            direct = [p for p in candidates if self.links_to(p.session.peer, frame.to)]
        targets = direct or candidates
        for target in targets:
            target.session.send(frame)
        return bool(targets)

    def path(self, to: bytes) -> bool:
        """Is `to` a peer of one of our peers, by their node.links records? A relayed dial
        needs that (transport.md §7.7): flooding offers at a node nobody links to any
        more (a browser tab that left) would cost every relay and reach no one."""
        return any(self.links_to(p.session.peer, to) for p in self._open_peers())

    def links_to(self, node: bytes | None, to: bytes) -> bool:
        record = self.replica.records.get((node, "node.links")) if node else None
        return record is not None and isinstance(record.body, NodeLinks) and any(
            peer == to for peer, _ in record.body.links)
