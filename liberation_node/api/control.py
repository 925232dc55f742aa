"""The control port (DESIGN §4): the local JSON API, the event stream and /metrics.

    GET  /                                 a minimal page (the status page comes later)
    GET  /api/v1/status                    node.status()
    GET  /api/v1/views                     every derived view (core/views.py) as JSON
    POST /api/v1/register                  {"name"?: str}                          -> 201 {"id"}
    POST /api/v1/messages                  {"text": str, "channel"?: "social",
                                            "priority"?: 1, "to"?: text node id}   -> 201 {"id"}
    POST /api/v1/messages/{id}/retract     (no body)                               -> 201 {"id"}
    POST /api/v1/ledger/claim              (no body; the current ISO week)         -> 201 {"id"}
    POST /api/v1/ledger/transfer           {"to": text node id, "amount_cents": int,
                                            "memo"?: str}                          -> 201 {"id"}
    GET  /api/v1/events                    WebSocket: one JSON text message per event
    GET  /metrics                          Prometheus text format

`{"id"}` is the new op's id in hex, answered once the op is committed to the
store (DESIGN §8). Errors are ``{"error": str}``: 400 names the bad field, 401
no or a wrong token, 403 a foreign Host or Origin, 409 the node refused (a
`LocalError`, e.g. "already registered"), 413 a body over 16 KiB, 503 writes
are paused for now (`NotWritable`: the own feed is being checked with peers,
or the store cannot commit; the reason says which).

Security. The port listens on loopback, but a browser on this machine runs
other sites' scripts, so: every POST and the event stream need
``Authorization: Bearer <control.token>`` (compared in constant time); every
request must carry a loopback ``Host`` with the port we listen on, which defeats
DNS rebinding (evil.example resolving to 127.0.0.1 still says Host:
evil.example); and an ``Origin``, when present, must be this very origin, which
stops cross-site form posts and WebSocket hijacking. No CORS headers are sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import logging
import string
import time
import weakref
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any, Protocol

from aiohttp import WSCloseCode, WSMsgType, hdrs, web
from aiohttp.typedefs import Handler
from yarl import URL

from ..core.bodies import (
    CHANNELS,
    MAX_AMOUNT_CENTS,
    MAX_MEMO_BYTES,
    MAX_NAME_BYTES,
    MAX_PRIORITY,
    MAX_TEXT_BYTES,
    MIN_PRIORITY,
)
from ..core.errors import LocalError, NotWritable
from ..core.identity import id_from_text
from ..core.views import Views
from . import metrics
from ._http import ApiError, new_app, read_json_object

log = logging.getLogger("liberation_node.api")

MAX_BODY_BYTES = 16 * 1024
MAX_SUBSCRIBERS = 32  # open event streams; each holds a subscription on the node's bus
WS_HEARTBEAT_S = 30.0
OP_ID_HEX = 64
HEX_DIGITS = frozenset(string.hexdigits)

INDEX_HTML = """<!doctype html>
<html lang="en"><meta charset="utf-8"><title>liberation-node</title>
<h1>liberation-node</h1>
<p>The status page is not built yet. The JSON API:
<a href="/api/v1/status">status</a>, <a href="/api/v1/views">views</a>,
<a href="/metrics">metrics</a>.</p>
</html>
"""


class NodeControl(Protocol):
    """What the running node offers its control port. Methods that write return the
    new op's id in hex and raise `LocalError` (message for a person) when refused."""

    def status(self) -> dict[str, Any]:
        """JSON-able: at least node_id (text), network, peers (list of {id, conn, rtt_ms,
        address}), ops, digest (hex); also records, pending, pool_available_cents,
        humans, uptime_s, version when the node has them."""
        ...

    def views(self) -> Views: ...

    async def register(self, name: str) -> str: ...

    async def post(self, text: str, channel: str, priority: int, to: bytes | None) -> str: ...

    async def claim(self) -> str:
        """Claim the weekly flow for the current ISO week."""
        ...

    async def transfer(self, to: bytes, amount_cents: int, memo: str) -> str: ...

    async def retract(self, post_id: bytes) -> str: ...

    def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """The event bus from now on: JSON-able dicts with a "type" key. The stream is
        closed (``aclose``) when the client goes; it ends when the node stops."""
        ...


