"""Which signaling URLs announced by other nodes this node may dial (protocols/transport.md §7.7).

A `node.info` record (ops.md §8.2) names URLs its author chose; every node that
holds the record would dial them (peer exchange). So a record must not be able
to point the whole network at addresses no peer should be reached at: this
host's loopback, a link-local neighbour, a multicast group. An address's
**scope** is one of:

    loopback      127.0.0.0/8, ::1, and the names localhost / *.localhost (RFC 6761)
    link-local    169.254.0.0/16, fe80::/10
    unspecified   0.0.0.0/8, ::            (never a destination)
    multicast     224.0.0.0/4, ff00::/8, and 255.255.255.255 (broadcast)
    reserved      240.0.0.0/4              (never a destination)
    mdns          *.local names            (this node never resolves them: §6.3)
    numeric       a host whose last label is a number but that is not a canonical
                  IP literal ("127.1", "0x7f.1", "2130706433"): URL parsers and
                  inet_aton read them as addresses (WHATWG URL "ends in a number"),
                  so they are refused rather than guessed
    name          any other DNS name: allowed, but the addresses it resolves to must
                  pass the same rule when the node dials (a name can point anywhere)
    unicast       every other IP address (global or private: LAN use is the point)

`unicast` and `name` are in scope for every node; `loopback` and `link-local`
only for a node configured with such an address itself (its --ice-address,
--peer-host, --public-url or bootstrap URLs: the loopback tests); the others never.
IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) have the scope of their IPv4 address,
and an IPv6 zone (%eth0) is ignored.

Pure: no resolution here. The I/O layer resolves names and asks `address_allowed`
about each address it would connect to.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

LOOPBACK = "loopback"
LINK_LOCAL = "link-local"
UNSPECIFIED = "unspecified"
MULTICAST = "multicast"
RESERVED = "reserved"
MDNS = "mdns"
NUMERIC = "numeric"
NAME = "name"
UNICAST = "unicast"

ALWAYS = frozenset({UNICAST, NAME})  # in scope for every node
OPENABLE = frozenset({LOOPBACK, LINK_LOCAL})  # in scope when this node uses them itself

_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)  # WHATWG URL: ends in a number


def address_scope(address: str) -> str:
    """The scope of an IP literal (an IPv6 zone is ignored); ValueError if not one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_link_local:
        return LINK_LOCAL
    if ip in _UNSPECIFIED or ip.is_unspecified:
        return UNSPECIFIED
    if ip.is_multicast or ip == _BROADCAST:
        return MULTICAST
    if isinstance(ip, ipaddress.IPv4Address) and ip in _RESERVED:
        return RESERVED
    return UNICAST


_UNSPECIFIED = ipaddress.ip_network("0.0.0.0/8")
_RESERVED = ipaddress.ip_network("240.0.0.0/4")
_BROADCAST = ipaddress.ip_address("255.255.255.255")


def host_scope(host: str) -> str:
    """The scope of a URL's host: an IP literal (IPv6 with or without brackets) or a name."""
    host = host.strip("[]")
    try:
        return address_scope(host)
    except ValueError:
        pass
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return LOOPBACK
    if name.endswith(".local"):
        return MDNS
    if not name or _NUMBER.fullmatch(name.rsplit(".", 1)[-1]):
        return NUMERIC
    return NAME


def url_host(url: str) -> str | None:
    """The host of an http(s) URL, None when it has none or is not http(s)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return host


def url_destination(url: str) -> str:
    """"host:port" of an http(s) URL (the port its scheme implies when none is given)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return url
    return f"{(parts.hostname or '').lower()}:{port}"


@functools.lru_cache(maxsize=4096)
def url_scope(url: str) -> str | None:
    """The scope of an http(s) URL's host; None for something that is not such a URL.
    Remembered for the last few thousand URLs: every `node.info` record taken in asks
    about its URLs (peer exchange), and the same few come again and again."""
    host = url_host(url)
    return host_scope(host) if host is not None else None


def allowed_scopes(own: Iterable[str]) -> frozenset[str]:
    """The scopes this node may dial announced URLs in, given the hosts and addresses it
    is configured with itself (IP literals, names or URLs)."""
    scopes = set(ALWAYS)
    for item in own:
        host = url_host(item) if "://" in item else item
        if host:
            scope = host_scope(host)
            if scope in OPENABLE:
                scopes.add(scope)
    return frozenset(scopes)


def url_allowed(url: str, allowed: frozenset[str]) -> bool:
    """May an announced `url` be dialed by a node whose allowed scopes are `allowed`?"""
    scope = url_scope(url)
    return scope is not None and scope in allowed


def address_allowed(address: str, allowed: frozenset[str]) -> bool:
    """May a resolved address be connected to, for an announced URL? (Never a name.)"""
    try:
        return address_scope(address) in allowed
    except ValueError:
        return False
