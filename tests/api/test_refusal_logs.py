"""Refused and malformed requests log one line each, rate-limited, without a traceback,
on both ports (issue 9 item 9); the counts reach /metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from liberation_node.api._http import LOG_BURST, SURFACE, Refusals, make_runner
from liberation_node.api.control import control_app
from liberation_node.api.peer import peer_app

from .fakes import Clock, EchoHandler, ReplicaNode

TOKEN = "5e" * 32


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def refusals(clock: Clock) -> Refusals:
    return Refusals(clock=clock)


class Served:
    """An app served the way node.py serves it (`make_runner`), on 127.0.0.1."""

    def __init__(self, app: web.Application, port: int, session: aiohttp.ClientSession):
        self.app, self.port, self.session = app, port, session

    async def get(self, path: str) -> int:
        async with self.session.get(f"http://127.0.0.1:{self.port}{path}") as response:
            await response.read()
            return response.status


@pytest.fixture(params=["control", "peer"])
async def served(request: pytest.FixtureRequest, refusals: Refusals) -> AsyncIterator[Served]:
    if request.param == "control":
        app = control_app(ReplicaNode(), TOKEN, refusals=refusals)
    else:
        app = peer_app(EchoHandler(), refusals=refusals, rate=1e9, burst=10**6)
    runner = make_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            yield Served(app, port, session)
    finally:
        await runner.cleanup()


async def raw(served: Served, data: bytes, *, read: bool = True) -> bytes:
    """Send bytes on a fresh connection; the reply (if `read`), then close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(data)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(4096), 10) if read else b""
    writer.close()
    await writer.wait_closed()
    return reply


def lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("liberation_node", "aiohttp"))]


async def test_oversized_headers_cost_a_few_lines(served: Served, refusals: Refusals,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    with caplog.at_level(logging.DEBUG):
        for _ in range(200):
            reply = await raw(served, request)
            assert reply.startswith(b"HTTP/1.") and b" 400 " in reply.split(b"\r\n")[0]
    records = lines(caplog)
    assert sum(refusals.malformed.values()) == 200
    assert len(records) <= LOG_BURST, [r.getMessage() for r in records]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in records)
    assert any("port" in r.getMessage() for r in records)
    assert served.app[SURFACE] in refusals.malformed


async def test_aborted_uploads_are_one_line_each(served: Served, refusals: Refusals,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = b"/api/v1/register" if served.app[SURFACE] == "control" else b"/v1/signal"
    head = (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % served.port
            + b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
            + b"Content-Type: application/json\r\nContent-Length: 9000\r\n\r\n{\"a\": ")
    with caplog.at_level(logging.DEBUG):
        for _ in range(30):
            await raw(served, head, read=False)
        for _ in range(200):  # let the server notice every closed connection
            if sum(refusals.gone.values()) == 30:
                break
            await asyncio.sleep(0.01)
    assert sum(refusals.gone.values()) == 30
    records = lines(caplog)
    assert 1 <= len(records) <= LOG_BURST
    assert all(r.exc_info is None and r.levelno < logging.ERROR for r in records)
    assert "went away" in records[0].getMessage()


async def test_refusals_are_counted_and_held_back_lines_reported(
        served: Served, refusals: Refusals, clock: Clock,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        for _ in range(100):
            assert await served.get("/nothing/here%0A") in (401, 404)
        assert len(lines(caplog)) == LOG_BURST
        assert sum(refusals.counts.values()) == 100
        clock.t += 1.0  # one more line may go out now, and it says what it held back
        await served.get("/nothing/here")
    records = lines(caplog)
    assert len(records) == LOG_BURST + 1
    assert f"({100 - LOG_BURST} similar lines suppressed)" in records[-1].getMessage()
    assert all("\n" not in r.getMessage() for r in records)  # a path cannot forge lines