def control_app(node: NodeControl, token: str, *, allowed_hosts: Collection[str] = (),
                clock: Callable[[], float] = time.monotonic,
                peer_url: Callable[[], str] | None = None) -> web.Application:
    """The control port's application.

    `token` is the control token (datadir `control_token()`); `allowed_hosts`
    adds host names to the loopback ones a request's Host may name (for a node
    whose control port listens on another address); `clock` (monotonic seconds)
    times the digest age in /metrics; `peer_url` names the peer port for a dialer
    that came here by mistake (421 on the peer port's paths, /v1/...).
    """
    if not token:
        raise ValueError("an empty control token would let anybody in")
    hosts = {h.lower() for h in allowed_hosts}
    secret = token.encode("utf-8")
    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
    digest = _DigestWatch(since=clock())

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        _check_origin(request, hosts)
        if request.path.startswith("/v1/") and peer_url is not None:
            # A peer's signaling URL pointing at this port: say where to go instead
            # (transport.md §3.7), before asking for a token the dialer cannot have.
            where = peer_url()
            return web.json_response({"error": "this is the control port of a "
                                      f"liberation-node; its peer port is {where}",
                                      "peer_url": where}, status=421)
        if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD) or \
                request.path == "/api/v1/events":
            _check_token(request, secret)
        try:
            return await handler(request)
        except NotWritable as exc:
            raise ApiError(503, str(exc)) from None
        except LocalError as exc:
            raise ApiError(409, str(exc) or "refused by the node") from None

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=INDEX_HTML, content_type="text/html")

    async def status(request: web.Request) -> web.Response:
        return web.json_response(node.status())

    async def views(request: web.Request) -> web.Response:
        return web.json_response(dataclasses.asdict(node.views()))

    async def register(request: web.Request) -> web.Response:
        body = await _body(request, "name")
        return _created(await node.register(_text(body, "name", MAX_NAME_BYTES, default="")))

    async def post(request: web.Request) -> web.Response:
        body = await _body(request, "text", "channel", "priority", "to")
        text = _text(body, "text", MAX_TEXT_BYTES, min_bytes=1)
        channel = _text(body, "channel", 16, default="social")
        if channel not in CHANNELS:
            raise ApiError(400, f"channel: one of {', '.join(CHANNELS)}")
        priority = _int(body, "priority", MIN_PRIORITY, MAX_PRIORITY, default=1)
        to = _node_id(body, "to", required=False)
        if (channel == "direct") != (to is not None):
            raise ApiError(400, "to: required for the direct channel, and only for it")
        return _created(await node.post(text, channel, priority, to))

    async def retract(request: web.Request) -> web.Response:
        await _body(request)
        op_id = request.match_info["id"]
        if len(op_id) != OP_ID_HEX or not set(op_id) <= HEX_DIGITS:
            raise ApiError(400, f"id: an op id is {OP_ID_HEX} hex characters")
        return _created(await node.retract(bytes.fromhex(op_id)))

    async def claim(request: web.Request) -> web.Response:
        await _body(request)
        return _created(await node.claim())

    async def transfer(request: web.Request) -> web.Response:
        body = await _body(request, "to", "amount_cents", "memo")
        to = _node_id(body, "to", required=True)
        assert to is not None
        amount = _int(body, "amount_cents", 1, MAX_AMOUNT_CENTS)
        memo = _text(body, "memo", MAX_MEMO_BYTES, default="")
        return _created(await node.transfer(to, amount, memo))

    async def events(request: web.Request) -> web.WebSocketResponse:
        if len(sockets) >= MAX_SUBSCRIBERS:
            raise ApiError(503, f"already {MAX_SUBSCRIBERS} event streams open")
        ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT_S, max_msg_size=4096)
        await ws.prepare(request)
        sockets.add(ws)
        stream = node.subscribe()
        pump = asyncio.create_task(_pump(stream, ws))
        try:
            async for msg in ws:  # clients have nothing to say; this waits for the close
                if msg.type is WSMsgType.ERROR:
                    break
        finally:
            pump.cancel()
            await asyncio.wait([pump])
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
            sockets.discard(ws)
        return ws

    async def metrics_text(request: web.Request) -> web.Response:
        info = node.status()
        age = digest.age(str(info.get("digest", "")), clock())
        return web.Response(body=metrics.render(info, age).encode(),
                            headers={hdrs.CONTENT_TYPE: metrics.CONTENT_TYPE})

    async def close_streams(app: web.Application) -> None:
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")

    app = new_app(MAX_BODY_BYTES, guard)
    app.on_shutdown.append(close_streams)
    app.router.add_get("/", index)
    app.router.add_get("/api/v1/status", status)
    app.router.add_get("/api/v1/views", views)
    app.router.add_post("/api/v1/register", register)
    app.router.add_post("/api/v1/messages", post)
    app.router.add_post("/api/v1/messages/{id}/retract", retract)
    app.router.add_post("/api/v1/ledger/claim", claim)
    app.router.add_post("/api/v1/ledger/transfer", transfer)
    app.router.add_get("/api/v1/events", events)
    app.router.add_get("/metrics", metrics_text)
    return app


