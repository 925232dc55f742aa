"""Connections to the peer port are capped and timed (issue 9, finding 3; transport.md
§3.11): idle or half-sent requests used to be kept forever, and about a thousand of them
from one address took every file descriptor of the node."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from liberation_node.api._http import Refusals, make_runner
from liberation_node.api.guard import ConnectionLimits, default_limits, raise_fd_limit
from liberation_node.api.metrics import render
from liberation_node.api.peer import peer_app

from .fakes import EchoHandler

LIMITS = ConnectionLimits(max_total=12, max_per_address=4, idle_timeout_s=0.6)
INFO = b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
async def port() -> AsyncIterator[tuple[int, Refusals]]:
    refusals = Refusals()
    app = peer_app(EchoHandler(), refusals=refusals, rate=1e9, burst=10**6, body_timeout=0.5)
    runner = make_runner(app, LIMITS)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1], refusals
    finally:
        await runner.cleanup()


async def connect(port: int, source: str = "127.0.0.1"
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def test_one_address_holds_at_most_its_share(port: tuple[int, Refusals]) -> None:
    number, refusals = port
    conns = [await connect(number) for _ in range(10)]
    verdicts = await asyncio.gather(*(closed_by_server(r, 0.3) for r, _ in conns))
    assert verdicts.count(False) == LIMITS.max_per_address  # the rest closed at once
    # Another address still gets in, and gets an answer.
    reader, writer = await connect(number, "127.0.0.2")
    writer.write(INFO)
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
    writer.close()
    assert refusals.connections["peer"] == 10 - LIMITS.max_per_address
    assert 'liberation_http_refused_connections_total{port="peer"} 6' \
        in render({}, {}, refusals, 0.0).splitlines()
    for _, w in conns:
        w.close()


async def test_the_total_is_capped_across_addresses(port: tuple[int, Refusals]) -> None:
    number, _ = port
    conns = [await connect(number, f"127.0.0.{2 + i // 4}") for i in range(16)]
    verdicts = await asyncio.gather(*(closed_by_server(r, 0.3) for r, _ in conns))
    assert verdicts.count(False) == LIMITS.max_total
    for _, w in conns:
        w.close()


@pytest.mark.parametrize("sent", [b"", b"GET /v1/info HTTP/1.1\r\nHost: x\r\n",
                                  b"G", INFO])
async def test_idle_and_half_sent_requests_are_closed(port: tuple[int, Refusals],
                                                      sent: bytes) -> None:
    """Nothing, half a request head, one byte, or a finished request left in keep-alive:
    closed once the idle timeout passes, whatever trickles in meanwhile."""
    number, _ = port
    reader, writer = await connect(number)
    writer.write(sent)
    started = time.monotonic()
    if sent == INFO:  # answered, then idle in keep-alive
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        started = time.monotonic()
    elif sent:
        await asyncio.sleep(LIMITS.idle_timeout_s / 2)
        writer.write(b"E" if sent == b"G" else b"X-Trickle: 1\r\n")  # no later deadline
    while not await closed_by_server(reader, 0.1):
        assert time.monotonic() - started < 5, "never closed"
    assert LIMITS.idle_timeout_s * 0.8 <= time.monotonic() - started < 3
    writer.close()


async def test_a_slow_body_gets_408(port: tuple[int, Refusals]) -> None:
    number, _ = port
    reader, writer = await connect(number)
    writer.write(b"POST /v1/signal HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{")
    status = await asyncio.wait_for(reader.readline(), 5)
    assert status.startswith(b"HTTP/1.1 408"), status
    writer.close()


def test_caps_stay_below_the_descriptor_limit() -> None:
    import resource

    before = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert raise_fd_limit() >= before  # raised to the hard limit, never lowered
    assert default_limits(1024).max_total == 256
    assert default_limits(100).max_total == 32
    assert default_limits(1 << 20).max_total == ConnectionLimits.max_total
