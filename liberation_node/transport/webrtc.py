"""The WebRTC transport: one reliable, ordered data channel per peer (DESIGN.md §4).

The daemon drives the sans-IO mesh (core/mesh.py) with it:

    on_open(link)          -> mesh.connection_made(link.id, link.binding, now)
    on_message(link, data) -> mesh.data_received(link.id, data, now)
    on_close(link)         -> mesh.connection_lost(link.id, now)
    link.send(data); if link.congested: await link.wait_writable()

Signaling is the caller's: `dial` hands the offer to an `exchange` function
(HTTP `POST /v1/signal`, or relayed through the mesh) and gets the answer back;
the other end passes that offer to `answer`. ICE is not trickled: each SDP
carries every candidate, so one round trip suffices.

Lifecycle. Each peer connection is a `_Connection`. It opens at most one
`Link` (the data channel labelled LABEL with sub-protocol PROTOCOL, created by
the dialer) and closes as a whole, whatever ends it: our `Link.close()`, the
peer closing its channel or connection, ICE or DTLS failure, a protocol
violation (a text message, an oversized message, a second channel), the
connect timeout, or `WebRtcTransport.close()`. `_Connection.shut` is the one
place that happens; it calls `on_close` exactly once for an opened link, and
closes the RTCPeerConnection in a task the transport tracks, so `close()`
leaves nothing running. A link is reported through `on_open` (both for dialed
and answered connections, before any of its messages), and `dial` also returns
it.

aiortc emits channel events synchronously from its receive path, so a Link is
built and its message handler registered inside the "open" (or "datachannel")
event itself: the peer may send right behind the channel-open acknowledgement.
"""

from __future__ import annotations

# First: aiortc loads without PyAV (see there).
from . import _nomedia  # noqa: F401

# isort: split
import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidStateError

from ..core.scope import LOOPBACK, address_scope
from . import signal
from ._ice import restrict_host_addresses, selected_remote_address
from .config import TransportConfig
from .errors import ConnectTimeout, LinkClosed, SignalError, TransportError

__all__ = ["LABEL", "PROTOCOL", "Exchange", "Link", "TransportError", "WebRtcTransport"]

LABEL = "liberation-node/1"
PROTOCOL = "liberation-sync/1"

log = logging.getLogger(__name__)

Exchange = Callable[[dict[str, str]], Awaitable[dict[str, str]]]
T = TypeVar("T")


class Link:
    """One open data channel to one peer. Made by the transport, never directly."""

    def __init__(self, conn: _Connection, channel: RTCDataChannel, link_id: int,
                 binding: bytes) -> None:
        config = conn.transport.config
        self.id = link_id
        self.initiator = conn.initiator
        self.binding = binding  # both DTLS fingerprints of this connection (signal.py)
        self.tag = conn.tag  # what the dialer passed to `dial` (None when answered)
        # How long the dialer's offer exchange took, sent to answered (ms): a round trip
        # to the peer, with its answering, known before the session measures one (sync.md
        # §4.4). None when answered: the answerer sees no round trip while connecting.
        self.signal_rtt_ms = conn.signal_rtt_ms
        self.remote_address = selected_remote_address(conn.pc)  # for logs
        self.closed = False
        self.close_reason = ""
        self._conn = conn
        self._channel = channel
        self._max_message = config.max_message_bytes
        self._high_water = config.high_water
        self._low_water = config.low_water
        self._waiters: list[asyncio.Future[None]] = []
        channel.bufferedAmountLowThreshold = config.low_water
        channel.on("message", self._received)
        channel.on("bufferedamountlow", self._wake)

    def __repr__(self) -> str:
        side = "out" if self.initiator else "in"
        state = "closed" if self.closed else "open"
        return f"<Link {self.id} {side} {self.remote_address} {state}>"

    @property
    def buffered_amount(self) -> int:
        """Bytes handed to `send` and not yet passed to SCTP."""
        return int(self._channel.bufferedAmount)

    @property
    def congested(self) -> bool:
        """More than `high_water` bytes buffered: time to `await wait_writable()`."""
        return self.buffered_amount > self._high_water

    def send(self, data: bytes) -> None:
        """Queue one message; never blocks. Raises ValueError if too large, LinkClosed."""
        if not isinstance(data, bytes):
            raise TypeError(f"send takes bytes, not {type(data).__name__}")
        if len(data) > self._max_message:
            raise ValueError(f"message of {len(data)} bytes, at most {self._max_message}")
        if self.closed:
            raise LinkClosed(f"link {self.id} closed: {self.close_reason}")
        try:
            self._channel.send(data)
        except InvalidStateError:
            raise LinkClosed(f"link {self.id}: data channel is {self._channel.readyState}") \
                from None

    async def wait_writable(self) -> None:
        """Return once at most `low_water` bytes are buffered; raise LinkClosed if it closes."""
        while True:
            if self.closed:
                raise LinkClosed(f"link {self.id} closed: {self.close_reason}")
            if self.buffered_amount <= self._low_water:
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # woken by "bufferedamountlow" or by the close
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def close(self) -> None:
        """Close the link and its peer connection; `on_close` is called (once)."""
        await asyncio.shield(self._conn.shut("closed by us"))

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _received(self, data: bytes | str) -> None:
        if self.closed:
            return
        if not isinstance(data, bytes):
            self._conn.shut("the peer sent a text message (the protocol is binary)")
        elif len(data) > self._max_message:
            self._conn.shut(f"the peer sent a message of {len(data)} bytes")
        elif not self._conn.transport._call("on_message", self, data):
            self._conn.shut("on_message failed")

    def _lost(self, reason: str) -> None:
        self.closed = True
        self.close_reason = reason
        self._wake()


