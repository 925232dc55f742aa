"""The DNS-SD service of a liberation-node peer port, and what a node does with one it
finds (protocols/discovery.md).

Sans-IO, like the core: bytes and values in, a verdict out; the zeroconf adapter
is `mdns.py`. A service found on the LAN is either a `Found` peer (its node id and
the signaling URLs to hand to the connection manager) or `Ignored` with a reason.
Nothing here trusts the LAN: every field is checked and bounded (discovery.md §5).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..core.identity import id_from_text, id_to_text

SERVICE_TYPE = "_liberation-node._tcp.local."  # discovery.md §2
SIGNAL_PATH = "/v1/signal"  # transport.md §3.1

KEY_PROTOCOL = "protocol"  # discovery.md §3
KEY_NETWORK = "network"
KEY_ID = "id"

MAX_TXT_BYTES = 1_300  # RFC 6763 §6.2: larger TXT records are NOT RECOMMENDED
MAX_URLS = 8  # as node.info urls (ops.md §8.2) and a candidate's URLs (transport.md §7.1)
MAX_PROTOCOL_DIGITS = 5

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TxtError(ValueError):
    """TXT record data that is not a sequence of length-prefixed strings."""


class Reason(enum.StrEnum):
    """Why a service is not a peer (discovery.md §5), in the order they are checked."""

    OVERSIZE = "oversize"  # TXT longer than MAX_TXT_BYTES
    MALFORMED = "malformed"  # bad TXT framing; a key missing or not in its form
    OTHER_PROTOCOL = "other_protocol"  # another sync protocol version
    OTHER_NETWORK = "other_network"  # another network
    SELF = "self"  # our own service
    NO_ADDRESS = "no_address"  # no port, or no usable address on one of our links


@dataclass(frozen=True)
class Service:
    """A resolved service instance, as the mDNS adapter saw it."""

    name: str  # the full instance name, "<id>._liberation-node._tcp.local."
    txt: bytes  # the TXT record data (RFC 1035 §3.3.14): length-prefixed strings
    port: int  # from the SRV record
    addresses: tuple[str, ...]  # from the A and AAAA records of the SRV target


@dataclass(frozen=True)
class Found:
    node_id: bytes
    urls: tuple[str, ...]


@dataclass(frozen=True)
class Ignored:
    reason: Reason
    detail: str


def instance_name(node_id: bytes) -> str:
    """Our instance label: the node id in text form (57 characters; discovery.md §2)."""
    return id_to_text(node_id)


def service_name(node_id: bytes) -> str:
    return f"{instance_name(node_id)}.{SERVICE_TYPE}"


def host_name(node_id: bytes) -> str:
    """The SRV target: a host name of our own, so that it never collides with the
    machine's (or with another node on the same machine)."""
    return f"{instance_name(node_id)}.local."


def encode_txt(pairs: Iterable[tuple[str, str]]) -> bytes:
    """`key=value` strings, each prefixed with its length (RFC 6763 §6.1, §6.3)."""
    out = bytearray()
    for key, value in pairs:
        if not key or "=" in key or not all(0x20 <= ord(c) <= 0x7E for c in key):
            raise ValueError(f"{key!r} is not a DNS-SD key")
        item = f"{key}={value}".encode()
        if len(item) > 255:
            raise ValueError(f"TXT string {key}=… is longer than 255 bytes")
        out += bytes([len(item)]) + item
    return bytes(out)


def advertised_txt(node_id: bytes, network: str, protocol: int) -> bytes:
    """Our TXT record, keys in this order (discovery.md §3)."""
    return encode_txt([(KEY_PROTOCOL, str(protocol)), (KEY_NETWORK, network),
                       (KEY_ID, id_to_text(node_id))])


