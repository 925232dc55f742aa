"""Connections to an HTTP port, bounded (DESIGN §7; protocols/transport.md §3.11).

A request is only rate-limited once aiohttp has parsed it: a client that opens
connections and sends nothing, or half a header, costs a socket each and never
reaches the limiter. Left alone, about a thousand of them used up the process's
file descriptors, and with them the control port and every honest dial. So:

- at most `max_per_address` connections at once from one address (IPv6: one /64,
  as for the rate limit) and `max_total` in all; one more is closed at once,
  before a byte is read, and counted (`Refusals.connection`);
- a connection must deliver a complete request head within `idle_timeout_s` of
  opening or of the previous answer (aiohttp's keep-alive timer runs from
  connection start and is not reset by partial data): an idle keep-alive
  connection and a slow header both end then;
- a request body must arrive within `body_timeout_s` (`_http.read_json_object`).

`raise_fd_limit` lifts the soft descriptor limit to the hard one at start, and
`default_limits` keeps the caps well below it.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from .ratelimit import client_key

log = logging.getLogger("liberation_node.api")

BODY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ConnectionLimits:
    max_total: int = 512
    max_per_address: int = 16
    idle_timeout_s: float = 10.0  # a complete request head within this, each time


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard one; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # a container may forbid it: keep the old one
            log.info("cannot raise the open files limit from %d to %d: %s", soft, hard, exc)
    return soft


def default_limits(fd_limit: int) -> ConnectionLimits:
    """Caps for the peer port under a soft descriptor limit of `fd_limit`: a quarter of
    it at most, so that WebRTC sockets, the store and the control port keep theirs."""
    total = max(32, min(ConnectionLimits.max_total, fd_limit // 4))
    return ConnectionLimits(max_total=total,
                            max_per_address=min(ConnectionLimits.max_per_address, total))


class ConnectionGuard:
    """Counts open connections per address and in all; says which to refuse."""

    def __init__(self, limits: ConnectionLimits, on_refused: Any = None) -> None:
        self.limits = limits
        self.total = 0
        self.by_address: dict[str, int] = {}
        self.refused = 0
        self._on_refused = on_refused  # (address key, why) -> None

    def admit(self, key: str) -> bool:
        held = self.by_address.get(key, 0)
        why = ("too many connections" if self.total >= self.limits.max_total else
               "too many connections from one address"
               if held >= self.limits.max_per_address else None)
        if why is not None:
            self.refused += 1
            if self._on_refused is not None:
                self._on_refused(key, why)
            return False
        self.total += 1
        self.by_address[key] = held + 1
        return True

    def release(self, key: str) -> None:
        self.total -= 1
        left = self.by_address.get(key, 1) - 1
        if left > 0:
            self.by_address[key] = left
        else:
            self.by_address.pop(key, None)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the guard's admission."""

    def __init__(self, inner: RequestHandler, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._key: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        key = client_key(peer[0] if isinstance(peer, tuple) and peer else None)
        if not self._guard.admit(key):
            # Nothing read, nothing answered: the socket is back at once.
            cast(asyncio.Transport, transport).abort()
            return
        self._key = key
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._key is None:
            return
        self._guard.release(self._key)
        self._key = None
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._key is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._key is not None:
            self._inner.eof_received()
        return None

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedRunner(web.AppRunner):
    """An `AppRunner` whose connections pass a `ConnectionGuard`, and whose keep-alive
    timer (the time to a complete request head) is the limits' `idle_timeout_s`."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", guard.limits.idle_timeout_s)
        super().__init__(app, **kwargs)
        self.guard = guard

    @property
    def server(self) -> Any:  # what sites call for each new connection
        server = super().server
        if server is None:
            return None
        guard = self.guard
        return lambda: _Guarded(server(), guard)
