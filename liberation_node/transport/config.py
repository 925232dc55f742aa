"""Settings of the WebRTC transport (DESIGN.md §4), every default in one place.

ICE servers are configuration; the default is none, for LAN use. Each entry of
`TransportConfig.ice_servers` is one URL:

    stun:HOST[:PORT]                              STUN, port 3478 by default
    turn:USER:PASSWORD@HOST[:PORT][?transport=udp|tcp]   TURN, port 3478, udp by default
    turns:USER:PASSWORD@HOST[:PORT]               TURN over TLS (tcp), port 5349 by default

HOST is a name or an IPv4 address (aiortc does not take IPv6 literals here).
USER and PASSWORD are percent-decoded, so a ':' or '@' in them is written %3A
or %40. aioice uses one STUN and one TURN server per connection, so at most one
of each is accepted rather than silently ignoring the rest.

`ice_addresses` says which local addresses ICE may gather host candidates on.
Empty (the default) means aioice's own choice: every address of every
interface, except loopback. Otherwise exactly the listed IP literals are used,
loopback included (tests use ("127.0.0.1",)).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

KiB = 1024
MiB = 1024 * KiB

# aiortc advertises a=max-message-size:262144 and refuses to send more than the
# peer advertises, so a larger setting could never work.
MAX_MESSAGE_LIMIT = 256 * KiB

_ICE_URL = re.compile(
    r"(?P<scheme>stun|turns?):"
    r"(?:(?P<user>[^:@/?]+):(?P<password>[^@/?]*)@)?"
    r"(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"(?:\?transport=(?P<transport>udp|tcp))?"
)


@dataclass(frozen=True)
class IceServer:
    """One STUN or TURN server, parsed from a URL (see the module docstring)."""

    scheme: str  # "stun", "turn" or "turns"
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    transport: str | None = None  # TURN only: "udp" or "tcp"

    @property
    def url(self) -> str:
        """The URL as aiortc takes it (credentials go separately)."""
        url = f"{self.scheme}:{self.host}:{self.port}"
        return url if self.transport is None else f"{url}?transport={self.transport}"


def parse_ice_server(url: str) -> IceServer:
    """Parse one `ice_servers` entry; raises ValueError saying what is wrong."""
    match = _ICE_URL.fullmatch(url)
    if match is None:
        raise ValueError(f"ICE server {_redact(url)!r}: expected stun:HOST[:PORT] or "
                         "turn[s]:USER:PASSWORD@HOST[:PORT][?transport=udp|tcp]")
    scheme = match["scheme"]
    port = int(match["port"] or (5349 if scheme == "turns" else 3478))
    if not 0 < port < 65536:
        raise ValueError(f"ICE server {_redact(url)!r}: port {port} out of range")
    if scheme == "stun":
        if match["user"] is not None or match["transport"] is not None:
            raise ValueError(f"ICE server {_redact(url)!r}: a STUN URL takes no "
                             "credentials and no transport")
        return IceServer(scheme, match["host"], port)
    if match["user"] is None:
        raise ValueError(f"ICE server {_redact(url)!r}: TURN needs USER:PASSWORD@")
    transport = match["transport"] or ("tcp" if scheme == "turns" else "udp")
    if scheme == "turns" and transport != "tcp":
        raise ValueError(f"ICE server {_redact(url)!r}: turns runs over tcp only")
    return IceServer(scheme, match["host"], port, unquote(match["user"]),
                     unquote(match["password"]), transport)


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    return re.sub(r"^(turns?:[^:@/?]+:)[^@/?]*@", r"\1***@", url)


@dataclass(frozen=True)
class TransportConfig:
    """Settings of `WebRtcTransport`; validated on construction (ValueError)."""

    ice_servers: tuple[str, ...] = ()  # STUN/TURN URLs, see the module docstring
    ice_addresses: tuple[str, ...] = ()  # local IPs for host candidates; () = all but loopback
    connect_timeout_s: float = 10.0  # dial or answer until the data channel is open
    # ICE that has found no working candidate pair by then gives up (transport.md §2.6):
    # an offer aimed at addresses that never answer must not hold its slot for the whole
    # connect timeout. Loopback and LAN checks succeed in well under a second.
    ice_timeout_s: float = 4.0
    high_water: int = 1 * MiB  # above this many buffered bytes a link is congested
    low_water: int = 256 * KiB  # wait_writable() returns once at or below this
    max_message_bytes: int = 64 * KiB  # largest message sent or accepted (sync.md §2)

    def __post_init__(self) -> None:
        servers = self.servers()
        for scheme in ("stun", "turn"):
            if sum(s.scheme.startswith(scheme) for s in servers) > 1:
                raise ValueError(f"at most one {scheme.upper()} server: aioice uses only one")
        for address in self.ice_addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"ice_addresses: {address!r} is not an IP address") from None
        if not self.connect_timeout_s > 0:
            raise ValueError("connect_timeout_s must be positive")
        if not self.ice_timeout_s > 0:
            raise ValueError("ice_timeout_s must be positive")
        if not 0 <= self.low_water < self.high_water:
            raise ValueError("need 0 <= low_water < high_water")
        if not 0 < self.max_message_bytes <= MAX_MESSAGE_LIMIT:
            raise ValueError(f"max_message_bytes must be in 1..{MAX_MESSAGE_LIMIT}")

    def servers(self) -> tuple[IceServer, ...]:
        return tuple(parse_ice_server(url) for url in self.ice_servers)
