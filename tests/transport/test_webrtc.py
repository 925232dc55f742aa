"""The WebRTC transport over loopback (DESIGN.md §4): two transports in one process,
signaling by a direct call, ICE restricted to 127.0.0.1, no STUN server, no mDNS.

Synchronisation is by events and futures only; every wait is bounded so a bug
fails the test instead of hanging it. Each test ends by closing both transports
and checking that no task or thread is left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

pytest.importorskip("aiortc", reason="aiortc cannot be imported: WebRTC transport tests skipped")

from liberation_node.transport import (
    LABEL,
    PROTOCOL,
    ConnectTimeout,
    Link,
    LinkClosed,
    SignalError,
    TransportConfig,
    TransportError,
    WebRtcTransport,
)

LOOPBACK = TransportConfig(ice_addresses=("127.0.0.1",), connect_timeout_s=5.0)
WAIT_S = 10.0  # bound on any single wait; nothing here should come near it


class Peer:
    """One transport and what its callbacks reported."""

    def __init__(self, name: str, config: TransportConfig = LOOPBACK) -> None:
        self.name = name
        self.opened: list[Link] = []
        self.closed: list[Link] = []
        self.received: dict[int, list[bytes]] = {}
        self._changed = asyncio.Event()
        self.transport = WebRtcTransport(config, self._on_open, self._on_message,
                                         self._on_close)

    def _on_open(self, link: Link) -> None:
        assert link.id not in self.received, "on_open twice"
        self.opened.append(link)
        self.received[link.id] = []
        self._changed.set()

    def _on_message(self, link: Link, data: bytes) -> None:
        assert link in self.opened and link not in self.closed
        self.received[link.id].append(data)
        self._changed.set()

    def _on_close(self, link: Link) -> None:
        assert link in self.opened
        self.closed.append(link)
        self._changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until `condition()` holds, re-checking after each callback."""
        async with asyncio.timeout(WAIT_S):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


@pytest.fixture
async def peers() -> AsyncIterator[tuple[Peer, Peer]]:
    threads = threading.active_count()
    a, b = Peer("a"), Peer("b")
    yield a, b
    await a.transport.close()
    await b.transport.close()
    for peer in (a, b):
        ids = [link.id for link in peer.closed]
        assert sorted(ids) == sorted({link.id for link in peer.opened}), "on_close once each"
    assert other_tasks() == set()
    assert threading.active_count() == threads


async def connect(a: Peer, b: Peer) -> tuple[Link, Link]:
    """a dials b; returns (a's link, b's link)."""
    before = len(b.opened)
    link = await a.transport.dial(b.transport.answer)
    await b.until(lambda: len(b.opened) > before)
    return link, b.opened[-1]


class Recorder:
    """An exchange that passes the offer on and keeps both SDPs."""

    def __init__(self, answerer: Peer) -> None:
        self.answerer = answerer
        self.offer: dict[str, str] = {}
        self.answer: dict[str, str] = {}

    async def __call__(self, offer: dict[str, str]) -> dict[str, str]:
        self.offer = offer
        self.answer = await self.answerer.transport.answer(offer)
        return self.answer


def fingerprint(sdp: str) -> str:
    match = re.search(r"^a=fingerprint:(sha-256) ([0-9A-F:]+)\r?$", sdp, re.M)
    assert match is not None
    return f"{match[1]} {match[2]}"


def candidates(sdp: str) -> list[tuple[str, str]]:
    """(address, type) of every a=candidate line (RFC 8839 §5.1)."""
    lines = re.findall(r"^a=candidate:(.*?)\r?$", sdp, re.M)
    return [(fields[4], fields[7]) for fields in (line.split() for line in lines)]


# -- opening ------------------------------------------------------------------------------


