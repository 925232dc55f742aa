"""What both HTTP surfaces share: JSON errors, bounded JSON bodies, response headers,
and one quiet log line per refused request.

Every error either port sends is ``{"error": "<one line for a person>"}`` with
a fitting status; nothing else, and never a traceback (DESIGN §7: a clear error,
never a crash). Handlers raise `ApiError`; the middleware turns it, aiohttp's
own `HTTPException`s (404, 405, 413...) and anything unexpected into that shape.

Refusals (any 4xx), requests aiohttp cannot parse (oversized headers, bad
framing) and clients that vanish mid-request each log one line, without a
traceback, through a shared rate limit (`Refusals`): a flood of bad requests
costs a few lines and a count, not a disk of tracebacks (issue 9, item 9).
Only our own bugs (a 500) log a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from .guard import BODY_TIMEOUT_S, ConnectionGuard, ConnectionLimits, GuardedRunner
from .ratelimit import RateLimiter

log = logging.getLogger("liberation_node.api")
refusal_log = logging.getLogger("liberation_node.http")

SERVER_NAME = "liberation-node"
LOG_RATE = 1.0  # refusal lines per second, sustained ...
LOG_BURST = 20  # ... after a burst of this many
SURFACE: web.AppKey[str] = web.AppKey("surface", str)


def _printable(text: str, limit: int = 120) -> str:
    """Untrusted text for one log line: no control characters, bounded."""
    clean = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:limit])
    return clean + ("..." if len(text) > limit else "")


class Refusals:
    """Counts refused and malformed requests per (surface, status) and logs one line
    each, at most `burst` at once and `rate` per second after that; lines held back
    are counted and reported with the next line that goes out."""

    def __init__(self, rate: float = LOG_RATE, burst: int = LOG_BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: Counter[tuple[str, int]] = Counter()
        self.malformed: Counter[str] = Counter()  # surface -> requests aiohttp refused
        self.gone: Counter[str] = Counter()  # surface -> clients that left mid-request
        self.connections: Counter[str] = Counter()  # surface -> connections refused (caps)
        self.relayed = 0  # relayed offers refused
        self.bans = 0  # peers banned (protocols/sync.md §4.7)
        self._limit = RateLimiter(rate, burst, max_keys=1)
        self._clock = clock
        self.suppressed = 0

    def _line(self, message: str) -> None:
        if self._limit.take("log", self._clock()) > 0:
            self.suppressed += 1
            return
        if self.suppressed:
            message += f" ({self.suppressed} similar lines suppressed)"
            self.suppressed = 0
        refusal_log.info("%s", message)

    def refused(self, surface: str, request: web.BaseRequest, status: int,
                message: str) -> None:
        self.counts[surface, status] += 1
        if surface == "peer" and request.path == "/v1/signal" \
                and request.method in (hdrs.METH_POST, hdrs.METH_OPTIONS):
            # A refused preflight is a refused offer too: the browser sends nothing more.
            origin = request.headers.get(hdrs.ORIGIN)
            self._line(f"refused an offer from {request.remote}"
                       f"{f' (origin {_printable(origin, 100)!r})' if origin else ''}: "
                       f"{status} {_printable(message, 300)}")
            return
        self._line(f"{surface} port refused {request.method} "
                   f"{_printable(request.rel_url.path)} from {request.remote}: "
                   f"{status} {_printable(message)}")

    def relayed_offer(self, origin: str, reason: str) -> None:
        """An offer relayed through the mesh (sync.md §7.2) that this node refused."""
        self.relayed += 1
        self._line(f"refused a relayed offer from {_printable(origin)}: "
                   f"{_printable(reason, 300)}")

    def bad_request(self, surface: str, what: str) -> None:
        self.malformed[surface] += 1
        self._line(f"{surface} port: {_printable(what, 200)}")

    def connection(self, surface: str, address: str, why: str) -> None:
        """A connection closed at once, over the port's caps (api/guard.py)."""
        self.connections[surface] += 1
        self._line(f"{surface} port: closed a connection from {_printable(address)}: {why}")

    def banned(self, key: str, peer: str | None, seconds: int, reason: str, count: int) -> None:
        """A peer banned by the mesh (protocols/sync.md §4.7)."""
        self.bans += 1
        who = f"{peer} ({_printable(key, 80)})" if peer else _printable(key, 80)
        self._line(f"banned {who} for {seconds} s: {reason} (ban {count})")

    def went_away(self, surface: str, request: web.BaseRequest) -> None:
        self.gone[surface] += 1
        self._line(f"{surface} port: {request.method} {_printable(request.rel_url.path)} "
                   f"from {request.remote}: the client went away mid-request")


REFUSALS: web.AppKey[Refusals] = web.AppKey("refusals", Refusals)


def _reason(exc: BaseException) -> str:
    """What was wrong, on one line: aiohttp's parser errors read "400, message:" and
    give the reason on the next line (HttpProcessingError.message)."""
    message = getattr(exc, "message", None)
    text = message if isinstance(message, str) and message.strip() else str(exc)
    return " ".join(text.split())


