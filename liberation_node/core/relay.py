"""Relayed signaling: offers and answers carried hop by hop through the mesh
(protocols/sync.md §7.2, §7.3).

Two nodes that share a peer but no connection exchange the transport's offer
and answer in SIGNAL frames, then connect directly. A signal of our own goes to
its destination if connected, else to the peers whose `node.links` record lists
it, else to every peer; `ttl` bounds the flood and (origin, nonce) pairs seen are
dropped. Nothing here is signed: the HELLO of the connection that results
authenticates both ends (§4.1).

Relaying another node's signal costs this node and its peers, for a sender that
spent one frame, so a relay forwards (§7.3) only towards a known route (the
destination is a peer, or a peer's `node.links` names it: never to everyone), only
payloads an offer or answer needs (`MAX_RELAYED_PAYLOAD`), with at most
`signal_ttl - 1` hops left, and at most `per_origin_per_s` signals per claimed
origin and `forward_per_s` in all.
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
# An offer's SDP is at most 16 KiB (transport.md §3.4); as JSON with its line ends
# escaped it stays well under this. Larger payloads are for us only, never relayed.
MAX_RELAYED_PAYLOAD = 20_480
ORIGINS_TRACKED = 1_024


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
                 events: deque[Event], open_peers: Callable[[], Iterable[Peer]],
                 per_origin_per_s: float = 1.0, forward_per_s: float = 50.0) -> None:
        self.me = me
        self.replica = replica
        self.ttl = ttl
        self.max_per_s = max_per_s
        self.per_origin_per_s = per_origin_per_s
        self.forward_per_s = forward_per_s
        self._events = events
        self._open_peers = open_peers
        self._seen: dict[tuple[bytes, int], None] = {}  # bounded, oldest first
        self._origins: dict[bytes, tuple[float, int]] = {}  # origin -> (tokens, at)
        self._forward: tuple[float, int] | None = None  # (tokens, at), all origins
        self.dropped: dict[str, int] = {}  # signals not relayed, by why (cumulative)

    def send(self, to: bytes, payload: str, nonce: int) -> bool:
        """Send an offer/answer towards `to`; False if there is no peer to send it to."""
        frame = Signal(to, self.me, nonce, self.ttl, payload)
        self._remember(frame)
        return self._route(frame, exclude=None)

    def received(self, peer: Peer, frame: Signal, now: int) -> bool:
        """A SIGNAL from `peer`; False when the peer sends them faster than its budget
        (the driver's scoring hears of it)."""
        second, count = peer.signal_window
        if now // 1000 != second:
            second, count = now // 1000, 0
        peer.signal_window = (second, count + 1)
        if count + 1 > self.max_per_s:
            self._drop("rate")
            return False
        if not self._remember(frame):
            return True  # seen already (it came by two paths): drop quietly
        if frame.to == self.me:
            self._events.append(SignalReceived(peer.conn, frame.origin, frame.nonce,
                                               frame.payload))
        elif frame.ttl > 0:
            self._forward_frame(peer, frame, now)
        return True

    def _forward_frame(self, peer: Peer, frame: Signal, now: int) -> None:
        """Relay another node's signal, within the limits of §7.3."""
        if len(frame.payload) > MAX_RELAYED_PAYLOAD:
            self._drop("payload")
            return
        targets = self._known_route(frame.to, exclude=peer)
        if not targets:
            self._drop("no_route")  # never flooded: whoever sent it knows no route either
            return
        if not self._take_origin(frame.origin, now) or not self._take_forward(now):
            self._drop("origin_rate")
            return
        relayed = Signal(frame.to, frame.origin, frame.nonce,
                         min(frame.ttl, self.ttl) - 1, frame.payload)
        for target in targets:
            target.session.send(relayed)

    def _drop(self, why: str) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1

    def _take_origin(self, origin: bytes, now: int) -> bool:
        burst = max(1.0, 2 * self.per_origin_per_s)
        tokens, at = self._origins.pop(origin, (burst, now))
        tokens = min(burst, tokens + max(0, now - at) * self.per_origin_per_s / 1000)
        ok = tokens >= 1
        self._origins[origin] = (tokens - 1 if ok else tokens, now)
        while len(self._origins) > ORIGINS_TRACKED:
            del self._origins[next(iter(self._origins))]
        return ok

    def _take_forward(self, now: int) -> bool:
        burst = max(1.0, self.forward_per_s)
        tokens, at = self._forward or (burst, now)
        tokens = min(burst, tokens + max(0, now - at) * self.forward_per_s / 1000)
        ok = tokens >= 1
        self._forward = (tokens - 1 if ok else tokens, now)
        return ok

    def _known_route(self, to: bytes, exclude: Peer | None) -> list[Peer]:
        candidates = [p for p in self._open_peers() if p is not exclude]
        direct = [p for p in candidates if p.session.peer == to]
        return direct or [p for p in candidates if self.links_to(p.session.peer, to)]

    def _remember(self, frame: Signal) -> bool:
        key = (frame.origin, frame.nonce)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > MAX_REMEMBERED:
            del self._seen[next(iter(self._seen))]
        return True

    def _route(self, frame: Signal, exclude: Peer | None) -> bool:
        """Our own signal: to the destination if connected; else to peers whose
        node.links name it; else to every peer (the TTL bounds the flood, and relays
        forward it only towards a route they know)."""
        targets = self._known_route(frame.to, exclude) or [
            p for p in self._open_peers() if p is not exclude]
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