async def test_a_link_opens_both_ways(peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    out, into = await connect(a, b)
    assert a.opened == [out]  # on_open reports dialed links too
    assert (out.initiator, into.initiator) == (True, False)
    assert out.remote_address is not None and out.remote_address.startswith("127.0.0.1:")
    assert into.remote_address is not None and into.remote_address.startswith("127.0.0.1:")
    back, there = await connect(b, a)  # and the other way round
    assert (back.initiator, there.initiator) == (True, False)
    assert len(a.transport.links) == len(b.transport.links) == 2
    assert (LABEL, PROTOCOL) == ("liberation-node/1", "liberation-sync/1")


async def test_binding_is_the_same_on_both_ends_and_new_per_connection(
        peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    exchange = Recorder(b)
    out, into = await a.transport.dial(exchange), None
    await b.until(lambda: len(b.opened) == 1)
    into = b.opened[0]
    assert out.binding == into.binding
    # Both DTLS fingerprints exactly as in the two SDPs' a=fingerprint lines, sorted.
    expected = sorted([fingerprint(exchange.offer["sdp"]), fingerprint(exchange.answer["sdp"])])
    assert out.binding == "\n".join(expected).encode()
    second, _ = await connect(a, b)
    assert second.binding != out.binding


async def test_candidates_are_on_loopback_only(peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    exchange = Recorder(b)
    await a.transport.dial(exchange)
    for sdp in (exchange.offer["sdp"], exchange.answer["sdp"]):
        found = candidates(sdp)
        assert found and all(c == ("127.0.0.1", "host") for c in found), found
        assert re.findall(r"^c=IN IP4 (\S+)", sdp, re.M) == ["127.0.0.1"]


async def test_an_answer_with_another_fingerprint_fails_the_dtls_check(
        peers: tuple[Peer, Peer]) -> None:
    # What a signaling relay that swapped in its own certificate would look like to us.
    a, b = peers
    forged = "a=fingerprint:sha-256 " + ":".join(["AB"] * 32)

    async def tampering(offer: dict[str, str]) -> dict[str, str]:
        answer = await b.transport.answer(offer)
        sdp = re.sub(r"^a=fingerprint:.*\r\n", "", answer["sdp"], flags=re.M)
        return {"type": "answer", "sdp": sdp.replace("a=setup:", forged + "\r\na=setup:")}

    with pytest.raises(TransportError, match="peer connection failed"):
        await a.transport.dial(tampering)
    assert a.opened == []


# -- messages -----------------------------------------------------------------------------


async def test_messages_flow_both_ways_in_order(peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    out, into = await connect(a, b)
    rng = random.Random(4)
    limit = LOOPBACK.max_message_bytes
    sizes = [0, 1, limit] + [rng.choices([rng.randrange(64), rng.randrange(4096),
                                          rng.randrange(limit + 1)], weights=[4, 4, 1])[0]
                             for _ in range(997)]
    sent = {side: [rng.randbytes(n) for n in sizes] for side in ("ab", "ba")}
    for x, y in zip(sent["ab"], sent["ba"], strict=True):
        out.send(x)
        into.send(y)
    await b.until(lambda: len(b.received[into.id]) == 1000)
    await a.until(lambda: len(a.received[out.id]) == 1000)
    assert b.received[into.id] == sent["ab"]
    assert a.received[out.id] == sent["ba"]


async def test_a_burst_with_backpressure_delivers_everything(peers: tuple[Peer, Peer]) -> None:
    tight = TransportConfig(ice_addresses=("127.0.0.1",), high_water=256 * 1024,
                            low_water=64 * 1024)
    a, b = Peer("a", tight), peers[1]
    try:
        out, into = await connect(a, b)
        frame, total, waits, peak = 16 * 1024, 8 * 1024 * 1024, 0, 0
        digest = hashlib.sha256()
        for i in range(total // frame):
            data = i.to_bytes(4, "big") * (frame // 4)
            digest.update(data)
            out.send(data)
            peak = max(peak, out.buffered_amount)
            if out.congested:
                waits += 1
                await out.wait_writable()
                assert out.buffered_amount <= tight.low_water
        got = b.received[into.id]
        await b.until(lambda: sum(map(len, got)) >= total)
        assert hashlib.sha256(b"".join(got)).digest() == digest.digest()
        assert waits > 0 and peak <= tight.high_water + frame
    finally:
        await a.transport.close()


async def test_sending_too_much_is_refused_and_the_link_stays_up(
        peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    out, into = await connect(a, b)
    with pytest.raises(ValueError, match="at most 65536"):
        out.send(bytes(LOOPBACK.max_message_bytes + 1))
    with pytest.raises(TypeError):
        out.send("text")  # type: ignore[arg-type]
    out.send(b"still fine")
    await b.until(lambda: b.received[into.id] == [b"still fine"])


async def test_a_text_message_closes_the_link(peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    out, into = await connect(a, b)
    out._channel.send("our protocol is binary")  # what a foreign peer could do
    await b.until(lambda: into in b.closed)
    assert "text message" in into.close_reason
    await a.until(lambda: out in a.closed)
    assert b.received[into.id] == []


# -- closing ------------------------------------------------------------------------------


@pytest.mark.parametrize("closer", ["dialer", "answerer"])
async def test_closing_one_end_is_noticed_at_the_other(peers: tuple[Peer, Peer],
                                                       closer: str) -> None:
    a, b = peers
    out, into = await connect(a, b)
    mine, theirs, other = (out, into, b) if closer == "dialer" else (into, out, a)
    await mine.close()
    assert mine.closed
    await other.until(lambda: theirs in other.closed)
    assert a.closed == [out] and b.closed == [into]  # once each
    await mine.close()  # closing again changes nothing
    with pytest.raises(LinkClosed):
        mine.send(b"late")
    with pytest.raises(LinkClosed):
        await theirs.wait_writable()
    assert a.transport.links == [] and b.transport.links == []


async def test_wait_writable_raises_when_the_link_closes(peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    out, into = await connect(a, b)
    for _ in range(200):  # far more than the link drains before we close it
        out.send(bytes(60_000))
    assert out.buffered_amount > LOOPBACK.low_water
    waiter = asyncio.ensure_future(out.wait_writable())
    await b.until(lambda: len(b.received[into.id]) > 0)  # the burst is under way
    await into.close()
    with pytest.raises(LinkClosed):
        await asyncio.wait_for(waiter, WAIT_S)
    assert a.closed == [out]


async def test_closing_the_transport_closes_its_links(peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    out, into = await connect(a, b)
    await a.transport.close()
    assert a.closed == [out]
    await b.until(lambda: into in b.closed)
    with pytest.raises(TransportError, match="closed"):
        await a.transport.dial(b.transport.answer)


# -- refusals and timeouts ----------------------------------------------------------------


async def test_a_failing_exchange_fails_the_dial(peers: tuple[Peer, Peer]) -> None:
    a, _ = peers

    async def unreachable(offer: dict[str, str]) -> dict[str, str]:
        raise OSError("connection refused")

    with pytest.raises(TransportError, match=r"exchange failed.*connection refused"):
        await a.transport.dial(unreachable)
    assert a.transport.connecting == 0


async def offer_from(peer: Peer) -> dict[str, str]:
    """A genuine offer (its dial is abandoned)."""
    captured: dict[str, str] = {}

    async def capture(offer: dict[str, str]) -> dict[str, str]:
        captured.update(offer)
        raise LookupError("not answering")

    with pytest.raises(TransportError):
        await peer.transport.dial(capture)
    return captured


def _edit(pattern: str, repl: str) -> Callable[[dict[str, str]], object]:
    return lambda offer: {**offer, "sdp": re.sub(pattern, repl, offer["sdp"], flags=re.M)}


BAD_OFFERS: dict[str, tuple[Callable[[dict[str, str]], object], str]] = {
    "not a dict": (lambda offer: [offer["sdp"]], "expected a dict"),
    "missing sdp": (lambda offer: {"type": "offer"}, "exactly the keys"),
    "extra key": (lambda offer: {**offer, "x": "1"}, "exactly the keys"),
    "an answer": (lambda offer: {**offer, "type": "answer"}, "expected an offer"),
    "sdp not text": (lambda offer: {**offer, "sdp": 5}, "must be strings"),
    "too large": (lambda offer: {**offer, "sdp": offer["sdp"] + "a=x:" + "y" * 20_000},
                  "at most 16384"),
    "garbage": (lambda offer: {**offer, "sdp": "m=nonsense"}, "unparseable|m=application"),
    "mDNS candidate": (_edit(r"127\.0\.0\.1 (\d+) typ", r"x.local \1 typ"),
                       "not an IP address"),
    "no fingerprint": (_edit(r"^a=fingerprint:sha-256 .*\r\n", ""), "one a=fingerprint"),
    "multicast candidate": (_edit(r"^(a=candidate:\S+ 1 udp \d+) 127\.0\.0\.1 (\d+)",
                                  r"\1 224.0.0.251 \2"), "multicast address"),
    "port 0": (_edit(r"^(a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1) (\d+)", r"\1 0"),
               "port 0"),
    "and audio": (lambda offer: {**offer, "sdp": offer["sdp"] + "m=audio 9 RTP/AVP 0\r\n"},
                  "exactly one m=application"),
}


@pytest.mark.parametrize("case", sorted(BAD_OFFERS))
async def test_a_bad_offer_is_refused(peers: tuple[Peer, Peer], case: str) -> None:
    a, b = peers
    spoil, message = BAD_OFFERS[case]
    offer = spoil(await offer_from(a))
    with pytest.raises(SignalError, match=message):
        await b.transport.answer(offer)  # type: ignore[arg-type]
    assert b.transport.connecting == 0 and b.opened == []


async def test_an_offer_as_a_browser_writes_it_connects(peers: tuple[Peer, Peer]) -> None:
    """No a=end-of-candidates, an mDNS name and a TCP candidate beside the real one (as
    Chromium writes them): the names are ignored, never resolved, and the link opens."""
    a, b = peers

    async def browser_like(offer: dict[str, str]) -> dict[str, str]:
        sdp = re.sub(r"^a=end-of-candidates\r?\n", "", offer["sdp"], flags=re.M)
        extra = ("a=candidate:7 1 udp 2130706431 1f0c5a3e-4b7d-4e21-9a6b-2c1d3e4f5a6b.local "
                 "50000 typ host\r\n"
                 "a=candidate:8 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r\n")
        sdp = sdp.replace("a=candidate:", extra + "a=candidate:", 1)
        assert "end-of-candidates" not in sdp and ".local" in sdp
        return await b.transport.answer({"type": "offer", "sdp": sdp})

    link = await a.transport.dial(browser_like)
    await b.until(lambda: len(b.opened) == 1)
    link.send(b"hello")
    await b.until(lambda: b.received[b.opened[0].id] == [b"hello"])


async def test_loopback_candidates_are_for_nodes_that_use_loopback(
        peers: tuple[Peer, Peer]) -> None:
    """A remote loopback candidate can only be this very host: a node whose ICE does not
    use loopback ignores it (else an offer could aim STUN checks at local UDP services)."""
    a, _ = peers
    offer = await offer_from(a)  # its only candidate is 127.0.0.1
    lan = Peer("lan", TransportConfig(ice_addresses=("192.0.2.1",), connect_timeout_s=1.0))
    with pytest.raises(SignalError, match=r"no usable candidate .*loopback address"):
        await lan.transport.answer(offer)
    assert lan.transport.connecting == 0  # refused before anything was made
    await lan.transport.close()


async def test_a_bad_answer_fails_the_dial(peers: tuple[Peer, Peer]) -> None:
    a, _ = peers

    async def nonsense(offer: dict[str, str]) -> dict[str, str]:
        return {"type": "answer", "sdp": "v=0"}

    with pytest.raises(SignalError, match="answer"):
        await a.transport.dial(nonsense)
    assert a.transport.connecting == 0


async def test_a_dial_never_answered_times_out_and_cleans_up() -> None:
    a = Peer("a", TransportConfig(ice_addresses=("127.0.0.1",), connect_timeout_s=0.3))
    cancelled = asyncio.Event()

    async def silent(offer: dict[str, str]) -> dict[str, str]:
        try:
            await asyncio.get_running_loop().create_future()  # never answers
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    with pytest.raises(ConnectTimeout, match=r"within 0\.3 s"):
        await a.transport.dial(silent)
    assert cancelled.is_set() and a.transport.connecting == 0
    assert other_tasks() == set()  # the peer connection is closed, nothing is running
    await a.transport.close()
    assert a.opened == []


async def test_an_answer_never_used_times_out_and_cleans_up(peers: tuple[Peer, Peer]) -> None:
    a, _ = peers
    b = Peer("b", TransportConfig(ice_addresses=("127.0.0.1",), connect_timeout_s=0.3))
    answer = await b.transport.answer(await offer_from(a))  # its dialer is gone
    assert answer["type"] == "answer" and b.transport.connecting == 1
    (conn,) = b.transport._conns  # white-box: nothing public happens when it expires
    async with asyncio.timeout(WAIT_S):
        await conn.ended.wait()
    assert b.transport.connecting == 0 and b.opened == []
    await b.transport.close()


async def test_ice_that_finds_no_path_gives_up_early(peers: tuple[Peer, Peer]) -> None:
    """Issue 9, finding 4: an offer whose candidates point at a UDP port that never answers
    used to hold its slot (`connecting`) for the whole connect timeout; ICE that finds no
    working pair now gives up after `ice_timeout_s`."""
    a, _ = peers
    b = Peer("b", TransportConfig(ice_addresses=("127.0.0.1",), connect_timeout_s=10.0,
                                  ice_timeout_s=0.5))
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # swallows every STUN check
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    try:
        offer = await offer_from(a)
        lines = [re.sub(r"^(a=candidate:\S+ \d+ \S+ \d+ \S+ )\d+", rf"\g<1>{port}", line)
                 for line in offer["sdp"].split("\r\n")]
        started = time.monotonic()
        await b.transport.answer({"type": "offer", "sdp": "\r\n".join(lines)}, "x")
        assert b.transport.connecting_from("x") == 1
        (conn,) = b.transport._conns
        async with asyncio.timeout(WAIT_S):
            await conn.ended.wait()
        assert time.monotonic() - started < 3  # not the 10 s connect timeout
        assert "ICE found no working path within 0.5 s" in conn.reason
        assert b.transport.connecting_from("x") == 0 and b.opened == []
    finally:
        sink.close()
        await b.transport.close()


async def test_a_dialed_link_knows_how_long_its_offer_exchange_took(
        peers: tuple[Peer, Peer]) -> None:
    """The dialer's only round trip before the session's first PONG (sync.md §4.4): the
    exchange, here slowed by 120 ms as a distant peer's would be. The answerer saw none."""
    a, b = peers

    async def distant(offer: dict[str, str]) -> dict[str, str]:
        await asyncio.sleep(0.12)
        return await b.transport.answer(offer)

    out = await a.transport.dial(distant)
    await b.until(lambda: len(b.opened) == 1)
    assert out.signal_rtt_ms is not None and 120 <= out.signal_rtt_ms < 5_000
    assert b.opened[0].signal_rtt_ms is None
