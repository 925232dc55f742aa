"""A small WebSocket client (RFC 6455) on a blocking socket, for `liberation-node events`.

Client side only, and only what the event stream needs: the opening handshake
(§4.1, the server's Sec-WebSocket-Accept checked), masked frames from the
client (§5.3), fragmented messages put together (§5.4), pings answered (§5.5.2)
and the closing handshake (§5.5.1). No extensions are offered, so any RSV bit set
is an error. Messages are bounded (`MAX_MESSAGE_BYTES`). The frame codec
(`encode_frame`, `FrameDecoder`) is pure, apart from the socket, and tested
apart (tests/api/test_wsclient.py).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType

ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
MAX_MESSAGE_BYTES = 1 * 2**20
MAX_HEAD_BYTES = 16 * 1024
# The node pings every 30 s (api/control.py WS_HEARTBEAT_S): this much silence means
# the connection is gone without a word (a pulled cable, a frozen host).
IDLE_TIMEOUT_S = 75.0

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPCODES = frozenset({CONTINUATION, TEXT, BINARY})
CONTROL_OPCODES = frozenset({CLOSE, PING, PONG})
NORMAL_CLOSURE = 1000


class WebSocketError(Exception):
    """The peer broke the protocol or a bound; the message says how."""


class HandshakeError(WebSocketError):
    """The server refused the upgrade: `status` and its message."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes


