"""The peer port (DESIGN §4): WebRTC signaling over HTTP, reachable from the network.

Two routes and nothing else:

    POST /v1/signal  {"network": str, "from": text node id,
                      "offer": {"type": "offer", "sdp": str}}
                  -> 200 {"answer": {"type": "answer", "sdp": str}}
    GET  /v1/info -> 200 handler.info() (node id, network, versions, signaling URLs)

Everything that reaches this port is bounded (DESIGN §7): bodies to 64 KiB
(413), requests per remote address by a token bucket (429 with Retry-After),
answers being made at once (503), and the time to make one (504). Refusals by
the node are `SignalRefused(status, message)`: 403 for another network, 503 when
it has enough peers, naming a few of them (``"peers": [{"id", "urls"}]``, which the
dialer may try instead: protocols/transport.md §3.3). Every error is
``{"error": str}``; other paths are 404.

Browsers (protocols/transport.md §3.9). A web page may signal to the node only
from an origin the operator lists (`allow_origins`, `--allow-origin`): those get
a CORS preflight answer and `Access-Control-Allow-Origin`; a request with any
other `Origin` is refused (403) before its body is read. `POST /v1/signal` must
say `Content-Type: application/json` (415 otherwise), which a page can only send
after a preflight: so no foreign page can make the node allocate sockets with a
"simple" request (a form post). Each refused offer is logged once at INFO with
its reason, through the node's shared, rate-limited `Refusals` (api/_http.py).

`send_offer` is the other end: what the dialer calls to deliver an offer.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import math
import socket
import time
from collections.abc import Callable, Collection
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp import hdrs, web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from aiohttp.typedefs import Handler, Middleware

from ..core.identity import id_from_text, id_to_text
from ..core.referrals import MAX_REFERRALS, URLS_PER_REFERRAL, Referral
from ..core.scope import address_allowed, address_scope, url_host
from ._http import ApiError, Refusals, new_app, read_json_object
from .guard import BODY_TIMEOUT_S
from .origins import parse_origin
from .ratelimit import RateLimiter, client_key

MAX_SIGNAL_BYTES = 64 * 1024
SIGNAL_RATE = 5.0  # requests per second per address (IPv6: per /64) ...
SIGNAL_BURST = 10  # ... after a burst of this many
MAX_SIGNALS_IN_FLIGHT = 16
SIGNAL_TIMEOUT_S = 30.0  # making an answer includes ICE gathering
PREFLIGHT_MAX_AGE_S = 600
PATHS = ("/v1/signal", "/v1/info")

log = logging.getLogger("liberation_node.api")


class SignalRefused(Exception):
    """The node will not answer this offer; `status` is the HTTP status to send;
    `peers`, with a 503 for want of room, the peers it names instead."""

    def __init__(self, status: int, message: str, peers: Collection[Referral] = ()) -> None:
        if not 400 <= status <= 599:
            raise ValueError("a refusal is a 4xx or 5xx status")
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.peers = tuple(peers)[:MAX_REFERRALS]

    def __str__(self) -> str:
        return self.message


class PeerPortHandler(Protocol):
    """What the node provides to the peer port."""

    async def signal(self, network: str, from_id: bytes, offer: dict[str, str],
                     remote: str) -> dict[str, str]:
        """Answer `offer` (``{"type": "offer", "sdp": ...}``) from node `from_id`, which
        connects from address `remote`; return ``{"type": "answer", "sdp": ...}``.
        Raise `SignalRefused` to refuse (403 another network, 503 too many peers)."""
        ...

    def info(self) -> dict[str, Any]:
        """JSON-able facts a stranger may know: node id, network, version, protocol
        version, the signaling URLs."""
        ...


def peer_app(handler: PeerPortHandler, *, rate: float = SIGNAL_RATE, burst: int = SIGNAL_BURST,
             max_in_flight: int = MAX_SIGNALS_IN_FLIGHT, timeout: float = SIGNAL_TIMEOUT_S,
             clock: Callable[[], float] = time.monotonic,
             allow_origins: Collection[str] = (),
             refusals: Refusals | None = None,
             body_timeout: float = BODY_TIMEOUT_S) -> web.Application:
    """The peer port's application; `clock` (monotonic seconds) drives the rate limit;
    `allow_origins` are the web origins that may signal from a browser; `refusals`
    counts and logs refused requests, one line each (shared with the control port and
    with relayed offers)."""
    in_flight = 0
    origins = frozenset(parse_origin(o) for o in allow_origins)

    async def signal(request: web.Request) -> web.Response:
        nonlocal in_flight
        if request.content_type != "application/json":
            raise ApiError(415, "Content-Type: application/json is required")
        network, from_id, offer = _parse_signal(await read_json_object(
            request, MAX_SIGNAL_BYTES, body_timeout))
        if in_flight >= max_in_flight:
            raise ApiError(503, "busy answering other offers; try again",
                           {hdrs.RETRY_AFTER: "1"})
        in_flight += 1
        try:
            answer = await asyncio.wait_for(
                handler.signal(network, from_id, offer, request.remote or ""), timeout)
        except SignalRefused as exc:
            named = [{"id": id_to_text(r.node_id), "urls": list(r.urls)} for r in exc.peers]
            raise ApiError(exc.status, exc.message,
                           more={"peers": named} if named else None) from None
        except TimeoutError:
            raise ApiError(504, f"no answer within {timeout:g} s") from None
        finally:
            in_flight -= 1
        return web.json_response({"answer": answer})

    async def info(request: web.Request) -> web.Response:
        return web.json_response(handler.info())

    async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin in origins:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        if origins:
            response.headers[hdrs.VARY] = "Origin"

    app = new_app(MAX_SIGNAL_BYTES, _rate_limit(RateLimiter(rate, burst), clock),
                  _cors(origins), surface="peer",
                  refusals=refusals if refusals is not None else Refusals(clock=clock))
    app.on_response_prepare.append(cors_headers)
    app.router.add_post("/v1/signal", signal)
    app.router.add_get("/v1/info", info)
    return app


def _cors(origins: frozenset[str]) -> Middleware:
    """Middleware: browsers' requests from the listed origins only (§3.9)."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None:
            return await handler(request)  # not a browser's cross-origin request
        if origin not in origins:
            raise ApiError(403, f"signaling from the web origin {origin[:100]!r} is not "
                           "allowed (the node's operator may allow it: --allow-origin)")
        if request.method == hdrs.METH_OPTIONS and request.path in PATHS:
            return web.Response(status=204, headers={
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: "POST, GET",
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: "Content-Type",
                hdrs.ACCESS_CONTROL_MAX_AGE: str(PREFLIGHT_MAX_AGE_S)})
        return await handler(request)

    return cors