class _Connection:
    """One RTCPeerConnection, from creation until it is closed."""

    def __init__(self, transport: WebRtcTransport, initiator: bool, tag: object = None,
                 origin: str | None = None) -> None:
        self.transport = transport
        self.initiator = initiator
        self.tag = tag
        self.origin = origin  # who sent the offer we answer (an address), for fairness
        self.signal_rtt_ms: int | None = None  # dialed: how long the offer exchange took
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=transport._ice_servers))
        self.local: signal.Description | None = None
        self.remote: signal.Description | None = None
        self.link: Link | None = None
        self.opened: asyncio.Future[Link | None] = asyncio.get_running_loop().create_future()
        self.closing: asyncio.Task[None] | None = None
        self.reason = ""
        self.ended = asyncio.Event()  # the peer connection is closed
        self._expiry: asyncio.TimerHandle | None = None
        self._ice_check: asyncio.TimerHandle | None = None
        self.pc.on("connectionstatechange", self._state_changed)
        self.pc.on("datachannel", self._incoming)

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        if state in ("failed", "closed"):
            self.shut(f"peer connection {state}")

    def _incoming(self, channel: RTCDataChannel) -> None:
        """A channel the peer opened: the one we expect on an answered connection."""
        if self.initiator or self.link is not None:
            self.shut("the peer opened a second data channel")
        elif (channel.label, channel.protocol) != (LABEL, PROTOCOL):
            self.shut(f"unexpected data channel {channel.label[:40]!r}/"
                      f"{channel.protocol[:40]!r}")
        elif not channel.ordered or channel.maxRetransmits is not None \
                or channel.maxPacketLifeTime is not None:
            self.shut("the data channel is not reliable and ordered")
        else:
            channel.on("close", self.channel_closed)
            self.open(channel)

    def channel_closed(self) -> None:
        self.shut("the data channel closed" if self.link is not None
                  else "the data channel closed before it opened")

    def open(self, channel: RTCDataChannel) -> None:
        """The data channel is open: make the Link and report it, before any message."""
        if self.closing is not None or self.link is not None:
            return
        if self.local is None or self.remote is None:  # cannot happen: both precede ICE
            self.shut("data channel open before the signaling finished")
            return
        transport = self.transport
        link = Link(self, channel, next(transport._ids),
                    signal.binding(self.local.fingerprint, self.remote.fingerprint))
        self.link = link
        if self._expiry is not None:
            self._expiry.cancel()
        log.debug("link %d open (%s, %s)", link.id,
                  "dialed" if self.initiator else "answered", link.remote_address)
        if not self.opened.done():
            self.opened.set_result(link)
        if not transport._call("on_open", link):
            self.shut("on_open failed")

    def watch_ice(self) -> None:
        """Both descriptions are set: ICE runs now. Give up early if it finds no working
        pair within `ice_timeout_s` (transport.md §2.6), instead of holding a slot until
        the connect timeout: an offer whose candidates point at addresses that never
        answer costs this node little."""
        config = self.transport.config
        timeout = min(config.ice_timeout_s, config.connect_timeout_s)
        self._ice_check = asyncio.get_running_loop().call_later(timeout, self._ice_due, timeout)

    def _ice_due(self, timeout: float) -> None:
        self._ice_check = None
        if self.link is None and self.pc.iceConnectionState not in ("completed", "closed"):
            self.shut(f"ICE found no working path within {timeout:g} s")

    def expire_at(self, deadline: float) -> None:
        """Close unless the channel has opened by `deadline` (loop time)."""
        if self.link is None and self.closing is None:
            self._expiry = asyncio.get_running_loop().call_at(
                deadline, self.shut, "no data channel within the connect timeout")

    def shut(self, reason: str) -> asyncio.Task[None]:
        """Close this connection, once; returns the task closing the peer connection."""
        if self.closing is not None:
            return self.closing
        self.reason = reason
        if self._expiry is not None:
            self._expiry.cancel()
        if self._ice_check is not None:
            self._ice_check.cancel()
        if not self.opened.done():
            self.opened.set_result(None)
        self.closing = self.transport._spawn(self._close())
        link = self.link
        if link is not None:
            link._lost(reason)
            log.debug("link %d closed: %s", link.id, reason)
            self.transport._call("on_close", link)
        return self.closing

    async def _close(self) -> None:
        try:
            await self.pc.close()
        except Exception:  # a failure to close must not escape into whoever closed us
            log.warning("closing a peer connection failed", exc_info=True)
        finally:
            self.transport._conns.discard(self)
            self.ended.set()


