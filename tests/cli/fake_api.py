"""A control port that speaks the control API's contract (docs/api.md) from canned data,
for testing the CLI's reading commands: paging by limit and cursor, the filters,
the token, 404s and the event WebSocket behave as the contract says; the data is
whatever a test puts in `FakeApi`'s lists."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.api.fakes import ME, NETWORK, OTHER

THIRD = "lnthirdnodeidthatisnotcheckedbythefakeapi000000000000000000"
OP = "ab" * 32
NOW_MS = 1_795_000_000_000


def human(node_id: str, name: str, balance: int, **kw: Any) -> dict[str, Any]:
    return {"id": node_id, "name": name, "balance_cents": balance, "spendable_cents": balance,
            "total_received_cents": balance, "registered_ms": NOW_MS - 86_400_000,
            "last_claim_ms": None, "status": "active", **kw}


def message(n: int, author: str, name: str, text: str, **kw: Any) -> dict[str, Any]:
    return {"id": f"{n:02x}" * 32, "author": author, "author_name": name, "channel": "social",
            "priority": 1, "text": text, "to": None, "timestamp_ms": NOW_MS - n * 60_000,
            "retracted": False, "reach": 2, **kw}


@dataclass
class FakeApi:
    token: str = ""
    status: dict[str, Any] = field(default_factory=lambda: {
        "node_id": ME.text, "name": "ada", "network": NETWORK, "version": "0.1.0",
        "peers": [{"id": OTHER.text, "conn": 1, "rtt_ms": 12, "address": "127.0.0.1:5000"}],
        "ops": 7, "authors": 2, "records": 3, "pending": 0, "digest": "00" * 32,
        "pool_available_cents": 1_899_999_979_120_000, "humans": 2, "uptime_s": 3725.0,
        "peer_url": "http://127.0.0.1:7411/v1/signal",
        "health": {"ok": True, "checks": {"store": {"ok": True}}}, "transport": "ready",
        "join_urls": [f"http://192.0.2.7:7411/v1/signal#{ME.text}",
                      f"http://198.51.100.7:7411/v1/signal#{ME.text}"],
        "clock_offset_ms": -40, "data_dir": "/somewhere", "writable": True,
        "write_error": None})
    peers: list[dict[str, Any]] = field(default_factory=lambda: [
        {"id": OTHER.text, "name": "bob", "state": "open", "rtt_ms": 12, "bytes_in": 2048,
         "bytes_out": 5_000_000, "since_ms": NOW_MS - 65_000, "found_by": "bootstrap",
         "address": "127.0.0.1:5000", "direction": "out"}])
    ledger: dict[str, Any] = field(default_factory=lambda: {
        "pool": {"total_cents": 1_900_000_000_000_000, "available_cents": 1_899_999_979_120_000,
                 "distributed_cents": 20_880_000},
        "humans": 2, "me": human(ME.text, "ada", 80_000)})
    humans: list[dict[str, Any]] = field(default_factory=lambda: [
        human(ME.text, "ada", 80_000), human(OTHER.text, "bob", 1_250)])
    transactions: list[dict[str, Any]] = field(default_factory=lambda: [
        {"id": "cd" * 32, "human_id": ME.text, "kind": "transfer", "amount_cents": 1_250,
         "counterparty": OTHER.text, "memo": "lunch", "week": None,
         "timestamp_ms": NOW_MS - 1000, "status": "applied", "reason": None},
        {"id": "ef" * 32, "human_id": ME.text, "kind": "claim", "amount_cents": 80_000,
         "counterparty": None, "memo": None, "week": 202648, "timestamp_ms": NOW_MS - 5000,
         "status": "applied", "reason": None}])
    messages: list[dict[str, Any]] = field(default_factory=lambda: [
        message(1, ME.text, "ada", "hello mesh"),
        message(2, OTHER.text, "bob", "psst", channel="direct", to=ME.text),
        message(3, ME.text, "ada", "old news", retracted=True),
        message(4, OTHER.text, "bob", "for sale: bike", channel="billboard", priority=3)])
    topology: dict[str, Any] = field(default_factory=lambda: {
        "nodes": [{"id": ME.text, "name": "ada", "me": True, "connected": False,
                   "expires_ms": NOW_MS + 300_000},
                  {"id": OTHER.text, "name": "bob", "me": False, "connected": True,
                   "expires_ms": NOW_MS + 200_000},
                  {"id": THIRD, "name": "", "me": False, "connected": False,
                   "expires_ms": NOW_MS + 100_000}],
        "links": [{"a": ME.text, "b": OTHER.text, "rtt_ms": 12},
                  {"a": OTHER.text, "b": THIRD, "rtt_ms": 30}],
        "routes": [{"to": OTHER.text, "next_hop": OTHER.text, "hops": 1},
                   {"to": THIRD, "next_hop": OTHER.text, "hops": 2}]})
    login_url: str = "http://127.0.0.1:7412/login?code=onetime"
    refuse: str | None = None  # a 409 message for every write, when set
    requests: list[str] = field(default_factory=list)  # "GET /path?query", in order
    writes: list[tuple[str, Any]] = field(default_factory=list)
    events: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    streaming: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        @web.middleware
        async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
            self.requests.append(f"{request.method} {request.path_qs}")
            if request.path != "/api/v1/health" and \
                    request.headers.get("Authorization") != f"Bearer {self.token}":
                return _error(401, "a valid 'Authorization: Bearer <control token>' is "
                                   "required")
            try:
                response: web.StreamResponse = await handler(request)
                return response
            except web.HTTPNotFound:
                return _error(404, "not found")

        app = web.Application(middlewares=[guard])
        r = app.router
        r.add_get("/api/v1/status", _answer(lambda: self.status))
        r.add_get("/api/v1/health", _answer(lambda: self.status["health"]))
        r.add_get("/api/v1/peers", _answer(lambda: {"peers": self.peers}))
        r.add_get("/api/v1/ledger", _answer(lambda: self.ledger))
        r.add_get("/api/v1/ledger/humans", self._humans)
        r.add_get("/api/v1/ledger/humans/{id}", self._human)
        r.add_get("/api/v1/ledger/transactions", self._transactions)
        r.add_get("/api/v1/messages", self._messages)
        r.add_get("/api/v1/topology", _answer(lambda: self.topology))
        r.add_get("/api/v1/events", self._events)
        r.add_post("/api/v1/login", _answer(
            lambda: {"url": self.login_url, "expires_ms": NOW_MS + 60_000}))
        for path in ("/api/v1/register", "/api/v1/messages", "/api/v1/ledger/claim",
                     "/api/v1/ledger/transfer", "/api/v1/messages/{id}/retract"):
            r.add_post(path, self._write)
        return app

    async def _humans(self, request: web.Request) -> web.Response:
        return _page(request, "humans", self.humans)

    async def _human(self, request: web.Request) -> web.Response:
        for h in self.humans:
            if h["id"] == request.match_info["id"]:
                return web.json_response(h)
        return _error(404, "not registered")

    async def _transactions(self, request: web.Request) -> web.Response:
        who = request.query.get("human")
        rows = [t for t in self.transactions
                if who is None or who in (t["human_id"], t["counterparty"])]
        return _page(request, "transactions", rows)

    async def _messages(self, request: web.Request) -> web.Response:
        q = request.query
        state = q.get("state", "active")
        rows = [m for m in self.messages
                if (q.get("channel") in (None, m["channel"]))
                and (q.get("author") in (None, m["author"]))
                and (q.get("to") in (None, m["to"]))
                and (state == "all" or m["retracted"] == (state == "retracted"))]
        return _page(request, "messages", rows)

    async def _write(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.writes.append((request.path, body))
        if self.refuse is not None:
            return _error(409, self.refuse)
        return web.json_response({"id": f"{len(self.writes):064x}"}, status=201)

    async def _events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.streaming.set()
        while (event := await self.events.get()) is not None:
            await ws.send_str(json.dumps(event))
        await ws.close()
        return ws


def _answer(body: Callable[[], Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler answering `body()` as JSON (read when asked: tests change the data)."""
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body())

    return handler


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _page(request: web.Request, key: str, rows: list[dict[str, Any]]) -> web.Response:
    """The contract's paging: `limit` (default 50, at most 500) and an opaque cursor."""
    try:
        limit = int(request.query.get("limit", "50"))
        start = int(request.query.get("cursor", "0"))
    except ValueError:
        return _error(400, "limit and cursor are numbers here")
    if not 1 <= limit <= 500:
        return _error(400, "limit: 1 to 500")
    end = start + limit
    return web.json_response({key: rows[start:end],
                              "next_cursor": str(end) if end < len(rows) else None})
