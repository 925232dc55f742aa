"""What a dialer says when a signaling URL is wrong (transport.md §3.7, issue 8 item 2),
and the scope check on announced URLs (§7.7); real HTTP on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from liberation_node.api.control import control_app
from liberation_node.api.peer import SignalError, named_peers, peer_app, send_offer
from liberation_node.core import scope
from liberation_node.core.referrals import MAX_REFERRALS, URLS_PER_REFERRAL, Referral

from .fakes import ME, NETWORK, OTHER, EchoHandler, ReplicaNode

OFFER = {"type": "offer", "sdp": "v=0 offer"}
PEER_URL = "http://127.0.0.1:7411/v1/signal"


async def offer_to(url: str, **kw: object) -> SignalError:
    with pytest.raises(SignalError) as failed:
        await send_offer(url, NETWORK, OTHER.public_key, OFFER, timeout=5,
                         **kw)  # type: ignore[arg-type]
    return failed.value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_nothing_listening_is_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/signal"
    error = await offer_to(url)
    assert str(error).startswith(f"connection refused at {url}")
    assert "ssl" not in str(error)  # it used to say "ssl:default" about a plain http URL


async def test_the_control_port_says_where_the_peer_port_is() -> None:
    app = control_app(ReplicaNode(), "t" * 64, peer_url=lambda: PEER_URL)
    async with TestClient(TestServer(app)) as c:
        url = str(c.make_url("/v1/signal"))
        error = await offer_to(url)
        assert str(error) == f"{url}: that is a control port; the peer port is {PEER_URL}"
        assert error.status == 421
        # Before this answer existed, a control port asked for its token: still recognised.
        old = control_app(ReplicaNode(), "t" * 64)
    async with TestClient(TestServer(old)) as c:
        error = await offer_to(str(c.make_url("/v1/signal")))
        assert "that is a control port (it asks for the control token)" in str(error)


async def test_a_404_names_the_expected_path() -> None:
    async with TestClient(TestServer(peer_app(EchoHandler()))) as c:
        base = str(c.make_url("/"))
        error = await offer_to(base + "signal")
        assert str(error) == (f"{base}signal: HTTP 404: nothing there; the signaling path "
                              f"is /v1/signal ({base}v1/signal)")

    async def elsewhere(request: web.Request) -> web.Response:
        return web.Response(status=404, text="not found")

    app = web.Application()
    app.router.add_post("/other", elsewhere)
    async with TestClient(TestServer(app)) as c:
        error = await offer_to(str(c.make_url("/v1/signal")))
        assert "nothing answers POST /v1/signal there" in str(error)


async def test_an_announced_url_out_of_scope_is_never_contacted() -> None:
    handler = EchoHandler()
    async with TestClient(TestServer(peer_app(handler))) as c:
        port = c.port
        for url in (f"http://127.0.0.1:{port}/v1/signal", f"http://localhost:{port}/v1/signal",
                    f"http://[::ffff:127.0.0.1]:{port}/v1/signal"):
            error = await offer_to(url, scopes=scope.ALWAYS)
            assert "loopback" in str(error) and "out of scope" in str(error)
        assert handler.calls == []  # nothing reached the port
        # A node that uses loopback itself may dial it (the loopback tests).
        allowed = scope.ALWAYS | {scope.LOOPBACK}
        answer = await send_offer(f"http://localhost:{port}/v1/signal", NETWORK,
                                  OTHER.public_key, OFFER, timeout=5, scopes=allowed)
        assert answer["type"] == "answer" and len(handler.calls) == 1


async def test_a_full_node_names_peers_and_the_dialer_reads_them() -> None:
    handler = EchoHandler()
    handler.full = True
    handler.named = (Referral(ME.public_key, ("http://10.1.2.3:7411/v1/signal",)),)
    async with TestClient(TestServer(peer_app(handler))) as c:
        url = str(c.make_url("/v1/signal"))
        response = await c.post("/v1/signal", json={"network": NETWORK, "from": OTHER.text,
                                                    "offer": OFFER})
        assert response.status == 503
        assert await response.json() == {
            "error": "no room for more peers",
            "peers": [{"id": ME.text, "urls": ["http://10.1.2.3:7411/v1/signal"]}]}
        error = await offer_to(url)
    assert (error.status, error.peers) == (503, handler.named)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=80),
                    lambda inner: st.lists(inner, max_size=6)
                    | st.dictionaries(st.sampled_from(["id", "urls", "peers", "x"]), inner,
                                      max_size=4), max_leaves=30))
def test_any_json_gives_at_most_a_few_well_formed_named_peers(body: object) -> None:
    named = named_peers({"peers": body} if not isinstance(body, dict) else body)
    assert len(named) <= MAX_REFERRALS
    for referral in named:
        assert len(referral.node_id) == 32 and 0 < len(referral.urls) <= URLS_PER_REFERRAL
        assert all(isinstance(u, str) and 0 < len(u) <= 2048 for u in referral.urls)


def test_named_peers_keep_the_well_formed_entries_in_order() -> None:
    good = {"id": ME.text, "urls": ["http://a/v1/signal", "http://b/v1/signal", "http://c"]}
    body = {"peers": [good, {"id": "ln-nonsense", "urls": ["x"]}, {"id": OTHER.text},
                      {"id": OTHER.text, "urls": [7, "x" * 3000]}, 5,
                      {"id": OTHER.text, "urls": ["http://d/v1/signal"]}]}
    assert named_peers(body) == (Referral(ME.public_key, ("http://a/v1/signal",
                                                          "http://b/v1/signal")),)
