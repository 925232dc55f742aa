"""The control API's reads (docs/api.md, "Reads"): each answers from the node's
`Index` (core/queries.py) in O(page), never by deriving every view.

Query parameters are checked like bodies: an unknown name, a bad value or a
cursor this node did not hand out is a 400 that names the parameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..core.bodies import CHANNELS
from ..core.identity import id_from_text
from ..core.queries import STATES, BadCursor, Index, Page
from ._http import ApiError

if TYPE_CHECKING:
    from .control import NodeControl

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
VIEWS_CACHE_MS = 1_000  # /api/v1/views: one build per digest and second, however many ask


def _query(request: web.Request, *names: str) -> dict[str, str]:
    query = request.rel_url.query
    for name in query:
        if name not in names:
            raise ApiError(400, f"{name}: unknown query parameter"
                           + (f" (known: {', '.join(names)})" if names else ""))
        if len(query.getall(name)) > 1:
            raise ApiError(400, f"{name}: given more than once")
    return {name: query[name] for name in names if name in query}


def _limit(query: dict[str, str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LIMIT):
        raise ApiError(400, f"limit: an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _node_id(query: dict[str, str], name: str) -> bytes | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return id_from_text(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name}: {exc}") from None


def _paged(fetch: Callable[[], Page[Any]], key: str) -> web.Response:
    try:
        page = fetch()
    except BadCursor as exc:
        raise ApiError(400, str(exc)) from None
    return web.json_response({key: [dataclasses.asdict(row) for row in page.items],
                              "next_cursor": page.next_cursor})


def add_routes(app: web.Application, node: NodeControl) -> None:
    views_cache: dict[str, Any] = {}

    def index() -> Index:
        return node.index()

    async def status(request: web.Request) -> web.Response:
        _query(request)
        return web.json_response(node.status())

    async def health(request: web.Request) -> web.Response:
        _query(request)
        report = node.health_report()
        return web.json_response(report, status=200 if report.get("ok") else 503)

    async def peers(request: web.Request) -> web.Response:
        _query(request)
        return web.json_response({"peers": node.peers()})

    async def ledger(request: web.Request) -> web.Response:
        _query(request)
        idx = index()
        me = idx.human(idx.local)
        return web.json_response({"pool": dataclasses.asdict(idx.pool()),
                                  "humans": idx.humans_count(),
                                  "me": dataclasses.asdict(me) if me else None})

    async def humans(request: web.Request) -> web.Response:
        query = _query(request, "limit", "cursor")
        return _paged(lambda: index().humans(_limit(query), query.get("cursor")), "humans")

    async def human(request: web.Request) -> web.Response:
        _query(request)
        try:
            node_id = id_from_text(request.match_info["id"])
        except ValueError as exc:
            raise ApiError(400, f"id: {exc}") from None
        row = index().human(node_id)
        if row is None:
            raise ApiError(404, "no human registered with that id")
        return web.json_response(dataclasses.asdict(row))

    async def transactions(request: web.Request) -> web.Response:
        query = _query(request, "human", "limit", "cursor")
        who = _node_id(query, "human")
        return _paged(lambda: index().transactions(_limit(query), query.get("cursor"), who),
                      "transactions")

    async def messages(request: web.Request) -> web.Response:
        query = _query(request, "channel", "author", "to", "state", "limit", "cursor")
        channel = query.get("channel")
        if channel is not None and channel not in CHANNELS:
            raise ApiError(400, f"channel: one of {', '.join(CHANNELS)}")
        state = query.get("state", "active")
        if state not in STATES:
            raise ApiError(400, f"state: one of {', '.join(STATES)}")
        author, to = _node_id(query, "author"), _node_id(query, "to")
        limit = _limit(query)
        return _paged(lambda: index().messages(limit, query.get("cursor"), now=node.now_ms(),
                                               channel=channel, author=author, to=to,
                                               state=state), "messages")

    async def topology(request: web.Request) -> web.Response:
        _query(request)
        return web.json_response(dataclasses.asdict(node.topology()))

    async def views(request: web.Request) -> web.Response:
        """Every derived view at once (kept for older clients; costly: cached briefly)."""
        _query(request)
        digest, second = str(node.status().get("digest")), node.now_ms() // VIEWS_CACHE_MS
        if views_cache.get("key") != (digest, second):
            views_cache["key"] = (digest, second)
            views_cache["body"] = web.json_response(dataclasses.asdict(node.views())).body
        return web.Response(body=views_cache["body"], content_type="application/json")

    app.router.add_get("/api/v1/status", status)
    app.router.add_get("/api/v1/health", health)
    app.router.add_get("/api/v1/peers", peers)
    app.router.add_get("/api/v1/ledger", ledger)
    app.router.add_get("/api/v1/ledger/humans", humans)
    app.router.add_get("/api/v1/ledger/humans/{id}", human)
    app.router.add_get("/api/v1/ledger/transactions", transactions)
    app.router.add_get("/api/v1/messages", messages)
    app.router.add_get("/api/v1/topology", topology)
    app.router.add_get("/api/v1/views", views)