def _rate_limit(limiter: RateLimiter, clock: Callable[[], float]) -> Middleware:
    """Middleware: every request to the port takes a token from its address's bucket."""

    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        wait = limiter.take(client_key(request.remote), clock())
        if wait > 0:
            raise ApiError(429, "too many requests; slow down",
                           {hdrs.RETRY_AFTER: str(max(1, math.ceil(wait)))})
        return await handler(request)

    return rate_limit


def _parse_signal(body: dict[str, Any]) -> tuple[str, bytes, dict[str, str]]:
    """Check a signal request; unknown top-level fields are ignored, so that later
    versions may add some."""
    network = body.get("network")
    if not isinstance(network, str):
        raise ApiError(400, "network: a string is required")
    sender = body.get("from")
    if not isinstance(sender, str):
        raise ApiError(400, "from: a node id (text form) is required")
    try:
        from_id = id_from_text(sender)
    except ValueError as exc:
        raise ApiError(400, f"from: {exc}") from None
    offer = body.get("offer")
    if not isinstance(offer, dict):
        raise ApiError(400, "offer: an object {type, sdp} is required")
    if offer.get("type") != "offer":
        raise ApiError(400, "offer.type: must be \"offer\"")
    sdp = offer.get("sdp")
    if not isinstance(sdp, str) or not sdp:
        raise ApiError(400, "offer.sdp: a non-empty string is required")
    return network, from_id, {"type": "offer", "sdp": sdp}


