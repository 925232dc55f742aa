"""The CLI's WebSocket client (api/wsclient.py): the frame codec (RFC 6455 §5) as a
property, its refusals, and a conversation with a server written here byte by byte."""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liberation_node.api import wsclient
from liberation_node.api.wsclient import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    Assembler,
    Frame,
    FrameDecoder,
    HandshakeError,
    WebSocketError,
    accept_key,
    encode_frame,
)

SIZES = st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70000])


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    opcode = draw(st.sampled_from([CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG]))
    control = opcode >= CLOSE
    size = draw(st.integers(0, 125)) if control else draw(SIZES)
    payload = draw(st.binary(min_size=size, max_size=size)) if size <= 200 else \
        bytes(draw(st.integers(0, 255)) for _ in range(1)) * size
    return Frame(True if control else draw(st.booleans()), opcode, payload)


@given(st.lists(frames(), min_size=1, max_size=5), st.booleans(),
       st.lists(st.integers(1, 5000), max_size=8), st.binary(min_size=4, max_size=4))
def test_frames_decode_as_encoded_in_any_chunks(sent: list[Frame], masked: bool,
                                                cuts: list[int], mask: bytes) -> None:
    stream = b"".join(encode_frame(f.opcode, f.payload, mask if masked else None, f.fin)
                      for f in sent)
    decoder = FrameDecoder(max_payload=70000, masked=masked)
    got: list[Frame] = []
    start = 0
    for cut in sorted(cuts):
        got += decoder.feed(stream[start:cut])
        start = max(start, cut)
    got += decoder.feed(stream[start:])
    assert got == sent


def test_masking_changes_the_bytes_on_the_wire() -> None:
    plain = encode_frame(TEXT, b"hello")
    masked = encode_frame(TEXT, b"hello", b"\x01\x02\x03\x04")
    assert plain == b"\x81\x05hello"
    assert masked[:2] == b"\x81\x85" and masked[2:6] == b"\x01\x02\x03\x04"
    assert masked[6:] != b"hello"


@pytest.mark.parametrize(("data", "error"), [
    (b"\xc1\x00", "reserved bits"),
    (b"\x83\x00", "reserved opcode 0x3"),
    (b"\x81\x80\x00\x00\x00\x00", "a masked frame from the server"),
    (b"\x89\x7e\x00\x7e" + b"x" * 126, "control frame over 125 bytes"),
    (b"\x09\x00", "control frame over 125 bytes or fragmented"),
    (b"\x82\x7f" + struct.pack("!Q", 2**40), "a frame of 1099511627776 bytes"),
])
def test_bad_frames_are_refused(data: bytes, error: str) -> None:
    with pytest.raises(WebSocketError, match=error):
        FrameDecoder(max_payload=1000).feed(data)


def test_messages_are_put_together_within_bounds() -> None:
    assembler = Assembler(max_bytes=10)
    assert assembler.add(Frame(False, TEXT, b"hel")) is None
    assert assembler.add(Frame(True, CONTINUATION, b"lo")) == (TEXT, b"hello")
    assert assembler.add(Frame(True, BINARY, b"\x00")) == (BINARY, b"\x00")
    with pytest.raises(WebSocketError, match="no message to continue"):
        Assembler().add(Frame(True, CONTINUATION, b"x"))
    half = Assembler()
    half.add(Frame(False, TEXT, b"a"))
    with pytest.raises(WebSocketError, match="before the last one ended"):
        half.add(Frame(True, TEXT, b"b"))
    big = Assembler(max_bytes=10)
    big.add(Frame(False, TEXT, b"x" * 6))
    with pytest.raises(WebSocketError, match="a message over 10 bytes"):
        big.add(Frame(True, CONTINUATION, b"x" * 6))


def test_accept_key_is_the_rfc_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # §1.3


# -- a conversation with a server -------------------------------------------------------------


def serve_once(script: Callable[[socket.socket, bytes], None]) -> tuple[int, threading.Thread]:
    """Listen on 127.0.0.1, accept one client, read its handshake, run `script`."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        with listener, listener.accept()[0] as conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            script(conn, head)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


def key_of(head: bytes) -> str:
    for line in head.decode().split("\r\n"):
        if line.lower().startswith("sec-websocket-key:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no key")


def upgrade(conn: socket.socket, head: bytes, accept: str | None = None) -> None:
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                 + (accept or accept_key(key_of(head))).encode() + b"\r\n\r\n")


def read_frame(conn: socket.socket) -> Frame:
    decoder = FrameDecoder(masked=True)  # what a server reads: the client masks
    while True:
        got = decoder.feed(conn.recv(1))
        if got:
            return got[0]


def test_a_conversation() -> None:
    seen: dict[str, object] = {}

    def script(conn: socket.socket, head: bytes) -> None:
        seen["head"] = head.decode()
        upgrade(conn, head)
        conn.sendall(encode_frame(TEXT, b'{"type": "a"', fin=False)
                     + encode_frame(PING, b"are you there")  # between fragments: allowed
                     + encode_frame(CONTINUATION, b"}")
                     + encode_frame(BINARY, b"\x00\x01")  # skipped
                     + encode_frame(TEXT, "ünï".encode()))
        seen["pong"] = read_frame(conn)
        conn.sendall(encode_frame(CLOSE, struct.pack("!H", 1001) + b"going away"))
        seen["close"] = read_frame(conn)

    port, thread = serve_once(script)
    with wsclient.connect("127.0.0.1", port, "/api/v1/events",
                          {"Authorization": "Bearer t"}, 5) as ws:
        messages = list(ws.messages(idle_timeout=5))
    thread.join(5)
    assert [json.loads(messages[0]), messages[1]] == [{"type": "a"}, "ünï"]
    assert seen["pong"] == Frame(True, PONG, b"are you there")
    assert seen["close"] == Frame(True, CLOSE, struct.pack("!H", 1001))
    head = str(seen["head"])
    assert head.startswith("GET /api/v1/events HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}\r\n" in head and "Authorization: Bearer t\r\n" in head
    assert len(base64.b64decode(key_of(head.encode()))) == 16


def test_a_refusal_carries_the_servers_message() -> None:
    def script(conn: socket.socket, head: bytes) -> None:
        body = json.dumps({"error": "a valid token is required"}).encode()
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    port, thread = serve_once(script)
    with pytest.raises(HandshakeError, match=r"^a valid token is required \(HTTP 401\)$") as e:
        wsclient.connect("127.0.0.1", port, "/x", {}, 5)
    assert e.value.status == 401
    thread.join(5)


def test_a_wrong_accept_key_is_refused() -> None:
    port, thread = serve_once(lambda conn, head: upgrade(conn, head, accept="d3Jvbmc="))
    with pytest.raises(WebSocketError, match="did not accept the WebSocket upgrade"):
        wsclient.connect("127.0.0.1", port, "/x", {}, 5)
    thread.join(5)


def test_a_server_that_hangs_up_ends_the_stream() -> None:
    def script(conn: socket.socket, head: bytes) -> None:
        upgrade(conn, head)
        conn.sendall(encode_frame(TEXT, b"last words"))

    port, thread = serve_once(script)
    with wsclient.connect("127.0.0.1", port, "/x", {}, 5) as ws:
        assert list(ws.messages(idle_timeout=5)) == ["last words"]
    thread.join(5)
