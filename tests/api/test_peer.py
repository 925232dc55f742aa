"""The peer port (api/peer.py): signaling and info over real HTTP on 127.0.0.1, the
rate limiter, and `send_offer`, the dialer's side."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from liberation_node.api.peer import (
    MAX_SIGNAL_BYTES,
    SignalError,
    SignalRefused,
    SignalTimeout,
    peer_app,
    send_offer,
)
from liberation_node.api.ratelimit import RateLimiter, client_key

from .fakes import ME, NETWORK, OTHER, Clock, EchoHandler, error_of

Client = TestClient[web.Request, web.Application]
OFFER = {"type": "offer", "sdp": "v=0 offer"}


def request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"network": NETWORK, "from": OTHER.text, "offer": dict(OFFER)}
    body.update(changes)
    return body



@pytest.fixture
def handler() -> EchoHandler:
    return EchoHandler()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(handler: EchoHandler, clock: Clock) -> AsyncIterator[Client]:
    async with TestClient(TestServer(peer_app(handler, clock=clock, burst=1000))) as c:
        yield c



# -- the server -----------------------------------------------------------------------


async def test_signal_answers_an_offer(client: Client, handler: EchoHandler) -> None:
    response = await client.post("/v1/signal", json=request(extra="ignored"))
    assert response.status == 200
    assert await response.json() == {"answer": {"type": "answer", "sdp": "reffo 0=v"}}
    assert handler.calls == [(NETWORK, OTHER.public_key, OFFER, "127.0.0.1")]


async def test_info(client: Client, handler: EchoHandler) -> None:
    response = await client.get("/v1/info")
    assert response.status == 200
    assert await response.json() == handler.info()


async def test_refusals_keep_their_status(client: Client, handler: EchoHandler) -> None:
    response = await client.post("/v1/signal", json=request(network="other"))
    assert await error_of(response, 403) == f"this node is on network {NETWORK!r}"
    handler.full = True
    assert await error_of(await client.post("/v1/signal", json=request()), 503) == \
        "no room for more peers"


@pytest.mark.parametrize(("body", "field"), [
    (request(network=None), "network"), (request(network=1), "network"),
    (request(**{"from": None}), "from"), (request(**{"from": "ln123"}), "from"),
    (request(**{"from": ME.text[:-2] + "aa"}), "from"),
    (request(offer="v=0"), "offer"), (request(offer={"sdp": "v=0"}), "offer.type"),
    (request(offer={"type": "answer", "sdp": "v=0"}), "offer.type"),
    (request(offer={"type": "offer"}), "offer.sdp"),
    (request(offer={"type": "offer", "sdp": ""}), "offer.sdp"),
])
async def test_bad_signals_name_the_field(client: Client, handler: EchoHandler,
                                          body: dict[str, Any], field: str) -> None:
    response = await client.post("/v1/signal", json=body)
    assert (await error_of(response, 400)).startswith(field + ":")
    assert not handler.calls


@pytest.mark.parametrize("raw", [b"{", b"[]", b"\x80"])
async def test_signal_needs_a_json_object(client: Client, raw: bytes) -> None:
    await error_of(await client.post("/v1/signal", data=raw,
                                     headers={"Content-Type": "application/json"}), 400)


async def test_signal_body_over_64_kib_is_refused(client: Client, handler: EchoHandler) -> None:
    body = request(offer={"type": "offer", "sdp": "a" * MAX_SIGNAL_BYTES})
    assert "65536" in await error_of(await client.post("/v1/signal", json=body), 413)
    assert not handler.calls


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/"), ("GET", "/v1"), ("GET", "/v1/"), ("GET", "/api/v1/status"),
    ("GET", "/metrics"), ("POST", "/v1/info/x"), ("GET", "/v1/signal/"),
    ("GET", "/static/../v1/info/.."),
])
async def test_nothing_else_is_reachable(client: Client, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert response.status in (404, 405)
    assert set(await response.json()) == {"error"}


async def test_a_handler_bug_is_a_500_without_details(client: Client, handler: EchoHandler,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    async def broken(*args: Any) -> dict[str, str]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(handler, "signal", broken)
    response = await client.post("/v1/signal", json=request())
    assert "secret" not in await error_of(response, 500)
    assert "secret internals" in caplog.text


async def test_rate_limit_per_address(handler: EchoHandler, clock: Clock) -> None:
    async with TestClient(TestServer(peer_app(handler, rate=5, burst=10, clock=clock))) as c:
        for _ in range(10):  # the burst
            assert (await c.get("/v1/info")).status == 200
        response = await c.post("/v1/signal", json=request())
        assert "too many" in await error_of(response, 429)
        assert response.headers["Retry-After"] == "1"
        assert not handler.calls  # refused before the body was read
        clock.t += 0.2  # one token at 5 per second
        assert (await c.post("/v1/signal", json=request())).status == 200
        assert (await c.get("/v1/info")).status == 429
        clock.t += 10
        for _ in range(10):
            assert (await c.get("/v1/info")).status == 200


async def test_answers_in_flight_are_bounded(handler: EchoHandler) -> None:
    handler.gate = asyncio.Event()
    async with TestClient(TestServer(peer_app(handler, max_in_flight=2, burst=100))) as c:
        waiting = [asyncio.ensure_future(c.post("/v1/signal", json=request()))
                   for _ in range(2)]
        while len(handler.calls) < 2:
            await asyncio.sleep(0.001)
        response = await c.post("/v1/signal", json=request())
        assert "busy" in await error_of(response, 503)
        assert response.headers["Retry-After"] == "1"
        handler.gate.set()
        for done in await asyncio.gather(*waiting):
            assert done.status == 200


async def test_a_slow_answer_times_out(handler: EchoHandler) -> None:
    handler.delay = 5.0
    async with TestClient(TestServer(peer_app(handler, timeout=0.05))) as c:
        response = await c.post("/v1/signal", json=request())
        assert await error_of(response, 504) == "no answer within 0.05 s"


def test_refusals_are_errors_only() -> None:
    with pytest.raises(ValueError):
        SignalRefused(200, "fine")


# -- the rate limiter -----------------------------------------------------------------


def test_rate_limiter_refills_and_forgets() -> None:
    limiter = RateLimiter(rate=2, burst=2, max_keys=2)
    assert [limiter.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert limiter.take("a", 0.25) == 0.25  # half a token back; waiting did not cost more
    assert limiter.take("a", 0.5) == 0.0
    limiter.take("b", 0.5)
    limiter.take("c", 0.5)  # "a" is the least recently used: dropped
    assert len(limiter) == 2
    assert limiter.take("a", 0.5) == 0.0


@pytest.mark.parametrize(("remote", "key"), [
    ("192.0.2.7", "192.0.2.7"), ("::ffff:192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"), ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"), (None, "unknown"), ("", "unknown"), ("weird", "weird"),
])
def test_clients_are_keyed_by_address_and_ipv6_by_64(remote: str | None, key: str) -> None:
    assert client_key(remote) == key


# -- send_offer -----------------------------------------------------------------------


async def test_send_offer_gets_the_answer(client: Client, handler: EchoHandler) -> None:
    url = str(client.make_url("/v1/signal"))
    answer = await send_offer(url, NETWORK, OTHER.public_key, OFFER, timeout=5)
    assert answer == {"type": "answer", "sdp": "reffo 0=v"}
    async with aiohttp.ClientSession() as session:  # the dialer may share one session
        assert await send_offer(url, NETWORK, OTHER.public_key, OFFER, timeout=5,
                                session=session) == answer
    assert handler.calls[0][:2] == (NETWORK, OTHER.public_key)


async def test_send_offer_reports_refusals(client: Client, handler: EchoHandler) -> None:
    url = str(client.make_url("/v1/signal"))
    with pytest.raises(SignalError, match="HTTP 403: this node is on network") as failed:
        await send_offer(url, "other", OTHER.public_key, OFFER, timeout=5)
    assert failed.value.status == 403


async def test_send_offer_reports_rate_limits(handler: EchoHandler) -> None:
    async with TestClient(TestServer(peer_app(handler, rate=0.5, burst=1))) as c:
        url = str(c.make_url("/v1/signal"))
        await send_offer(url, NETWORK, OTHER.public_key, OFFER, timeout=5)
        with pytest.raises(SignalError) as failed:
            await send_offer(url, NETWORK, OTHER.public_key, OFFER, timeout=5)
    assert (failed.value.status, failed.value.retry_after) == (429, 2.0)


async def test_send_offer_times_out(handler: EchoHandler) -> None:
    handler.delay = 5.0
    async with TestClient(TestServer(peer_app(handler))) as c:
        with pytest.raises(SignalTimeout, match=r"no answer within 0\.05 s"):
            await send_offer(str(c.make_url("/v1/signal")), NETWORK, OTHER.public_key, OFFER,
                             timeout=0.05)


async def test_send_offer_when_nobody_listens() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    with pytest.raises(SignalError, match=f"127.0.0.1:{free}"):
        await send_offer(f"http://127.0.0.1:{free}/v1/signal", NETWORK, OTHER.public_key,
                         OFFER, timeout=5)
    with pytest.raises(SignalError, match="not an http"):
        await send_offer("ftp://127.0.0.1/v1/signal", NETWORK, OTHER.public_key, OFFER, 5)


def raw_app(status: int, body: bytes, chunked: bool = False) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(status=status, body=body, content_type="application/json")
        response = web.StreamResponse(status=status)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(0, len(body), 8192):
            await response.write(body[i:i + 8192])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/signal", answer)
    return app


@pytest.mark.parametrize(("status", "body", "chunked", "message"), [
    (200, b'{"answer": {"type": "answer", "sdp": "' + b"a" * MAX_SIGNAL_BYTES + b'"}}',
     False, "over 65536 bytes"),
    (200, b'{"answer": {"type": "answer", "sdp": "' + b"a" * MAX_SIGNAL_BYTES + b'"}}',
     True, "over 65536 bytes"),
    (200, b'{"answer": {"type": "offer", "sdp": "x"}}', False, "not an answer"),
    (200, b"<html>", False, "not an answer"),
    (302, b"", False, "HTTP 302: no error message"),
    (502, b"Bad Gateway", False, "HTTP 502: no error message"),
])
async def test_send_offer_refuses_bad_replies(status: int, body: bytes, chunked: bool,
                                              message: str) -> None:
    async with TestClient(TestServer(raw_app(status, body, chunked))) as c:
        with pytest.raises(SignalError, match=message):
            await send_offer(str(c.make_url("/v1/signal")), NETWORK, OTHER.public_key, OFFER,
                             timeout=5)


class _SlowToConnect(aiohttp.TCPConnector):
    """Its first connection attempts never complete, as when SYNs are dropped."""

    def __init__(self, stalls: int) -> None:
        super().__init__()
        self.stalls = stalls
        self.attempts = 0

    async def _wrap_create_connection(self, *args: Any, timeout: Any, **kw: Any) -> Any:
        self.attempts += 1
        if self.attempts <= self.stalls:  # as aiohttp bounds the real connect: sock_connect
            async with asyncio.timeout(timeout.sock_connect):
                await asyncio.sleep(3600)
        return await super()._wrap_create_connection(*args, timeout=timeout, **kw)


async def test_send_offer_connects_again_when_a_connection_stalls(client: Client) -> None:
    """A dial under way when a partition heals should not wait for the kernel's next
    SYN retransmission (up to 4 s later): it connects again every `connect_every`."""
    url = str(client.make_url("/v1/signal"))
    connector = _SlowToConnect(stalls=2)
    async with aiohttp.ClientSession(connector=connector) as session:
        answer = await send_offer(url, NETWORK, OTHER.public_key, OFFER, timeout=5,
                                  session=session, connect_every=0.05)
    assert answer["type"] == "answer" and connector.attempts == 3
    stalled = _SlowToConnect(stalls=1000)
    async with aiohttp.ClientSession(connector=stalled) as session:
        with pytest.raises(SignalTimeout, match=r"no answer within 0\.3 s"):
            await send_offer(url, NETWORK, OTHER.public_key, OFFER, timeout=0.3,
                             session=session, connect_every=0.05)
    assert 3 <= stalled.attempts <= 7
