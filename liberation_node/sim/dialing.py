"""Dials in the simulator: what node.py and dialing.py do with the transport, on the
virtual clock. A dial by URL takes a signaling round trip and fails when nothing
listens there, the peer port refuses (banned: 403, full: 503) or a partition cuts it
(after the connect timeout); a dial without a URL goes by relayed signaling, in real
SIGNAL frames through the mesh (protocols/sync.md §7.2; transport.md §3, §5). A dial
that gets through opens a connection at both ends a round trip later (ICE).

A mixin of `World` (world.py), which owns every attribute named below.
"""

from __future__ import annotations

import functools
import json
import random
from typing import TYPE_CHECKING

from ..core.relay import signal_payload

if TYPE_CHECKING:
    from ..core.events import SignalReceived
    from ..core.peering import Dial
    from ..core.referrals import Referral
    from .clock import Clock, EventQueue
    from .network import Network
    from .node import SimNode

CONNECT_TIMEOUT_MS = 10_000  # a dial that gets no answer fails (TransportConfig)


class WorldDialing:
    """Dials by URL and by relay, offers answered or refused, connections opened."""

    # Owned and set by World (world.py).
    clock: Clock
    queue: EventQueue
    network: Network
    nodes: list[SimNode]
    urls: dict[str, int]
    counts: dict[str, int]
    _index: dict[bytes, int]
    _dials: dict[int, tuple[SimNode, Dial, int]]
    _dial_rng: random.Random

    if TYPE_CHECKING:  # the rest of World, which these call
        def _flush(self, node: SimNode) -> None: ...

    def _dial(self, node: SimNode, dial: Dial) -> None:
        self.counts["dials"] += 1
        starts = node.starts
        node.connecting[("dial", dial.key)] = self.clock.now + CONNECT_TIMEOUT_MS
        if dial.url is None:
            self._dial_by_relay(node, dial)
            return
        target = self.urls.get(dial.url)
        rtt = self.network.signaling_delay()
        if target is None or not self.nodes[target].alive:
            # Nothing listens there: the connection is refused within a round trip.
            self.queue.push(self.clock.now + rtt, functools.partial(
                self._dial_failed, node, dial, starts))
        elif self.network.cut(node.index, target):
            self.queue.push(self.clock.now + CONNECT_TIMEOUT_MS, functools.partial(
                self._dial_failed, node, dial, starts))
        else:
            self.queue.push(self.clock.now + rtt, functools.partial(
                self._offered, node, dial, target, starts, rtt))

    def _offered(self, node: SimNode, dial: Dial, target: int, starts: int, rtt: int) -> None:
        """The offer reached `target`'s peer port: it answers if it has room (else 503)."""
        other = self.nodes[target]
        if node.starts != starts or not node.alive:
            return
        # The peer port refuses a banned address (403) and, when full, everyone (503).
        if other.connections is None or other.mesh is None \
                or self.network.cut(node.index, target) \
                or other.mesh.banned(f"sim:{node.index}", other.now(self.clock.now)):
            self._dial_failed(node, dial, starts)
            return
        if not other.connections.accepts(other.attempts(self.clock.now),
                                         other.now(self.clock.now)):
            # 503, naming a few of its peers (transport.md §3.3)
            self._dial_failed(node, dial, starts, full=True, named=other.connections.referrals(
                node.identity.public_key, other.now(self.clock.now)))
            return
        other.connecting[("answer", node.index)] = self.clock.now + CONNECT_TIMEOUT_MS
        self.queue.push(self.clock.now + self.network.signaling_delay(), functools.partial(
            self._open, node, dial, target, starts, other.starts, rtt))

    def _dial_by_relay(self, node: SimNode, dial: Dial) -> None:
        """Relayed signaling: the offer goes out in a SIGNAL frame (sync.md §7.2)."""
        assert node.mesh is not None and dial.node_id is not None
        self.counts["relayed_dials"] += 1
        nonce = self._dial_rng.getrandbits(53)
        offer = json.dumps({"type": "offer", "sim": nonce})
        if not node.mesh.send_signal(dial.node_id, offer, nonce):
            self._dial_failed(node, dial, node.starts)
            return
        self._dials[nonce] = (node, dial, node.starts)
        self.queue.push(self.clock.now + CONNECT_TIMEOUT_MS,
                        functools.partial(self._relay_timeout, nonce))
        self._flush(node)

    def _on_signal(self, node: SimNode, event: SignalReceived) -> None:
        """An offer or answer relayed to `node`: what node.py's `_on_signal` does."""
        assert node.mesh is not None and node.connections is not None
        signal = signal_payload(event.payload)
        if signal is None:
            return
        if signal[0] == "offer":
            origin = self._index.get(event.origin)
            if origin is not None and node.connections.accepts(
                    node.attempts(self.clock.now), node.now(self.clock.now)):
                node.connecting[("answer", origin)] = self.clock.now + CONNECT_TIMEOUT_MS
                node.mesh.send_signal(event.origin, json.dumps({"type": "answer"}), event.nonce)
        else:
            pending = self._dials.pop(event.nonce, None)
            if pending is None:
                return
            dialer, dial, starts = pending
            target = self._index.get(event.origin)
            if target is None or dialer is not node:
                return
            other = self.nodes[target]
            self.queue.push(self.clock.now + self.network.signaling_delay(), functools.partial(
                self._open, node, dial, target, starts, other.starts, None))

    def _relay_timeout(self, nonce: int) -> None:
        pending = self._dials.pop(nonce, None)
        if pending is not None:
            self._dial_failed(*pending)

    def _dial_failed(self, node: SimNode, dial: Dial, starts: int, full: bool = False,
                     named: list[Referral] | None = None) -> None:
        if node.starts != starts or node.connections is None:
            return
        node.connecting.pop(("dial", dial.key), None)
        self.counts["dial_failures"] += 1
        node.connections.dial_failed(dial.key, node.now(self.clock.now), full, named or ())
        self._flush(node)

    def _open(self, node: SimNode, dial: Dial, target: int, starts: int, target_starts: int,
              rtt: int | None) -> None:
        """ICE done: the data channel opens at both ends (or the dial failed meanwhile)."""
        other = self.nodes[target]
        if other.starts == target_starts:
            other.connecting.pop(("answer", node.index), None)
        if node.starts != starts or node.mesh is None or node.connections is None:
            return
        if other.starts != target_starts or other.mesh is None \
                or self.network.cut(node.index, target):
            self._dial_failed(node, dial, starts)
            return
        node.connecting.pop(("dial", dial.key), None)
        self.counts["connects"] += 1
        ends = self.network.open(node.index, target)
        now = self.clock.now
        # Before any frame: the session may open at once (node.py's _on_link_open).
        node.connections.link_opened(dial, ends[0].conn, node.now(now))
        for end, initiator in ((ends[0], True), (ends[1], False)):
            peer = self.nodes[end.node]
            assert peer.mesh is not None
            far = target if initiator else node.index  # its address: where it dials from
            # The dialer timed its offer's exchange (as the daemon's transport does,
            # webrtc.py `Link.signal_rtt_ms`); the answerer, as a daemon's, knows no
            # round trip until the PING its session sends as it opens (sync.md §4.4).
            peer.mesh.connection_made(end.conn, ends[2], peer.now(now), initiator=initiator,
                                      address=f"sim:{far}",
                                      rtt_hint=rtt if initiator else None)
            self.queue.push(now, functools.partial(self._flush, peer))