# -- the dialer's side ---------------------------------------------------------------


class SignalError(Exception):
    """An offer got no answer. `status` is the HTTP status when the peer sent one
    (403 another network, 429 rate limited, 503 full...), `retry_after` its
    Retry-After in seconds when given, `peers` the peers a 503 named (well-formed
    entries only, at most `MAX_REFERRALS`)."""

    def __init__(self, message: str, status: int | None = None,
                 retry_after: float | None = None, peers: tuple[Referral, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.peers = peers


class SignalTimeout(SignalError):
    """The peer did not answer in time."""


class _ScopedResolver(AbstractResolver):
    """Resolves a name and keeps only the addresses in `scopes` (transport.md §7.7): an
    announced name must not lead to this host's loopback or a link-local neighbour."""

    def __init__(self, scopes: frozenset[str]) -> None:
        self._scopes = scopes
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if address_allowed(r["host"], self._scopes)]
        if not kept:
            scopes = sorted({address_scope(r["host"]) for r in found})
            raise OSError(errno.EADDRNOTAVAIL,
                          f"{host} resolves only to {'/'.join(scopes)} addresses, out of scope")
        return kept

    async def close(self) -> None:
        await self._inner.close()


async def send_offer(url: str, network: str, from_id: bytes, offer: dict[str, str],
                     timeout: float, *, session: aiohttp.ClientSession | None = None,
                     scopes: frozenset[str] | None = None,
                     connect_every: float | None = None) -> dict[str, str]:
    """POST `offer` to the signaling URL `url`; return the answer ``{"type", "sdp"}``.

    Raises `SignalTimeout` after `timeout` seconds, `SignalError` for anything
    else: unreachable, an HTTP error (its ``{"error"}`` message is kept), an
    answer over 64 KiB or not of the right shape. Redirects are not followed:
    the URL is the one the peer's id was announced with. With `scopes` (a URL
    another node announced), the host must be, or resolve to, addresses in
    those scopes (core/scope.py); nothing is sent otherwise. With `connect_every`,
    a TCP connection not established within that many seconds is tried again
    (until `timeout`) rather than left to the kernel's SYN retransmissions 1, 3
    and 7 s in: a dial under way when a partition heals gets through within
    about that long (transport.md §3.7).
    """
    host = url_host(url)
    if host is None:
        raise SignalError(f"{url}: not an http(s) URL")
    if scopes is not None:
        try:
            literal = address_scope(host)
        except ValueError:
            literal = None  # a name: checked as it resolves
        if literal is not None and literal not in scopes:
            raise SignalError(f"{url}: {literal} address, out of scope")
    payload = {"network": network, "from": id_to_text(from_id), "offer": offer}
    own = session is None
    client = session
    if client is None:
        connector = aiohttp.TCPConnector(
            resolver=_ScopedResolver(scopes) if scopes is not None else None)
        client = aiohttp.ClientSession(connector=connector)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            try:
                async with client.post(url, json=payload, allow_redirects=False,
                                       timeout=aiohttp.ClientTimeout(
                                           total=left, sock_connect=connect_every),
                                       ) as response:
                    raw = await _read_bounded(response, MAX_SIGNAL_BYTES)
                    status = response.status
                    retry_after = _retry_after(response.headers.get(hdrs.RETRY_AFTER))
                    challenge = response.headers.get(hdrs.WWW_AUTHENTICATE, "")
                break
            except aiohttp.ServerTimeoutError:
                if connect_every is None:
                    raise
                # the only socket timeout set: no SYN-ACK yet; connect again
    except TimeoutError:
        raise SignalTimeout(f"{url}: no answer within {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise SignalError(_unreachable(url, exc)) from None
    finally:
        if own:
            await client.close()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        body = None
    if status != 200:
        raise SignalError(_refusal(url, status, body, challenge), status, retry_after,
                          named_peers(body) if status == 503 else ())
    answer = body.get("answer") if isinstance(body, dict) else None
    if (not isinstance(answer, dict) or answer.get("type") != "answer"
            or not isinstance(answer.get("sdp"), str)):
        raise SignalError(f"{url}: the reply is not an answer", status)
    return {"type": "answer", "sdp": answer["sdp"]}


def _unreachable(url: str, exc: aiohttp.ClientError) -> str:
    """A message for a person about a request that got no HTTP reply (no aiohttp
    internals such as "ssl:default" for a plain http URL)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve the host of {url}: {_os_message(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"{url}: the TLS certificate is not valid: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        error = exc.os_error
        if isinstance(error, ConnectionRefusedError) or error.errno == errno.ECONNREFUSED \
                or f"[Errno {errno.ECONNREFUSED}]" in str(error):
            return f"connection refused at {url} (nothing listens there: is the node " \
                   "running, and is that its peer port?)"
        return f"cannot connect to {url}: {_os_message(error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{url}: the server closed the connection without a reply"
    return f"{url}: {exc or type(exc).__name__}"


def _os_message(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def named_peers(body: object) -> tuple[Referral, ...]:
    """The peers a refusal names (transport.md §3.3): the first `MAX_REFERRALS`
    entries of ``"peers"`` that are ``{"id": a node id, "urls": [str, ...]}``, with their
    first `URLS_PER_REFERRAL` URLs of at most 2,048 characters; anything else is left
    out (a stranger's word: the dialer checks the URLs' scope before any use)."""
    entries = body.get("peers") if isinstance(body, dict) else None
    named: list[Referral] = []
    for entry in entries[:MAX_REFERRALS] if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) \
                or not isinstance(entry.get("urls"), list):
            continue
        try:
            node_id = id_from_text(entry["id"])
        except ValueError:
            continue
        urls = tuple(u for u in entry["urls"][:URLS_PER_REFERRAL]
                     if isinstance(u, str) and 0 < len(u) <= 2048)
        if urls:
            named.append(Referral(node_id, urls))
    return tuple(named)


def _refusal(url: str, status: int, body: object, challenge: str) -> str:
    """A message for a non-200 reply: the node's own {"error"}, or what the URL is."""
    message = body.get("error") if isinstance(body, dict) else None
    if status == 421 and isinstance(body, dict) and isinstance(body.get("peer_url"), str):
        return f"{url}: that is a control port; the peer port is {body['peer_url'][:200]}"
    if status == 401 and 'realm="liberation-node"' in challenge:
        return (f"{url}: that is a control port (it asks for the control token); the peer "
                "port is another one (7411 by default)")
    if status == 404:
        parts = urlsplit(url)
        expected = f"{parts.scheme}://{parts.netloc}/v1/signal"
        if parts.path != "/v1/signal":
            return f"{url}: HTTP 404: nothing there; the signaling path is /v1/signal " \
                   f"({expected})"
        return f"{url}: HTTP 404: nothing answers POST /v1/signal there; is that the " \
               "peer port of a liberation-node?"
    return f"{url}: HTTP {status}: {str(message)[:300] if message else 'no error message'}"


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    if response.content_length is not None and response.content_length > limit:
        raise SignalError(f"{response.url}: reply over {limit} bytes", response.status)
    body = bytearray()
    async for chunk in response.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > limit:
            raise SignalError(f"{response.url}: reply over {limit} bytes", response.status)
    return bytes(body)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by our nodes)."""
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
