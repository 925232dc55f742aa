"""The control port (DESIGN §4): the status page, the JSON API, the event stream, /metrics.

docs/api.md is the reference, with examples. In short:

    GET  /                                 the status page (static, api/static/)
    GET  /login?code=                      redeem a one-time login link: cookie, then /
    GET  /api/v1/health                    {"ok", "checks"}: 200 or 503
    GET  /api/v1/status | peers | topology | ledger | ledger/humans[/{id}]
         | ledger/transactions | messages | views              reads (api/reads.py)
    POST /api/v1/login                     (token only) -> {"url", "expires_ms"}
    POST /api/v1/logout                    end this browser's session
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
no or a wrong token (or no session), 403 a foreign Host or Origin, 404 nothing
there, 409 the node refused (a `LocalError`, e.g. "already registered"), 413 a
body over 16 KiB, 421 a peer-port path (`/v1/...`: a dialer came to the wrong
port), 503 writes are paused for now (`NotWritable`: the own feed is being
checked with peers, or the store cannot commit; the reason says which). Who
may do what is api/access.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import string
import time
import weakref
from collections.abc import AsyncIterator, Callable, Collection
from importlib import resources
from typing import Any, Protocol

from aiohttp import WSCloseCode, WSMsgType, hdrs, web
from aiohttp.typedefs import Handler

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
from ..core.queries import Index, Topology
from ..core.views import Views
from . import metrics, reads
from ._http import REFUSALS, ApiError, Refusals, new_app, read_json_object
from .access import LOGIN_CODE_TTL_S, SESSION_TTL_S, Access

log = logging.getLogger("liberation_node.api")

MAX_BODY_BYTES = 16 * 1024
MAX_SUBSCRIBERS = 32  # open event streams; each holds a subscription on the node's bus
WS_HEARTBEAT_S = 30.0
OP_ID_HEX = 64
HEX_DIGITS = frozenset(string.hexdigits)

# The page's scripts, styles and images come from this origin only; nothing inline,
# no eval, no frames, no form posts elsewhere (the page's forms are sent by script).
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
STATIC = {  # file in api/static -> content type; nothing else is served
    "index.html": "text/html", "app.js": "text/javascript", "mesh.js": "text/javascript",
    "dom.js": "text/javascript", "style.css": "text/css", "favicon.svg": "image/svg+xml",
}
LOGIN_FAILED_HTML = """<!doctype html>
<html lang="en"><meta charset="utf-8"><title>liberation-node: sign-in link not valid</title>
<link rel="stylesheet" href="/static/style.css">
<main class="notice"><h1>This sign-in link is not valid</h1>
<p>A link works once, within 60 seconds. Ask the node for a new one:</p>
<pre>liberation-node open</pre></main></html>
"""


class NodeControl(Protocol):
    """What the running node offers its control port. Methods that write return the
    new op's id in hex and raise `LocalError` (message for a person) when refused."""

    def status(self) -> dict[str, Any]:
        """JSON-able: at least node_id (text), network, peers (list of {id, conn, rtt_ms,
        address}), ops, digest (hex); also records, pending, pool_available_cents,
        humans, uptime_s, version, name, join_urls, clock_offset_ms, data_dir,
        writable, write_error when the node has them."""
        ...

    def health_report(self) -> dict[str, Any]:
        """{"ok": bool, "checks": {name: {"ok": bool, ...}}}."""
        ...

    def peers(self) -> list[dict[str, Any]]:
        """Open and connecting peers, with the fields docs/api.md lists."""
        ...

    def counters(self) -> dict[str, Any]:
        """Totals for /metrics: bytes and messages each way, links opened, events
        published and dropped, and "rejections" {reason: count}."""
        ...

    def index(self) -> Index:
        """The paged reads over the replica (core/queries.py)."""
        ...

    def topology(self) -> Topology: ...

    def now_ms(self) -> int:
        """The wall clock, Unix ms."""
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


def _static_files() -> dict[str, bytes]:
    folder = resources.files(__package__).joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC}