class _ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's per-connection logger (`RequestHandler.logger`): what it reports are
    requests it could not parse or serve before our handlers ran; one line each,
    through `Refusals`, instead of an ERROR with a traceback."""

    def __init__(self, refusals: Refusals, surface: str) -> None:
        super().__init__(refusal_log, {})
        self.refusals = refusals
        self.surface = surface

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level < logging.WARNING:  # aiohttp's debug chatter ("premature disconnection")
            return
        exc = kwargs.get("exc_info")
        text = str(msg) % args if args else str(msg)
        if isinstance(exc, BaseException):
            text += f": {type(exc).__name__}: {_reason(exc)}"
        self.refusals.bad_request(self.surface, text)


def runner_options(app: web.Application) -> dict[str, Any]:
    """`web.AppRunner` options for one of our apps: no access log (refusals are logged
    one line each), and aiohttp's own errors through `Refusals`."""
    return {"access_log": None, "handle_signals": False,
            "logger": _ServerLog(app[REFUSALS], app[SURFACE])}


def make_runner(app: web.Application, limits: ConnectionLimits | None = None
                ) -> web.AppRunner:
    """The app's runner; with `limits`, connections are capped and timed (api/guard.py),
    and those refused are counted and logged through the app's `Refusals`."""
    if limits is None:
        return web.AppRunner(app, **runner_options(app))
    refusals, surface = app[REFUSALS], app[SURFACE]
    guard = ConnectionGuard(limits, lambda key, why: refusals.connection(surface, key, why))
    return GuardedRunner(app, guard, **runner_options(app))


class ApiError(Exception):
    """A request we refuse: `status` and a message that names what was wrong."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None,
                 more: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.more = dict(more or {})  # more fields of the JSON body (a 503's "peers")


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None,
               more: Mapping[str, Any] | None = None) -> web.Response:
    return web.json_response({"error": message, **(more or {})}, status=status,
                             headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost middleware: every failure leaves as a JSON error; refusals are
    counted and logged one line each."""
    refusals, surface = request.app[REFUSALS], request.app[SURFACE]

    def refuse(status: int, message: str, headers: Mapping[str, str] | None,
               more: Mapping[str, Any] | None = None) -> web.Response:
        if status != 500:  # a 500 is our bug, logged with its traceback below
            refusals.refused(surface, request, status, message)
        return json_error(status, message, headers, more)

    try:
        response = await handler(request)
    except ApiError as exc:
        return refuse(exc.status, exc.message, exc.headers, exc.more)
    except web.HTTPException as exc:
        if exc.status < 400:  # a redirect or success raised on purpose: pass it on
            raise
        keep = {k: v for k, v in exc.headers.items() if k in (hdrs.ALLOW, hdrs.RETRY_AFTER)}
        return refuse(exc.status, exc.reason.lower(), keep)
    except ConnectionError:  # the client left (an aborted upload): nobody to answer
        refusals.went_away(surface, request)
        raise
    except Exception:
        log.exception("%s %s failed", request.method, _printable(request.rel_url.path))
        return json_error(500, "internal error (see the node's log)")
    if response.status >= 400:  # a handler's own refusal page
        refusals.refused(surface, request, response.status, response.reason)
    return response


async def read_json_object(request: web.Request, limit: int,
                           timeout: float = BODY_TIMEOUT_S) -> dict[str, Any]:
    """The request body as a JSON object of at most `limit` bytes (an empty body is {}),
    received within `timeout` seconds (a client sending it slowly holds a connection).

    The app's ``client_max_size`` must be `limit` too: aiohttp then stops reading
    as soon as the body grows past it, so an oversized body is never held whole.
    """
    length = request.content_length
    if length is not None and length > limit:  # refuse before reading a byte of it
        raise ApiError(413, f"request body over {limit} bytes")
    try:
        raw = await asyncio.wait_for(request.read(), timeout)
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"request body over {limit} bytes") from None
    except TimeoutError:
        raise ApiError(408, f"request body not received within {timeout:g} s",
                       {hdrs.CONNECTION: "close"}) from None
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: [[[[...
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the body is not a JSON object")
    return value


def _headers(csp: str) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    async def set_headers(request: web.Request, response: web.StreamResponse) -> None:
        """on_response_prepare: name no library versions, and let nothing cache, frame,
        embed or sniff us, nor learn our URLs from a Referer."""
        response.headers[hdrs.SERVER] = SERVER_NAME
        response.headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")

    return set_headers


def new_app(limit: int, *middlewares: Middleware, surface: str,
            refusals: Refusals | None = None,
            csp: str = "default-src 'none'; frame-ancestors 'none'") -> web.Application:
    """An application with `json_errors` outermost, `middlewares` inside it, bodies ≤ `limit`.
    `surface` names the port in log lines and metrics ("peer", "control"); `refusals`
    may be shared by both ports of a node; `csp` is every response's
    Content-Security-Policy."""
    app = web.Application(middlewares=[json_errors, *middlewares], client_max_size=limit)
    app[SURFACE] = surface
    app[REFUSALS] = refusals if refusals is not None else Refusals()
    app.on_response_prepare.append(_headers(csp))
    return app
