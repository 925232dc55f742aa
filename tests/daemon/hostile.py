"""A hostile peer over real WebRTC, built from the project's own parts: the transport
(`WebRtcTransport`, `send_offer`) and the session (`Session`: HELLO, its binding
signature, PING/PONG, the inbound budget). It dials a daemon like any peer, then sends
whatever frames or bytes it is told, and keeps what comes back. Also an honest observer:
by default it answers PINGs, so the daemon keeps it.

Used by tests/daemon/test_hostile_peers.py and by scripts/attack.py (the measurements
of issue 9, on this code and on older code alike: it speaks only the wire protocol).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiohttp

from liberation_node.api.peer import send_offer
from liberation_node.core import frames
from liberation_node.core.errors import Rejection
from liberation_node.core.frames import Close, Frame, Ping, Pong
from liberation_node.core.identity import Identity
from liberation_node.core.session import HELLO_DOMAIN
from liberation_node.transport import Link, TransportConfig, WebRtcTransport

LOOPBACK = TransportConfig(ice_addresses=("127.0.0.1",), connect_timeout_s=10.0)
_SOURCES = itertools.cycle(f"127.0.{i}.{j}" for i in range(2, 255) for j in range(2, 255))


def now_ms() -> int:
    return int(time.time() * 1000)


def ops(wires: Iterable[bytes], eager: bool = False) -> frames.Ops:
    """An OPS frame of op wires, their hop counts unknown (MAX_HOPS)."""
    return frames.Ops(eager, tuple((wire, frames.MAX_HOPS) for wire in wires))


def records(wires: Iterable[bytes], eager: bool = False) -> frames.Records:
    """A RECORDS frame of record wires, their hop counts unknown (MAX_HOPS)."""
    return frames.Records(eager, tuple((wire, frames.MAX_HOPS) for wire in wires))


@dataclass
class Hostile:
    """One connection to a daemon. `answer_pings=False` makes a peer that never answers
    PING (its round-trip time stays unknown)."""

    identity: Identity = field(default_factory=lambda: Identity.from_seed(os.urandom(32)))
    network: str = "e2e"
    answer_pings: bool = True
    # The address its offers come from (the peer port counts requests per address): a
    # different one for each hostile peer, unless told.
    source: str = field(default_factory=lambda: next(_SOURCES))
    # How a PONG is written (nonce, clock): another tree's victim may want another form.
    pong: Callable[[int, int], bytes] = field(default=lambda nonce, clock: frames.encode(
        Pong(nonce, clock)))
    link: Link | None = None
    got: list[Frame] = field(default_factory=list)
    bytes_in: int = 0
    closed_reason: str | None = None  # the peer's CLOSE reason, or "transport" if it vanished
    _transport: WebRtcTransport | None = None
    _open: asyncio.Event = field(default_factory=asyncio.Event)
    _gone: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, url: str) -> Hostile:
        """Dial the daemon at its signaling URL and exchange HELLOs."""
        self._transport = WebRtcTransport(LOOPBACK, self._on_open, self._on_message,
                                          self._on_close)

        async def exchange(offer: dict[str, str]) -> dict[str, str]:
            connector = aiohttp.TCPConnector(local_addr=(self.source, 0))
            async with aiohttp.ClientSession(connector=connector) as session:
                return await send_offer(url, self.network, self.identity.public_key, offer,
                                        timeout=10.0, session=session)

        await self._transport.dial(exchange)
        await asyncio.wait_for(self.wait_for(lambda: self.hello_in or self.gone), 10)
        return self

    @property
    def hello_in(self) -> bool:
        return any(isinstance(f, frames.Hello) for f in self.got)

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    def _on_open(self, link: Link) -> None:
        self.link = link
        hello = frames.Hello(1, self.network, self.identity.public_key,
                             self.identity.sign(HELLO_DOMAIN + link.binding), "hostile/1")
        link.send(frames.encode(hello))
        self._open.set()

    def _on_message(self, link: Link, data: bytes) -> None:
        self.bytes_in += len(data)
        try:
            frame = frames.decode(data)
        except Rejection:
            return
        self.got.append(frame)
        if isinstance(frame, Close):
            self.closed_reason = frame.reason
        elif isinstance(frame, Ping) and self.answer_pings and not link.closed:
            link.send(self.pong(frame.nonce, now_ms()))
        self._changed.set()

    def _on_close(self, link: Link) -> None:
        if self.closed_reason is None:
            self.closed_reason = "transport"
        self._gone.set()
        self._changed.set()

    async def wait_for(self, condition: object, timeout: float = 10.0) -> None:
        """Until `condition()` holds (checked as frames arrive)."""
        assert callable(condition)
        deadline = time.monotonic() + timeout
        while not condition():
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("condition not met")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))

    def send(self, frame: Frame | bytes) -> bool:
        """Send one frame (or raw bytes); False once the connection is gone."""
        if self.link is None or self.link.closed:
            return False
        self.link.send(frame if isinstance(frame, bytes) else frames.encode(frame))
        return True

    async def send_all(self, items: Iterable[Frame | bytes], pause_s: float = 0.0) -> int:
        """Send frames in order, yielding to the loop between them; how many went out."""
        sent = 0
        for item in items:
            if not self.send(item):
                break
            sent += 1
            await asyncio.sleep(pause_s)
            if self.link is not None and self.link.congested:
                try:
                    await self.link.wait_writable()
                except Exception:
                    break
        return sent

    def frames_of(self, kind: type) -> list[Frame]:
        return [f for f in self.got if isinstance(f, kind)]

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()


async def connect_many(url: str, count: int, **kw: object) -> list[Hostile]:
    return [await Hostile(**kw).connect(url) for _ in range(count)]  # type: ignore[arg-type]


async def sink_offers(count: int, sink_port: int) -> list[dict[str, str]]:
    """Genuine offers (made by aiortc, dials abandoned) whose candidates all point at
    `sink_port` on loopback, where nothing answers."""
    transport = WebRtcTransport(LOOPBACK, lambda link: None, lambda link, data: None,
                                lambda link: None)
    offers = []
    for _ in range(count):
        captured: dict[str, str] = {}

        async def capture(offer: dict[str, str]) -> dict[str, str]:
            captured.update(offer)  # noqa: B023
            raise LookupError("not dialing")

        with contextlib.suppress(Exception):
            await transport.dial(capture)
        lines = [line if not line.startswith("a=candidate:") else
                 " ".join([*line.split(" ")[:5], str(sink_port), *line.split(" ")[6:]])
                 for line in captured["sdp"].split("\r\n")]
        offers.append({"type": "offer", "sdp": "\r\n".join(lines)})
    await transport.close()
    return offers
