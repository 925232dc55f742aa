"""Browsers on the peer port (transport.md §3.9): only listed web origins may signal,
POST /v1/signal needs Content-Type: application/json, and refused offers are logged
once each, rate-limited. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from liberation_node.api._http import LOG_BURST, LOG_RATE, Refusals
from liberation_node.api.peer import parse_origin, peer_app

from .fakes import NETWORK, OTHER, Clock, EchoHandler, error_of

Client = TestClient[web.Request, web.Application]
APP = "http://127.0.0.1:8123"
BODY: dict[str, Any] = {"network": NETWORK, "from": OTHER.text,
                        "offer": {"type": "offer", "sdp": "v=0 offer"}}
PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type"}


@pytest.fixture
def handler() -> EchoHandler:
    return EchoHandler()


@pytest.fixture
async def client(handler: EchoHandler) -> AsyncIterator[Client]:
    app = peer_app(handler, burst=1000, allow_origins=[APP, "https://App.Example.org:443"])
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_a_listed_origin_gets_preflight_and_answer(client: Client,
                                                         handler: EchoHandler) -> None:
    response = await client.options("/v1/signal", headers=PREFLIGHT)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == APP
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"].lower() == "content-type"
    response = await client.post("/v1/signal", json=BODY, headers={"Origin": APP})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == APP
    assert response.headers["Vary"] == "Origin"
    assert (await response.json())["answer"]["type"] == "answer"
    # Errors too carry the header, so the page can read why.
    response = await client.post("/v1/signal", json={**BODY, "network": "x"},
                                 headers={"Origin": "https://app.example.org"})
    assert response.status == 403
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.org"


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:8124", "null",
                                    "http://127.0.0.1:8123/", "HTTP://127.0.0.1:8123"])
async def test_any_other_origin_is_refused_before_anything_is_made(
        client: Client, handler: EchoHandler, origin: str) -> None:
    response = await client.options("/v1/signal", headers={**PREFLIGHT, "Origin": origin})
    assert response.status == 403 and "Access-Control-Allow-Origin" not in response.headers
    message = await error_of(await client.post("/v1/signal", json=BODY,
                                               headers={"Origin": origin}), 403)
    assert "--allow-origin" in message
    assert handler.calls == []


async def test_no_origin_is_allowed_by_default(handler: EchoHandler) -> None:
    async with TestClient(TestServer(peer_app(handler))) as c:
        response = await c.options("/v1/signal", headers=PREFLIGHT)
        assert response.status == 403
        await error_of(await c.post("/v1/signal", json=BODY, headers={"Origin": APP}), 403)
        assert (await c.post("/v1/signal", json=BODY)).status == 200  # a node, no Origin
        assert "Vary" not in (await c.get("/v1/info")).headers
    assert len(handler.calls) == 1


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
async def test_signal_needs_the_json_content_type(client: Client, handler: EchoHandler,
                                                  content_type: str | None) -> None:
    """What a form or a no-cors fetch can send without a preflight is refused."""
    import json

    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/v1/signal", data=json.dumps(BODY).encode(),
                                 headers=headers, skip_auto_headers=["Content-Type"])
    assert "application/json" in await error_of(response, 415)
    assert handler.calls == []
    response = await client.post("/v1/signal", data=json.dumps(BODY).encode(),
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status == 200


@pytest.mark.parametrize(("given", "origin"), [
    ("https://App.Example.org", "https://app.example.org"),
    ("https://app.example.org:443", "https://app.example.org"),
    ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
    ("http://[::1]:80", "http://[::1]"),
])
def test_origins_are_written_as_browsers_send_them(given: str, origin: str) -> None:
    assert parse_origin(given) == origin


@pytest.mark.parametrize("bad", ["null", "*", "app.example.org", "https://a.org/path",
                                 "https://a.org/", "ftp://a.org", "https://a.org:99999"])
def test_bad_origins_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        parse_origin(bad)


async def test_refused_offers_are_logged_once_each_and_rate_limited(
        handler: EchoHandler, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    refusals = Refusals(clock=clock)
    app = peer_app(handler, burst=1000, clock=clock, refusals=refusals)
    async with TestClient(TestServer(app)) as c:
        with caplog.at_level(logging.INFO, logger="liberation_node.http"):
            for _ in range(LOG_BURST + 20):
                await c.post("/v1/signal", json={**BODY, "network": "other"})
            said = [r.getMessage() for r in caplog.records]
            assert len(said) == LOG_BURST
            assert all("refused an offer from 127.0.0.1: 403 this node is on network" in m
                       for m in said)
            assert not any(r.exc_info for r in caplog.records)  # one line, no traceback
            clock.t += 1 / LOG_RATE
            await c.post("/v1/signal", json=BODY, headers={"Origin": "https://evil.example"})
            last = caplog.records[-1].getMessage()
            assert "origin 'https://evil.example'" in last and "403 signaling from" in last
            assert last.endswith("(20 similar lines suppressed)")
            await c.get("/v1/info")
            await c.post("/v1/signal", json=BODY)  # answered: nothing to log
            assert len(caplog.records) == LOG_BURST + 1
    assert refusals.counts["peer", 403] == LOG_BURST + 21


def test_relayed_offers_share_the_log_and_its_limit(caplog: pytest.LogCaptureFixture) -> None:
    """The node's one `Refusals` takes HTTP and relayed offers alike: a flood of either
    cannot flood the log."""
    clock = Clock()
    refusals = Refusals(clock=clock)
    with caplog.at_level(logging.INFO, logger="liberation_node.http"):
        for n in range(100):
            refusals.relayed_offer("lnx", f"reason {n}")
        assert len(caplog.records) == LOG_BURST and refusals.suppressed == 100 - LOG_BURST
        clock.t += 3 / LOG_RATE  # room for three more lines
        for n in range(5):
            refusals.relayed_offer("lny", f"late {n}")
    said = [r.getMessage() for r in caplog.records]
    assert said[LOG_BURST] == f"refused a relayed offer from lny: late 0 ({100 - LOG_BURST} " \
                              "similar lines suppressed)"
    assert said[LOG_BURST + 1:] == ["refused a relayed offer from lny: late 1",
                                    "refused a relayed offer from lny: late 2"]
    assert refusals.relayed == 105
