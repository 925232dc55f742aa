"""How a node dials and answers: offers sent to a peer port or relayed through the mesh,
and the peer port's own offer handling (protocols/transport.md §3, §7; sync.md §7.2).

A mixin of `Node` (node.py), which owns every attribute named below: the connection
manager (core/connections.py) decides whom to dial; this carries it out with the
transport, and reports each dial's end back to it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import TYPE_CHECKING, Any

from . import clock
from .api.peer import SignalError as OfferFailed
from .api.peer import SignalRefused, send_offer
from .api.ratelimit import client_key
from .core.identity import id_to_text, short_id
from .core.peering import Dial, Misdirected
from .core.referrals import Referral
from .core.relay import signal_payload
from .transport import TransportError

if TYPE_CHECKING:
    from .api._http import Refusals
    from .config import NodeConfig
    from .core.connections import Connections
    from .core.events import SignalReceived
    from .core.identity import Identity
    from .core.mesh import Mesh
    from .core.peering import Peering
    from .transport import WebRtcTransport

log = logging.getLogger("liberation_node")

MAX_OFFERS_PER_ADDRESS = 2  # answered connections being set up at once per address
# A signaling connection not established within this long is tried again (transport.md
# §3.7): after a partition heals, dials under way get through within about this long.
SIGNAL_CONNECT_EVERY_S = 1.0


class NodeDialing:
    """Dials the connection manager asks for; offers from the peer port and relays."""

    # Owned and set by Node (node.py).
    config: NodeConfig
    identity: Identity
    mesh: Mesh
    peering: Peering
    connections: Connections
    refusals: Refusals
    stopping: bool
    _transport: WebRtcTransport | None
    _signals: dict[int, asyncio.Future[dict[str, str]]]

    # Node's driver, which these call back into.
    def _service(self) -> None:
        raise NotImplementedError

    def _spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        raise NotImplementedError

    async def transport(self) -> WebRtcTransport:
        raise NotImplementedError

    def _dial(self, now: int) -> None:
        for dial in self.connections.step(now):
            self._spawn(self._dial_one(dial), name=f"dial {dial.key[:12]}")
        for url, scope, author in self.connections.refused():
            log.info("not dialing %r announced by %s: %s address out of scope",
                     url[:200], short_id(author), scope)

    async def _dial_one(self, dial: Dial) -> None:
        network, me = self.config.network, self.identity.public_key
        full = False  # the peer answered 503: alive, no room (transport.md §7.3)
        named: tuple[Referral, ...] = ()  # the peers it named instead (§3.3)
        try:
            if dial.url is not None:
                # An announced URL's host must resolve into scope too (§7.7).
                scopes = self.peering.config.scopes if dial.announced else None

                async def exchange(offer: dict[str, str]) -> dict[str, str]:
                    nonlocal full, named
                    assert dial.url is not None
                    try:
                        return await send_offer(
                            dial.url, network, me, offer, scopes=scopes,
                            timeout=self.config.transport.connect_timeout_s,
                            connect_every=SIGNAL_CONNECT_EVERY_S)
                    except OfferFailed as exc:  # its message is for the operator as it is
                        full, named = exc.status == 503, exc.peers
                        raise TransportError(str(exc)) from None
            else:
                assert dial.node_id is not None
                target = dial.node_id

                async def exchange(offer: dict[str, str]) -> dict[str, str]:
                    return await self._relay_exchange(target, offer)
            log.info("dialing %s %s", short_id(dial.node_id) if dial.node_id else "",
                     dial.url or "by relay")
            await (await self.transport()).dial(exchange, tag=dial)
        except Exception as exc:  # any failure of one dial is that dial's failure
            said, where = str(exc), dial.url or f"{dial.key[:12]} by relay"
            if where not in said:
                said = f"{where}: {said}"
            log.info("dial failed: %s", said)
            self.connections.dial_failed(dial.key, clock.now_ms(), full, named)
            if not self.stopping:
                self._service()

    async def _relay_exchange(self, target: bytes, offer: dict[str, str]) -> dict[str, str]:
        nonce = int.from_bytes(os.urandom(6), "big")
        future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._signals[nonce] = future
        try:
            if not self.mesh.send_signal(target, json.dumps(offer), nonce):
                raise TransportError("no peer to relay through")
            self._service()
            answer: dict[str, str] = await asyncio.wait_for(
                future, self.config.transport.connect_timeout_s)
            return answer
        finally:
            self._signals.pop(nonce, None)

    def _on_signal(self, event: SignalReceived) -> None:
        signal = signal_payload(event.payload)
        if signal is None:
            return
        kind, fields = signal
        if kind == "answer":
            future = self._signals.get(event.nonce)
            if future is not None and not future.done():
                future.set_result(fields)
        elif not self.stopping:
            self._spawn(self._answer_relayed(event, fields))

    def _full(self) -> bool:
        """No room for another peer: open sessions plus handshakes under way (A.4)."""
        connecting = self._transport.connecting if self._transport is not None else 0
        return not self.connections.accepts(connecting, clock.now_ms())

    async def _answer_relayed(self, event: SignalReceived, offer: dict[str, str]) -> None:
        transport = await self.transport()
        origin = f"relay {event.conn}"  # the session it came through: origin is not proven
        if self._full() or transport.connecting_from(origin) >= MAX_OFFERS_PER_ADDRESS:
            return
        try:
            answer = await transport.answer(offer, origin)
        except Exception as exc:
            self.refusals.relayed_offer(short_id(event.origin), str(exc))
            return
        self.mesh.send_signal(event.origin, json.dumps(answer), event.nonce)
        self._service()

    def _misdirected(self, event: Misdirected) -> None:
        """A dial reached another node than it expected (transport.md §7.4): kept as an
        ordinary peer; said loudly once, since the operator's list is out of date."""
        where = event.url or "by relay"
        if event.first:
            log.warning("%s was expected to be node %s but is node %s: keeping it as an "
                        "ordinary peer; %s is redialed there with backoff, and not while "
                        "%s is connected (update the bootstrap entry?)", where,
                        id_to_text(event.expected), id_to_text(event.actual),
                        short_id(event.expected), short_id(event.actual))
        else:
            log.info("%s is still node %s, not %s", where, short_id(event.actual),
                     short_id(event.expected))

    # -- the peer port (api/peer.py PeerPortHandler) ----------------------------------------

    async def signal(self, network: str, from_id: bytes, offer: dict[str, str],
                     remote: str) -> dict[str, str]:
        if network != self.config.network:
            raise SignalRefused(403, f"this node is on network {self.config.network!r}")
        if from_id == self.identity.public_key:
            raise SignalRefused(403, "that is this node")
        origin = client_key(remote)
        if self.mesh.banned(origin, clock.now_ms()):
            raise SignalRefused(403, "this address is banned for a while (protocols/sync.md "
                                "§4.7)")
        if self.stopping:
            raise SignalRefused(503, "the node is stopping")
        if self._full():
            raise SignalRefused(503, "no room for more peers", self.connections.referrals(
                from_id, clock.now_ms()))
        transport = await self.transport()
        if transport.connecting_from(origin) >= MAX_OFFERS_PER_ADDRESS:
            # One address cannot hold the slots of connections being set up (their ICE
            # may never complete): transport.md §3.11.
            raise SignalRefused(503, f"{MAX_OFFERS_PER_ADDRESS} connections from this address "
                                "are being set up already")
        try:
            return await transport.answer(offer, origin)
        except TransportError as exc:
            raise SignalRefused(400, str(exc)) from exc