def control_app(node: NodeControl, token: str, *, bound: str = "127.0.0.1",
                allowed_hosts: Collection[str] = (),
                clock: Callable[[], float] = time.monotonic,
                refusals: Refusals | None = None,
                peer_url: Callable[[], str] | None = None) -> web.Application:
    """The control port's application.

    `token` is the control token (datadir `control_token()`); `bound` the address
    the port listens on (not loopback: every request needs the token);
    `allowed_hosts` adds host names to the loopback ones a request's Host may name;
    `clock` (monotonic seconds) times login links, sessions and the digest age in
    /metrics; `refusals` counts and logs refused requests (shared with the peer port);
    `peer_url` names the peer port for a dialer that came here by mistake (421 on
    the peer port's paths, /v1/...).
    """
    access = Access(token, bound=bound, allowed_hosts=allowed_hosts, clock=clock)
    if access.exposed:
        log.warning("the control port is bound to %s, not loopback: every request needs "
                    "the control token and the status page cannot sign in; an SSH tunnel "
                    "to 127.0.0.1 is safer (docs/api.md)", bound or "every address")
    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
    digest = _DigestWatch(since=clock())
    files = _static_files()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/v1/") and peer_url is not None:
            # A peer's signaling URL pointing at this port: say where to go instead
            # (transport.md §3.7), before asking for a token the dialer cannot have.
            # The peer port's URL is public (node.info announces it).
            where = peer_url()
            return web.json_response({"error": "this is the control port of a "
                                      f"liberation-node; its peer port is {where}",
                                      "peer_url": where}, status=421)
        access.check(request)
        try:
            return await handler(request)
        except NotWritable as exc:
            raise ApiError(503, str(exc)) from None
        except LocalError as exc:
            raise ApiError(409, str(exc) or "refused by the node") from None

    def static(name: str) -> Handler:
        async def serve(request: web.Request) -> web.Response:
            return web.Response(body=files[name], content_type=STATIC[name],
                                charset="utf-8" if STATIC[name].startswith("text/") else None)
        return serve

    async def login(request: web.Request) -> web.Response:
        await _body(request)
        host = request.headers.get(hdrs.HOST, "127.0.0.1")
        code = access.new_login_code()
        return web.json_response({"url": f"http://{host}/login?code={code}",
                                  "expires_ms": node.now_ms() + int(LOGIN_CODE_TTL_S * 1000)})

    async def redeem(request: web.Request) -> web.StreamResponse:
        if request.method != hdrs.METH_GET:  # a HEAD (a link preview) must not spend it
            return web.Response(content_type="text/html")
        site = request.headers.get("Sec-Fetch-Site")
        if site in ("cross-site", "same-site"):  # login CSRF: only a link the user opened
            raise ApiError(403, f"refused a {site} sign-in (Sec-Fetch-Site)")
        session = access.redeem(request.rel_url.query.get("code", ""))
        if session is None:
            return web.Response(status=403, text=LOGIN_FAILED_HTML, content_type="text/html")
        redirect = web.HTTPSeeOther("/")
        redirect.set_cookie(access.cookie_name(request), session, max_age=int(SESSION_TTL_S),
                            path="/", httponly=True, samesite="Strict")
        raise redirect

    async def logout(request: web.Request) -> web.Response:
        await _body(request)
        access.end_session(request)
        response = web.json_response({"ok": True})
        response.del_cookie(access.cookie_name(request), path="/")
        return response

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
        text = metrics.render(info, node.counters(), app_refusals, age)
        return web.Response(body=text.encode(), headers={hdrs.CONTENT_TYPE: metrics.CONTENT_TYPE})

    async def close_streams(app: web.Application) -> None:
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")

    app = new_app(MAX_BODY_BYTES, guard, surface="control", refusals=refusals, csp=PAGE_CSP)
    app_refusals = app[REFUSALS]
    app.on_shutdown.append(close_streams)
    app.router.add_get("/", static("index.html"))
    app.router.add_get("/favicon.svg", static("favicon.svg"))
    for name in STATIC:
        app.router.add_get(f"/static/{name}", static(name))
    app.router.add_get("/login", redeem)
    app.router.add_post("/api/v1/login", login)
    app.router.add_post("/api/v1/logout", logout)
    reads.add_routes(app, node)
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