def parse_txt(data: bytes) -> dict[str, bytes | None]:
    """Key/value pairs of TXT record data, by RFC 6763 §6: keys are case-insensitive
    (returned in lower case) and only a key's first occurrence counts; a string
    without '=' is a key with no value (None); empty strings, strings with an empty
    key and keys outside printable ASCII are skipped. Raises TxtError when a length
    byte runs past the end."""
    pairs: dict[str, bytes | None] = {}
    pos = 0
    while pos < len(data):
        length = data[pos]
        end = pos + 1 + length
        if end > len(data):
            raise TxtError(f"a TXT string of {length} bytes runs past the end")
        item = data[pos + 1:end]
        pos = end
        raw_key, eq, value = item.partition(b"=")
        if not raw_key or not all(0x20 <= b <= 0x7E for b in raw_key):
            continue
        key = raw_key.decode("ascii").lower()
        if key not in pairs:
            pairs[key] = value if eq else None
    return pairs


def signal_url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{SIGNAL_PATH}"


def usable_addresses(addresses: Iterable[str], links: Sequence[IpNetwork]) -> list[str]:
    """The addresses a node may dial (discovery.md §5 step 6): IP literals on one of
    this node's links, neither unspecified, loopback, multicast nor reserved; IPv6
    link-local excluded (a URL cannot name its interface). IPv4 first, then IPv6,
    each in the given order, without repeats."""
    v4: list[str] = []
    v6: list[str] = []
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if (ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_reserved
                or not any(ip.version == net.version and ip in net for net in links)):
            continue
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.is_link_local or ip.ipv4_mapped is not None:
                continue
            v6.append(str(ip))
        else:
            v4.append(str(ip))
    return list(dict.fromkeys(v4 + v6))


def _canonical_int(value: bytes) -> int | None:
    if (not 1 <= len(value) <= MAX_PROTOCOL_DIGITS or not value.isdigit()
            or (len(value) > 1 and value[:1] == b"0")):
        return None
    return int(value)


def judge(service: Service, *, network: str, protocol: int, me: bytes,
          links: Sequence[IpNetwork]) -> Found | Ignored:
    """Is this service a peer of ours? Checks in the order of discovery.md §5."""
    if len(service.txt) > MAX_TXT_BYTES:
        return Ignored(Reason.OVERSIZE, f"TXT of {len(service.txt)} bytes")
    try:
        txt = parse_txt(service.txt)
    except TxtError as exc:
        return Ignored(Reason.MALFORMED, str(exc))
    version = txt.get(KEY_PROTOCOL)
    if version is None:
        return Ignored(Reason.MALFORMED, f"no {KEY_PROTOCOL}= value")
    number = _canonical_int(version)
    if number is None:
        return Ignored(Reason.MALFORMED, f"{KEY_PROTOCOL}={version[:16]!r}")
    if number != protocol:
        return Ignored(Reason.OTHER_PROTOCOL, f"protocol {number}")
    theirs = txt.get(KEY_NETWORK)
    if theirs is None:
        return Ignored(Reason.MALFORMED, f"no {KEY_NETWORK}= value")
    if theirs != network.encode():
        return Ignored(Reason.OTHER_NETWORK, f"network {theirs[:64]!r}")
    text = txt.get(KEY_ID)
    if text is None:
        return Ignored(Reason.MALFORMED, f"no {KEY_ID}= value")
    node_id = _node_id(text)
    if node_id is None:
        return Ignored(Reason.MALFORMED, f"{KEY_ID}={text[:64]!r} is not a node id")
    if node_id == me:
        return Ignored(Reason.SELF, "")
    if not 1 <= service.port <= 65535:
        return Ignored(Reason.NO_ADDRESS, f"port {service.port}")
    addresses = usable_addresses(service.addresses, links)
    if not addresses:
        return Ignored(Reason.NO_ADDRESS, "no usable address on our links "
                       f"(of {len(service.addresses)})")
    return Found(node_id, tuple(signal_url(a, service.port) for a in addresses[:MAX_URLS]))


def _node_id(text: bytes) -> bytes | None:
    """The node id of a TXT `id` value in canonical text form (ops.md §2.2), else None."""
    try:
        decoded = text.decode("ascii")
        node_id = id_from_text(decoded)
    except ValueError:
        return None
    return node_id if id_to_text(node_id) == decoded else None