class WebRtcTransport:
    """Dials and answers WebRTC peer connections and reports their links."""

    def __init__(self, config: TransportConfig, on_open: Callable[[Link], None],
                 on_message: Callable[[Link, bytes], None],
                 on_close: Callable[[Link], None]) -> None:
        self.config = config
        self._callbacks: dict[str, Callable[..., None]] = {
            "on_open": on_open, "on_message": on_message, "on_close": on_close}
        # Always an explicit list: with None, aiortc would use a public STUN server.
        self._ice_servers = [RTCIceServer(urls=s.url, username=s.username, credential=s.password)
                             for s in config.servers()]
        # A remote loopback candidate can only be this host: used only if ICE may use
        # loopback here too, else an offer could aim STUN checks at local UDP services
        # (transport.md §6.3).
        own = {address_scope(a) for a in config.ice_addresses}
        self._ignore = frozenset() if LOOPBACK in own else frozenset({LOOPBACK})
        self._ids = itertools.count(1)
        self._conns: set[_Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._attempts: set[asyncio.Task[Any]] = set()
        self._closed = False

    @property
    def links(self) -> list[Link]:
        """The open links."""
        return [c.link for c in self._conns if c.link is not None and not c.link.closed]

    @property
    def connecting(self) -> int:
        """Peer connections dialed or answered whose channel has not opened yet."""
        return sum(c.link is None and c.closing is None for c in self._conns)

    def connecting_from(self, origin: str) -> int:
        """Answered connections from `origin` (see `answer`) not open yet."""
        return sum(c.link is None and c.closing is None and c.origin == origin
                   for c in self._conns)

    async def dial(self, exchange: Exchange, tag: object = None) -> Link:
        """Connect to a peer: send our offer through `exchange`, which returns its answer.

        Returns the open Link (also reported to on_open, with `link.tag` = `tag`, so
        the caller knows which dial it is before any message). Raises ConnectTimeout after
        `connect_timeout_s`, SignalError for a bad answer, TransportError otherwise;
        the peer connection is closed on every failure.
        """
        conn = self._connection(initiator=True, tag=tag)
        return await self._attempt(conn, lambda: self._dial(conn, exchange), "dial")

    async def answer(self, offer: dict[str, str], origin: str | None = None) -> dict[str, str]:
        """Answer a peer's offer; the Link is reported to on_open once its channel opens.

        Raises SignalError for a bad offer (before anything is created). If the
        channel does not open within `connect_timeout_s`, or ICE finds no path within
        `ice_timeout_s`, the connection is closed. `origin` names who sent the offer
        (`connecting_from` counts its attempts).
        """
        remote = signal.parse(offer, "offer", self._ignore)
        conn = self._connection(initiator=False, origin=origin)
        conn.remote = remote
        deadline = asyncio.get_running_loop().time() + self.config.connect_timeout_s
        answer = await self._attempt(conn, lambda: self._answer(conn), "answer", deadline)
        conn.expire_at(deadline)
        return answer

    async def close(self) -> None:
        """Close every connection (on_close for each open link) and wait for all of it."""
        self._closed = True
        for task in list(self._attempts):
            task.cancel()
        for conn in list(self._conns):
            conn.shut("transport closed")
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    # -- connection attempts -------------------------------------------------------------

    async def _dial(self, conn: _Connection, exchange: Exchange) -> Link:
        pc = conn.pc
        channel = pc.createDataChannel(LABEL, ordered=True, protocol=PROTOCOL)
        channel.on("open", lambda: conn.open(channel))
        channel.on("close", conn.channel_closed)
        restrict_host_addresses(pc, self.config.ice_addresses)
        await pc.setLocalDescription(await pc.createOffer())
        conn.local = self._check_local(pc)
        loop = asyncio.get_running_loop()
        sent = loop.time()
        try:
            answer = await exchange(conn.local.as_dict())
            conn.signal_rtt_ms = round((loop.time() - sent) * 1000)
        except TransportError:
            raise
        except Exception as exc:
            raise TransportError(f"dial: the offer exchange failed: {exc!r}") from exc
        conn.remote = signal.parse(answer, "answer", self._ignore)
        await self._set_remote(pc, conn.remote)
        conn.watch_ice()
        link = await conn.opened
        if link is None:
            raise TransportError(f"dial: {conn.reason}")
        return link

    async def _answer(self, conn: _Connection) -> dict[str, str]:
        pc = conn.pc
        assert conn.remote is not None
        await self._set_remote(pc, conn.remote)
        restrict_host_addresses(pc, self.config.ice_addresses)
        await pc.setLocalDescription(await pc.createAnswer())
        conn.local = self._check_local(pc)
        conn.watch_ice()
        return conn.local.as_dict()

    async def _attempt(self, conn: _Connection, work: Callable[[], Coroutine[Any, Any, T]],
                       what: str, deadline: float | None = None) -> T:
        """Run `work()` as a task we own (so close() can stop it), bounded by the timeout.

        Whatever ends it other than success (an error, the timeout, our caller
        being cancelled, the transport closing) closes the peer connection, and
        the attempt returns only once it is closed.
        """
        async def guarded() -> T:
            try:
                return await work()
            except BaseException:
                await asyncio.shield(conn.shut(f"{what} failed"))
                raise

        task = self._spawn(guarded())
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self.config.connect_timeout_s
        try:
            done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
        except asyncio.CancelledError:
            task.cancel()
            conn.shut(f"{what} cancelled")  # in case the task was cancelled before it ran
            raise
        if not done:
            task.cancel()
            await asyncio.wait({task})
            raise ConnectTimeout(f"{what}: no open data channel within "
                                 f"{self.config.connect_timeout_s} s")
        if task.cancelled():
            raise TransportError(f"{what}: the transport closed")
        return task.result()

    def _connection(self, initiator: bool, tag: object = None,
                    origin: str | None = None) -> _Connection:
        if self._closed:
            raise TransportError("the transport is closed")
        conn = _Connection(self, initiator, tag, origin)
        self._conns.add(conn)
        return conn

    def _check_local(self, pc: RTCPeerConnection) -> signal.Description:
        """Our own SDP, checked like a remote one, and only on the allowed addresses."""
        description = pc.localDescription
        try:
            local = signal.check_sdp(description.type, description.sdp)
        except SignalError as exc:
            raise TransportError(f"our own {description.type} is unusable ({exc}); "
                                 f"ice_addresses={self.config.ice_addresses}") from None
        allowed = self.config.ice_addresses
        stray = [a for t, a, _ in local.candidates
                 if t == "host" and allowed and a not in allowed]
        if stray:
            raise TransportError(f"ICE gathered host candidates {stray} outside "
                                 f"ice_addresses {allowed}")
        return local

    @staticmethod
    async def _set_remote(pc: RTCPeerConnection, remote: signal.Description) -> None:
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=remote.sdp, type=remote.type))
        except Exception as exc:
            raise SignalError(f"{remote.type} refused by aiortc: {exc!r}") from exc

    # -- plumbing ------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("connection task ended: %r", task.exception())  # reported to its caller

    def _call(self, name: str, *args: Any) -> bool:
        """Run a user callback; an exception in it is logged (our bug), not raised into aiortc."""
        try:
            self._callbacks[name](*args)
        except Exception:
            log.exception("%s callback failed", name)
            return False
        return True
