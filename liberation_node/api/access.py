"""Who may use the control port (docs/api.md, "Access").

The port listens on loopback, but a browser on this machine runs other sites'
scripts, and other local users may connect too. So:

- Every request must name us in ``Host`` (a loopback name with our port, or a
  name the operator allowed): this defeats DNS rebinding, where evil.example
  resolves to 127.0.0.1 but still sends ``Host: evil.example``.
- An ``Origin``, when sent, must be this very origin: no cross-site form posts,
  no WebSocket hijacking. No CORS headers are ever sent.
- Only the page, its assets, the login link and the health check answer
  without credentials. Everything else (every read of the replica, the event
  stream, /metrics and every change) needs either the control token
  (``Authorization: Bearer``; the CLI) or a session cookie (the page).
- The page gets its cookie from a one-time login link: ``POST /api/v1/login``
  with the token returns a URL whose code works once, within 60 s; opening it
  sets an HttpOnly, SameSite=Strict cookie and redirects to ``/``. The cookie
  is named after the port (``ln_session_7412``): cookies ignore ports, and two
  nodes on one machine must not overwrite each other's.
- SameSite=Strict does not separate two ports of one host (they are the same
  site), so a request that authenticates with the cookie must also come from
  this origin by the browser's own account: ``Sec-Fetch-Site`` same-origin (or
  ``none`` for a GET the user typed), and a change must carry our ``Origin``.
- A control port bound to a non-loopback address requires the token on every
  request but the page's static files and /login: a cookie is not enough there,
  and the Host check is dropped (a port forwarded by Docker or NAT has other
  names); see docs/api.md for the SSH tunnel that keeps the page usable.

Secrets are compared in constant time, and sessions are looked up by a hash of
the cookie so that lookup time says nothing about a valid one.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass

from aiohttp import hdrs, web
from yarl import URL

from ._http import ApiError

LOGIN_CODE_TTL_S = 60.0
SESSION_TTL_S = 24 * 3600.0
MAX_LOGIN_CODES = 16  # outstanding login links; the oldest is dropped first
MAX_SESSIONS = 64
WILDCARDS = ("0.0.0.0", "", "::")

# What answers without credentials (GET/HEAD only): the page shell and its assets
# hold no data; /login checks its own code; health says ok or not.
PUBLIC_PATHS = frozenset({"/", "/favicon.svg", "/login", "/api/v1/health"})
STATIC_PREFIX = "/static/"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int] | None:
    """A Host header as (lowercase host, port), or None if it is not one."""
    try:
        url = URL(f"http://{value}")
    except ValueError:
        return None
    if url.raw_host is None or url.port is None or url.path not in ("", "/") \
            or url.user is not None or url.query_string:
        return None
    return url.raw_host.lower(), url.port


@dataclass(frozen=True, slots=True)
class Caller:
    """How a request authenticated: "token", "cookie" or None (public)."""

    by: str | None


class Access:
    """The control port's gate: Host, Origin, credentials, login codes and sessions.

    `bound` is the address the port listens on; `clock` is monotonic seconds."""

    def __init__(self, token: str, *, bound: str, allowed_hosts: Collection[str],
                 clock: Callable[[], float]) -> None:
        if not token:
            raise ValueError("an empty control token would let anybody in")
        self.secret = token.encode("utf-8")
        self.exposed = bound in WILDCARDS or not is_loopback(bound)
        self.hosts = {h.lower() for h in allowed_hosts}
        self.clock = clock
        self._codes: OrderedDict[bytes, float] = OrderedDict()  # hash(code) -> expires at
        self._sessions: OrderedDict[bytes, float] = OrderedDict()  # hash(cookie) -> expires

    # -- the checks, in the order the guard applies them -----------------------------------

    def check(self, request: web.Request) -> Caller:
        """Raise ApiError (403, 401) unless the request may go on; say how it came in."""
        host = self._check_host(request)
        self._check_origin(request, host)
        path, method = request.path, request.method
        public = method in (hdrs.METH_GET, hdrs.METH_HEAD) and (
            path.startswith(STATIC_PREFIX) or path in ("/", "/favicon.svg", "/login")
            or (path in PUBLIC_PATHS and not self.exposed))
        if self._has_token(request):
            return Caller("token")
        if public:
            return Caller(None)
        if path == "/api/v1/login" or self.exposed:
            raise self._unauthorized("a valid 'Authorization: Bearer <control token>' is "
                                     "required" + (" (this control port is not on loopback)"
                                                   if self.exposed else ""))
        if self._has_session(request):
            self._check_same_origin(request)
            return Caller("cookie")
        raise self._unauthorized("sign in: open the link `liberation-node open` prints, or "
                                 "send 'Authorization: Bearer <control token>'")

    def _check_host(self, request: web.Request) -> tuple[str, int] | None:
        header = request.headers.get(hdrs.HOST)
        host = split_host(header) if header else None
        if self.exposed:
            return host
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
        if host is None or host[1] != port or not (is_loopback(host[0]) or host[0] in self.hosts):
            raise ApiError(403, "Host must name this node on loopback with its port")
        return host

    @staticmethod
    def _check_origin(request: web.Request, host: tuple[str, int] | None) -> None:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None:  # not from a browser, or a same-origin GET
            return
        try:
            url = URL(origin)
            ok = host is not None and url.scheme == "http" and \
                (url.raw_host or "").lower() == host[0] and url.port == host[1]
        except ValueError:
            ok = False
        if not ok:
            raise ApiError(403, "cross-origin requests are refused")

    @staticmethod
    def _check_same_origin(request: web.Request) -> None:
        """A cookie came along: the browser must vouch that this origin sent the request."""
        site = request.headers.get("Sec-Fetch-Site")
        reading = request.method in (hdrs.METH_GET, hdrs.METH_HEAD)
        if site is not None and site != "same-origin" and not (reading and site == "none"):
            raise ApiError(403, f"refused a {site} request (Sec-Fetch-Site)")
        if not reading and hdrs.ORIGIN not in request.headers:
            raise ApiError(403, "a change made with the session cookie must carry Origin")

    def _has_token(self, request: web.Request) -> bool:
        value = request.headers.get(hdrs.AUTHORIZATION)
        if value is None:
            return False
        scheme, _, credentials = value.partition(" ")
        given = credentials.strip().encode("utf-8", "surrogateescape")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self.secret):
            raise self._unauthorized("a valid 'Authorization: Bearer <control token>' is "
                                     "required")  # a wrong token is never a fallback
        return True

    @staticmethod
    def _unauthorized(message: str) -> ApiError:
        return ApiError(401, message, {hdrs.WWW_AUTHENTICATE: 'Bearer realm="liberation-node"'})

    # -- login links and sessions ---------------------------------------------------------

    def cookie_name(self, request: web.Request) -> str:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else 0
        return f"ln_session_{port}"

    @staticmethod
    def _hash(secret: str) -> bytes:
        return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()

    @staticmethod
    def _prune(table: OrderedDict[bytes, float], now: float, keep: int) -> None:
        for key, expires in list(table.items()):
            if expires <= now:
                del table[key]
        while len(table) > keep:
            table.popitem(last=False)

    def new_login_code(self) -> str:
        now = self.clock()
        code = secrets.token_urlsafe(32)
        self._codes[self._hash(code)] = now + LOGIN_CODE_TTL_S
        self._prune(self._codes, now, MAX_LOGIN_CODES)
        return code

    def redeem(self, code: str) -> str | None:
        """A new session's cookie value if `code` is valid (it is spent either way)."""
        now = self.clock()
        self._prune(self._codes, now, MAX_LOGIN_CODES)
        if len(code) > 128 or self._codes.pop(self._hash(code), None) is None:
            return None
        session = secrets.token_urlsafe(32)
        self._sessions[self._hash(session)] = now + SESSION_TTL_S
        self._prune(self._sessions, now, MAX_SESSIONS)
        return session

    def _has_session(self, request: web.Request) -> bool:
        value = request.cookies.get(self.cookie_name(request))
        if not value or len(value) > 128:
            return False
        expires = self._sessions.get(self._hash(value))
        return expires is not None and expires > self.clock()

    def end_session(self, request: web.Request) -> None:
        value = request.cookies.get(self.cookie_name(request))
        if value:
            self._sessions.pop(self._hash(value), None)