@dataclasses.dataclass(slots=True)
class _DigestWatch:
    """How long the digest has held still, as far as scrapes see: a change between two
    scrapes is dated at the second, so the age is late by one scrape interval at most."""

    since: float  # when the app was made, for the first scrape
    digest: str | None = None

    def age(self, digest: str, now: float) -> float:
        if self.digest is None:
            self.digest = digest
        elif digest != self.digest:
            self.digest, self.since = digest, now
        return now - self.since


async def _pump(stream: AsyncIterator[dict[str, Any]], ws: web.WebSocketResponse) -> None:
    """Forward events until the stream ends (the node stops) or the client goes."""
    try:
        async for event in stream:
            try:
                await ws.send_json(event)
            except TypeError:  # not JSON-able: the node's bug; drop the event, not the stream
                log.exception("event not JSON-able: %r", event.get("type"))
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"event stream ended")
    except ConnectionError:  # the client vanished; the handler notices too
        pass
    except Exception:
        log.exception("event stream failed")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")


# -- security -------------------------------------------------------------------------


def _split_host(value: str) -> tuple[str, int] | None:
    """A Host header as (lowercase host, port), or None if it is not one."""
    try:
        url = URL(f"http://{value}")
    except ValueError:
        return None
    if url.raw_host is None or url.port is None or url.path not in ("", "/") \
            or url.user is not None or url.query_string:
        return None
    return url.raw_host.lower(), url.port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_origin(request: web.Request, extra_hosts: Collection[str]) -> None:
    """403 unless Host names us (loopback or an allowed name, our port) and Origin,
    when sent, is this same origin."""
    host_header = request.headers.get(hdrs.HOST)
    host = _split_host(host_header) if host_header else None
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    port = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
    if host is None or host[1] != port or not (_is_loopback(host[0]) or host[0] in extra_hosts):
        raise ApiError(403, "Host must name this node on loopback with its port")
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:  # not from a browser, or a same-origin GET
        return
    try:
        url = URL(origin)
        ok = url.scheme == "http" and (url.raw_host or "").lower() == host[0] \
            and url.port == host[1]
    except ValueError:
        ok = False
    if not ok:
        raise ApiError(403, "cross-origin requests are refused")


def _check_token(request: web.Request, secret: bytes) -> None:
    scheme, _, credentials = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    given = credentials.strip().encode("utf-8", "surrogateescape")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given, secret):
        raise ApiError(401, "a valid 'Authorization: Bearer <control token>' is required",
                       {hdrs.WWW_AUTHENTICATE: 'Bearer realm="liberation-node"'})


# -- request fields -------------------------------------------------------------------


async def _body(request: web.Request, *fields: str) -> dict[str, Any]:
    body = await read_json_object(request, MAX_BODY_BYTES)
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ApiError(400, f"{unknown[0]}: unknown field"
                       + (f" (known: {', '.join(fields)})" if fields else " (send no body)"))
    return body


def _text(body: dict[str, Any], name: str, max_bytes: int, *, min_bytes: int = 0,
          default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise ApiError(400, f"{name}: a string is required")
    if not min_bytes <= len(value.encode("utf-8")) <= max_bytes:
        raise ApiError(400, f"{name}: {min_bytes} to {max_bytes} bytes of UTF-8")
    return value


def _int(body: dict[str, Any], name: str, lo: int, hi: int, default: int | None = None) -> int:
    value = body.get(name, default)
    if type(value) is not int or not lo <= value <= hi:  # bool is not an int here
        raise ApiError(400, f"{name}: an integer from {lo} to {hi} is required")
    return value


def _node_id(body: dict[str, Any], name: str, *, required: bool) -> bytes | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name}: a node id (text form, ln...) is required")
    try:
        return id_from_text(value)
    except ValueError as exc:
        raise ApiError(400, f"{name}: {exc}") from None


def _created(op_id: str) -> web.Response:
    return web.json_response({"id": op_id}, status=201)
