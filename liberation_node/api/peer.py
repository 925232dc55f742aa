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
it has enough peers. Every error is ``{"error": str}``; other paths are 404.

`send_offer` is the other end: what the dialer calls to deliver an offer.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from ..core.identity import id_from_text, id_to_text
from ._http import ApiError, new_app, read_json_object
from .ratelimit import RateLimiter, client_key

MAX_SIGNAL_BYTES = 64 * 1024
SIGNAL_RATE = 5.0  # requests per second per address (IPv6: per /64) ...
SIGNAL_BURST = 10  # ... after a burst of this many
MAX_SIGNALS_IN_FLIGHT = 16
SIGNAL_TIMEOUT_S = 30.0  # making an answer includes ICE gathering


class SignalRefused(Exception):
    """The node will not answer this offer; `status` is the HTTP status to send."""

    def __init__(self, status: int, message: str) -> None:
        if not 400 <= status <= 599:
            raise ValueError("a refusal is a 4xx or 5xx status")
        super().__init__(status, message)
        self.status = status
        self.message = message

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
             clock: Callable[[], float] = time.monotonic) -> web.Application:
    """The peer port's application; `clock` (monotonic seconds) drives the rate limit."""
    in_flight = 0

    async def signal(request: web.Request) -> web.Response:
        nonlocal in_flight
        network, from_id, offer = _parse_signal(await read_json_object(request,
                                                                      MAX_SIGNAL_BYTES))
        if in_flight >= max_in_flight:
            raise ApiError(503, "busy answering other offers; try again",
                           {hdrs.RETRY_AFTER: "1"})
        in_flight += 1
        try:
            answer = await asyncio.wait_for(
                handler.signal(network, from_id, offer, request.remote or ""), timeout)
        except SignalRefused as exc:
            raise ApiError(exc.status, exc.message) from None
        except TimeoutError:
            raise ApiError(504, f"no answer within {timeout:g} s") from None
        finally:
            in_flight -= 1
        return web.json_response({"answer": answer})

    async def info(request: web.Request) -> web.Response:
        return web.json_response(handler.info())

    app = new_app(MAX_SIGNAL_BYTES, _rate_limit(RateLimiter(rate, burst), clock))
    app.router.add_post("/v1/signal", signal)
    app.router.add_get("/v1/info", info)
    return app


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
    Retry-After in seconds when given."""

    def __init__(self, message: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class SignalTimeout(SignalError):
    """The peer did not answer in time."""


async def send_offer(url: str, network: str, from_id: bytes, offer: dict[str, str],
                     timeout: float, *, session: aiohttp.ClientSession | None = None,
                     connect_every: float | None = None) -> dict[str, str]:
    """POST `offer` to the signaling URL `url`; return the answer ``{"type", "sdp"}``.

    Raises `SignalTimeout` after `timeout` seconds, `SignalError` for anything
    else: unreachable, an HTTP error (its ``{"error"}`` message is kept), an
    answer over 64 KiB or not of the right shape. Redirects are not followed:
    the URL is the one the peer's id was announced with. With `connect_every`, a
    TCP connection not established within that many seconds is tried again (until
    `timeout`), rather than left to the kernel's SYN retransmissions 1, 3 and 7 s
    in: a dial under way when a partition heals gets through within about that
    long (transport.md §3.7).
    """
    if not url.startswith(("http://", "https://")):
        raise SignalError(f"{url}: not an http(s) URL")
    payload = {"network": network, "from": id_to_text(from_id), "offer": offer}
    own = session is None
    client = aiohttp.ClientSession() if session is None else session
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
                break
            except aiohttp.ServerTimeoutError:
                if connect_every is None:
                    raise
                # the only socket timeout set: no SYN-ACK yet; connect again
    except TimeoutError:
        raise SignalTimeout(f"{url}: no answer within {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise SignalError(f"{url}: {exc or type(exc).__name__}") from None
    finally:
        if own:
            await client.close()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        body = None
    if status != 200:
        message = body.get("error") if isinstance(body, dict) else None
        raise SignalError(f"{url}: HTTP {status}: {message or 'no error message'}",
                          status, retry_after)
    answer = body.get("answer") if isinstance(body, dict) else None
    if (not isinstance(answer, dict) or answer.get("type") != "answer"
            or not isinstance(answer.get("sdp"), str)):
        raise SignalError(f"{url}: the reply is not an answer", status)
    return {"type": "answer", "sdp": answer["sdp"]}


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
