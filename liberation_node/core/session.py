"""One peer session: handshake, heartbeat, framing and close (protocols/sync.md §4).

A state machine with time passed in. Its states and transitions are the table
`TRANSITIONS` below; everything else in this module only says how to get from
one row to the next.

    HANDSHAKE --hello ok--> OPEN --close/timeout/error--> CLOSED
        \\--bad hello, frame before hello, timeout, close--> CLOSED

Both sides send HELLO as soon as the transport is up. A HELLO carries a
signature over the transport's *binding value* (for WebRTC: both DTLS
fingerprints of this very connection), so a HELLO relayed from another
connection, e.g. by whoever carried the signaling, does not verify.
Liveness comes from our own heartbeat: a PING after `ping_interval_ms` of
silence on our side (jittered a little), and the peer is dead after
`dead_after_ms` without hearing anything from it (aiortc alone takes ~30 s to
notice). Both timeouts grow with the connection's measured round-trip time, so a
slow link is slow, not dead (sync.md §4.4).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import frames
from .errors import Rejection
from .frames import Close, Frame, Hello, Ping, Pong
from .identity import Identity, verify

HELLO_DOMAIN = b"liberation-node/hello/v1\x00"


class State(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


_OPEN = State.OPEN  # read on every input: a global, not an enum class attribute


class Input(enum.Enum):
    HELLO_OK = "hello ok"
    HELLO_BAD = "hello bad"
    FRAME = "frame"  # any frame other than HELLO and CLOSE
    CLOSE = "close"  # the peer's CLOSE, our close(), or the transport went away
    TIMEOUT = "timeout"


# (state, input) -> next state. A pair missing from the table is a protocol error.
TRANSITIONS: dict[tuple[State, Input], State] = {
    (State.HANDSHAKE, Input.HELLO_OK): State.OPEN,
    (State.HANDSHAKE, Input.HELLO_BAD): State.CLOSED,
    (State.HANDSHAKE, Input.CLOSE): State.CLOSED,
    (State.HANDSHAKE, Input.TIMEOUT): State.CLOSED,
    (State.OPEN, Input.FRAME): State.OPEN,
    (State.OPEN, Input.CLOSE): State.CLOSED,
    (State.OPEN, Input.TIMEOUT): State.CLOSED,
}


class CloseReason(enum.StrEnum):
    """Stable close reasons (sync.md §4.3)."""

    PROTOCOL_ERROR = "protocol_error"
    UNSUPPORTED_VERSION = "unsupported_version"
    WRONG_NETWORK = "wrong_network"
    BAD_BINDING = "bad_binding"
    SELF_CONNECTION = "self_connection"
    DUPLICATE_PEER = "duplicate_peer"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    MISBEHAVING = "misbehaving"
    TOO_MANY_PEERS = "too_many_peers"
    BANNED = "banned"  # the peer's score fell to the ban threshold (sync.md §4.7)
    SHUTDOWN = "shutdown"
    TRANSPORT_CLOSED = "transport_closed"


@dataclass(frozen=True)
class SessionConfig:
    protocol_version: int = 1
    software: str = "liberation-node"
    hello_timeout_ms: int = 5_000
    ping_interval_ms: int = 1_000
    dead_after_ms: int = 4_000
    # A PING at least this often, busy or not: the silence rule alone lets the end with
    # the longer silence answer every PING and never ping, so never measure the link's
    # round trip or the peer's clock (sync.md §4.4).
    measure_every_ms: int = 5_000
    # Inbound budget (token bucket): sustained rate and burst, per session.
    max_bytes_per_s: int = 8 * 1024 * 1024
    max_frames_per_s: int = 2_000
    burst_s: float = 2.0


class SessionClosed(Exception):
    """Raised by `Session.receive` once the session has closed; carries why."""

    def __init__(self, reason: str, detail: str, by_peer: bool) -> None:
        super().__init__(reason, detail)
        self.reason, self.detail, self.by_peer = reason, detail, by_peer


class Session:
    def __init__(self, identity: Identity, network: str, binding: bytes, now: int,
                 config: SessionConfig, nonce: int, *, rtt_hint: int | None = None,
                 notify: Callable[[], None] | None = None,
                 changed: Callable[[], None] | None = None) -> None:
        """`rtt_hint`: a round-trip time the driver measured while connecting (the
        signaling exchange), before the session measures its own; `notify` is called
        whenever a frame is queued for output, `changed` whenever `state` changes."""
        self.identity = identity
        self.network = network
        self.binding = binding
        self.config = config
        self.state = State.HANDSHAKE
        self.peer: bytes | None = None
        self.peer_software = ""
        self.outbox: deque[bytes] = deque()
        self.opened_at = now  # the transport connected
        self.open_since: int | None = None  # the session became OPEN
        self.last_heard = now
        self.last_sent = now
        # Smoothed round-trip time (RFC 6298's SRTT) from PING/PONG; before the first
        # sample, the driver's hint if any.
        self.rtt_ms: int | None = None
        self._rtt_hint = rtt_hint
        self._notify = notify
        self._changed = changed
        # The peer's clock minus ours, from the last PONG: its clock reading against
        # the midpoint of our PING's round trip (sync.md §4.4). None until measured.
        self.clock_offset_ms: int | None = None
        self._nonce = nonce
        self._ping: tuple[int, int] | None = None  # (nonce, sent at)
        self._pinged_at = now  # our last PING (or the transport's start)
        self._tokens_bytes = config.max_bytes_per_s * config.burst_s
        self._tokens_frames = config.max_frames_per_s * config.burst_s
        self._refilled = now
        self.close_reason: tuple[str, str, bool] | None = None
        # Closed for a frame out of place (before HELLO, a second HELLO) rather than one
        # that does not decode: a transport that duplicated or reordered frames could
        # cause the first, only the peer the second (sync.md §4.7).
        self.out_of_order = False
        self.bytes_in = self.bytes_out = 0
        signature = identity.sign(HELLO_DOMAIN + binding)
        self.send(Hello(config.protocol_version, network, identity.public_key, signature,
                        config.software))

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    # -- transitions --------------------------------------------------------------------

    def _step(self, event: Input) -> State:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            self.out_of_order = True
            self._close(CloseReason.PROTOCOL_ERROR,
                        f"{event.value} not allowed in {self.state.value}", by_peer=False)
            return self.state
        self._enter(nxt)
        return nxt

    def _enter(self, state: State) -> None:
        if state is not self.state:
            self.state = state
            if self._changed is not None:
                self._changed()

    def _close(self, reason: str, detail: str, by_peer: bool) -> None:
        if self.state is State.CLOSED and self.close_reason is not None:
            return
        if not by_peer:
            self.outbox.append(frames.encode(Close(reason, detail[:256])))
            if self._notify is not None:
                self._notify()
        self.close_reason = (reason, detail, by_peer)
        self._enter(State.CLOSED)

    def close(self, reason: str, detail: str = "") -> None:
        """Close from our side: a CLOSE frame goes out, then nothing else."""
        if self.state is not State.CLOSED:
            self._close(reason, detail, by_peer=False)

    def transport_lost(self) -> None:
        if self.state is not State.CLOSED:
            self.close_reason = (CloseReason.TRANSPORT_CLOSED, "", True)
            self._enter(State.CLOSED)

    # -- input --------------------------------------------------------------------------

    def receive(self, data: bytes, now: int) -> Frame | None:
        """One frame from the peer. Returns it if the mesh should act on it (OPEN only).

        Raises `SessionClosed` when this input closed the session (or it was closed).
        """
        if self.state is State.CLOSED:
            raise self._closed()
        self._refill(now)
        self._tokens_bytes -= len(data)
        self._tokens_frames -= 1
        if self._tokens_bytes < 0 or self._tokens_frames < 0:
            self._close(CloseReason.RATE_LIMITED, "inbound budget exceeded", by_peer=False)
            raise self._closed()
        self.last_heard = now
        self.bytes_in += len(data)
        try:
            frame = frames.decode(data)
        except Rejection as rejection:
            self._close(CloseReason.PROTOCOL_ERROR, str(rejection), by_peer=False)
            raise self._closed() from None
        if isinstance(frame, Close):
            self._step(Input.CLOSE)
            self.close_reason = (frame.reason, frame.detail, True)
            raise self._closed()
        if isinstance(frame, Hello):
            self._hello(frame)
            if self.closed:
                raise self._closed()
            self.open_since = now
            if self.rtt_estimate_ms is None:
                # No round trip known (the answerer, or a relayed dial): measure one at
                # once, not after the first silence, which a busy link may not have for
                # `measure_every_ms`; the timers that scale with it wait for it (§4.4).
                self._pinged_at = now - self.config.measure_every_ms
            return None
        self._step(Input.FRAME)
        if self.closed:
            raise self._closed()
        if isinstance(frame, Ping):
            self.send(Pong(frame.nonce, now))
            return None
        if isinstance(frame, Pong):
            if self._ping is not None and frame.nonce == self._ping[0]:
                sample = max(0, now - self._ping[1])
                self.rtt_ms = sample if self.rtt_ms is None else (7 * self.rtt_ms + sample) // 8
                self.clock_offset_ms = frame.clock - (self._ping[1] + now) // 2
                self._ping = None
            return None
        return frame

    def _hello(self, hello: Hello) -> None:
        if self.state is not State.HANDSHAKE:
            self.out_of_order = True
            self._close(CloseReason.PROTOCOL_ERROR, "second HELLO", by_peer=False)
            return
        reason = None
        if hello.version != self.config.protocol_version:
            reason = (CloseReason.UNSUPPORTED_VERSION, f"version {hello.version}")
        elif hello.network != self.network:
            reason = (CloseReason.WRONG_NETWORK, f"network {hello.network!r}")
        elif not verify(hello.node_id, HELLO_DOMAIN + self.binding, hello.binding_sig):
            reason = (CloseReason.BAD_BINDING, "HELLO not signed for this connection")
        elif hello.node_id == self.identity.public_key:
            reason = (CloseReason.SELF_CONNECTION, "that is us")
        if reason is not None:
            self._step(Input.HELLO_BAD)
            self._close(reason[0], reason[1], by_peer=False)
            return
        self._step(Input.HELLO_OK)
        self.peer = hello.node_id
        self.peer_software = hello.software

    def _refill(self, now: int) -> None:
        elapsed = max(0, now - self._refilled) / 1000
        self._refilled = now
        cfg = self.config
        self._tokens_bytes = min(cfg.max_bytes_per_s * cfg.burst_s,
                                 self._tokens_bytes + elapsed * cfg.max_bytes_per_s)
        self._tokens_frames = min(cfg.max_frames_per_s * cfg.burst_s,
                                  self._tokens_frames + elapsed * cfg.max_frames_per_s)

    def _closed(self) -> SessionClosed:
        reason, detail, by_peer = self.close_reason or (CloseReason.PROTOCOL_ERROR, "", False)
        return SessionClosed(reason, detail, by_peer)

    # -- output and time ----------------------------------------------------------------

    def send(self, frame: Frame) -> None:
        if self.state is State.CLOSED:
            return
        data = frames.encode(frame)
        if len(data) > frames.MAX_FRAME_BYTES:  # our bug: callers batch below the limit
            raise ValueError(f"frame of {len(data)} bytes")
        self.outbox.append(data)
        if self._notify is not None:
            self._notify()

    def take_output(self) -> list[bytes]:
        out = list(self.outbox)
        self.outbox.clear()
        for data in out:
            self.bytes_out += len(data)
        return out

    def note_sent(self, now: int) -> None:
        self.last_sent = now

    # -- timers (sync.md §4.4) --------------------------------------------------------------

    @property
    def hello_timeout_ms(self) -> int:
        """No HELLO by then: give up. Longer on a link known to be slow."""
        return max(self.config.hello_timeout_ms, 3 * (self._rtt_hint or 0))

    @property
    def rtt_estimate_ms(self) -> int | None:
        """The measured RTT, or before the first PONG (up to `measure_every_ms` on a busy
        link) the driver's hint from connecting, if any."""
        return self.rtt_ms if self.rtt_ms is not None else self._rtt_hint

    @property
    def dead_after_ms(self) -> int:
        """Nothing heard for this long: the peer is gone. The peer sends something at
        least every `ping_interval_ms`, and its frames take a round-trip time's worth of
        latency and its variation to come, so a slow link waits longer."""
        rtt = self.rtt_estimate_ms or 0
        return max(self.config.dead_after_ms, self.config.ping_interval_ms + 3 * rtt)

    @property
    def ping_after_ms(self) -> int:
        """Our silence before a PING: `ping_interval_ms` less up to a quarter, drawn from
        the ping nonce sequence, so that peers' heartbeats do not fall into step."""
        interval = self.config.ping_interval_ms
        return interval - (self._nonce % 1024) * interval // 4096

    def timer(self) -> int | None:
        state = self.state
        if state is _OPEN:  # the common case first: asked after every input
            return min(self.last_heard + self.dead_after_ms, self.last_sent + self.ping_after_ms,
                       self._pinged_at + self.config.measure_every_ms)
        if state is State.HANDSHAKE:
            return self.opened_at + self.hello_timeout_ms
        return None

    def handle_timer(self, now: int) -> None:
        if self.state is State.HANDSHAKE and now >= self.opened_at + self.hello_timeout_ms:
            self._step(Input.TIMEOUT)
            self._close(CloseReason.TIMEOUT, "no HELLO", by_peer=False)
        elif self.state is State.OPEN:
            if now >= self.last_heard + self.dead_after_ms:
                self._step(Input.TIMEOUT)
                self._close(CloseReason.TIMEOUT, f"silent for {now - self.last_heard} ms",
                            by_peer=False)
            elif now >= min(self.last_sent + self.ping_after_ms,
                            self._pinged_at + self.config.measure_every_ms):
                self._nonce = (self._nonce * 6364136223846793005 + 1442695040888963407) % 2**53
                self._ping = (self._nonce, now)
                self._pinged_at = now
                self.send(Ping(self._nonce))
                self.last_sent = now
