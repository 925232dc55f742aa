"""What both HTTP surfaces share: JSON errors, bounded JSON bodies, response headers.

Every error either port sends is ``{"error": "<one line for a person>"}`` with
a fitting status; nothing else, and never a traceback (DESIGN §7: a clear error,
never a crash). Handlers raise `ApiError`; the middleware turns it, aiohttp's
own `HTTPException`s (404, 405, 413...) and anything unexpected into that shape.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger("liberation_node.api")

SERVER_NAME = "liberation-node"


class ApiError(Exception):
    """A request we refuse: `status` and a message that names what was wrong."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def json_error(status: int, message: str,
               headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost middleware: every failure leaves as a JSON error."""
    try:
        return await handler(request)
    except ApiError as exc:
        return json_error(exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:  # a redirect or success raised on purpose: pass it on
            raise
        keep = {k: v for k, v in exc.headers.items() if k in (hdrs.ALLOW, hdrs.RETRY_AFTER)}
        return json_error(exc.status, exc.reason.lower(), keep)
    except Exception:
        log.exception("%s %s failed", request.method, request.rel_url.path)
        return json_error(500, "internal error (see the node's log)")


async def read_json_object(request: web.Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object of at most `limit` bytes (an empty body is {}).

    The app's ``client_max_size`` must be `limit` too: aiohttp then stops reading
    as soon as the body grows past it, so an oversized body is never held whole.
    """
    length = request.content_length
    if length is not None and length > limit:  # refuse before reading a byte of it
        raise ApiError(413, f"request body over {limit} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"request body over {limit} bytes") from None
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: [[[[...
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the body is not a JSON object")
    return value


async def set_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: name no library versions, and let nothing cache or frame us."""
    response.headers[hdrs.SERVER] = SERVER_NAME
    response.headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")


def new_app(limit: int, *middlewares: Middleware) -> web.Application:
    """An application with `json_errors` outermost, `middlewares` inside it, bodies ≤ `limit`."""
    app = web.Application(middlewares=[json_errors, *middlewares], client_max_size=limit)
    app.on_response_prepare.append(set_headers)
    return app