def _masked(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return payload
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big")


def encode_frame(opcode: int, payload: bytes, mask: bytes | None = None,
                 fin: bool = True) -> bytes:
    """One frame; `mask` (4 bytes) is required from a client (§5.3)."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask is not None else 0
    size = len(payload)
    if size < 126:
        head.append(bit | size)
    elif size < 2**16:
        head.append(bit | 126)
        head += struct.pack("!H", size)
    else:
        head.append(bit | 127)
        head += struct.pack("!Q", size)
    if mask is None:
        return bytes(head) + payload
    if len(mask) != 4:
        raise ValueError("a mask is 4 bytes")
    return bytes(head) + mask + _masked(payload, mask)


class FrameDecoder:
    """Bytes in, whole frames out. `masked`: frames must be masked (a server reading a
    client) or must not be (a client reading a server, the default)."""

    def __init__(self, max_payload: int = MAX_MESSAGE_BYTES, masked: bool = False) -> None:
        self.max_payload = max_payload
        self.masked = masked
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while (frame := self._next()) is not None:
            frames.append(frame)
        return frames

    def _next(self) -> Frame | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        fin, opcode = bool(first & 0x80), first & 0x0F
        if first & 0x70:
            raise WebSocketError("a frame with reserved bits set (no extension was agreed)")
        if opcode not in DATA_OPCODES | CONTROL_OPCODES:
            raise WebSocketError(f"a frame with the reserved opcode {opcode:#x}")
        if bool(second & 0x80) != self.masked:
            raise WebSocketError("a masked frame from the server" if not self.masked else
                                 "an unmasked frame from the client")
        size, offset = second & 0x7F, 2
        if size == 126:
            if len(buf) < 4:
                return None
            size, offset = struct.unpack_from("!H", buf, 2)[0], 4
        elif size == 127:
            if len(buf) < 10:
                return None
            size, offset = struct.unpack_from("!Q", buf, 2)[0], 10
        if opcode in CONTROL_OPCODES and (size > 125 or not fin):
            raise WebSocketError("a control frame over 125 bytes or fragmented")
        if size > self.max_payload:
            raise WebSocketError(f"a frame of {size} bytes (at most {self.max_payload})")
        mask = b""
        if self.masked:
            if len(buf) < offset + 4:
                return None
            mask, offset = bytes(buf[offset : offset + 4]), offset + 4
        if len(buf) < offset + size:
            return None
        payload = bytes(buf[offset : offset + size])
        del buf[: offset + size]
        return Frame(fin, opcode, _masked(payload, mask) if mask else payload)


class Assembler:
    """Frames in, messages out (§5.4): (opcode, payload) once a message is whole."""

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._opcode: int | None = None
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, frame: Frame) -> tuple[int, bytes] | None:
        if frame.opcode == CONTINUATION:
            if self._opcode is None:
                raise WebSocketError("a continuation frame with no message to continue")
        elif self._opcode is not None:
            raise WebSocketError("a new message before the last one ended")
        else:
            self._opcode = frame.opcode
        self._size += len(frame.payload)
        if self._size > self.max_bytes:
            raise WebSocketError(f"a message over {self.max_bytes} bytes")
        self._parts.append(frame.payload)
        if not frame.fin:
            return None
        message = (self._opcode, b"".join(self._parts))
        self._opcode, self._parts, self._size = None, [], 0
        return message


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + ACCEPT_GUID).digest()).decode()


class WebSocket:
    def __init__(self, sock: socket.socket, leftover: bytes = b"") -> None:
        self.sock = sock
        self._decoder = FrameDecoder()
        self._pending = self._decoder.feed(leftover)
        self._closed = False

    def send(self, opcode: int, payload: bytes) -> None:
        self.sock.sendall(encode_frame(opcode, payload, os.urandom(4)))

    def messages(self, idle_timeout: float | None = IDLE_TIMEOUT_S) -> Iterator[str]:
        """Each text message, until the server closes (binary messages are skipped)."""
        self.sock.settimeout(idle_timeout)
        assembler = Assembler()
        while not self._closed:
            frames, self._pending = self._pending, []
            if not frames:
                data = self.sock.recv(65536)
                if not data:  # the connection ended without a close frame
                    self._closed = True
                    return
                frames = self._decoder.feed(data)
            for frame in frames:
                if frame.opcode == PING:
                    self.send(PONG, frame.payload)
                elif frame.opcode == CLOSE:
                    self._close(frame.payload[:2])  # echo the status code (§5.5.1)
                    return
                elif frame.opcode != PONG:
                    message = assembler.add(frame)
                    if message is not None and message[0] == TEXT:
                        try:
                            yield message[1].decode("utf-8")
                        except UnicodeDecodeError:
                            raise WebSocketError("a text message that is not UTF-8") from None

    def _close(self, payload: bytes) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):  # the server may be gone already
                self.send(CLOSE, payload)

    def close(self) -> None:
        self._close(struct.pack("!H", NORMAL_CLOSURE))
        self.sock.close()

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def connect(host: str, port: int, path: str, headers: Mapping[str, str],
            timeout: float) -> WebSocket:
    """Open a WebSocket to ws://host:port/path with extra request `headers`."""
    sock = socket.create_connection((host, port), timeout)
    try:
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"GET {path} HTTP/1.1", f"Host: {authority}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in headers.items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head, rest = _read_head(sock)
        status, fields = _parse_head(head)
        if status != 101:
            raise HandshakeError(_refusal(sock, status, fields, rest), status)
        if fields.get("upgrade", "").lower() != "websocket" or \
                fields.get("sec-websocket-accept") != accept_key(key):
            raise WebSocketError("the server did not accept the WebSocket upgrade")
        return WebSocket(sock, rest)
    except BaseException:
        sock.close()
        raise


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD_BYTES:
            raise WebSocketError(f"a response head over {MAX_HEAD_BYTES} bytes")
        chunk = sock.recv(4096)
        if not chunk:
            raise WebSocketError("the server closed the connection during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise WebSocketError(f"not an HTTP response: {status_line[:80]!r}")
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(parts[1]), fields


def _refusal(sock: socket.socket, status: int, fields: Mapping[str, str], body: bytes) -> str:
    """The node's one-line reason for refusing, from its JSON error body."""
    try:
        length = min(int(fields.get("content-length", "0")), 64 * 1024)
        while len(body) < length and (chunk := sock.recv(4096)):
            body += chunk
        error = json.loads(body[:length]).get("error")
    except (OSError, ValueError, AttributeError):
        error = None
    return f"{error or 'the node refused the event stream'} (HTTP {status})"
