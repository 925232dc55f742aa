"""Signed last-writer-wins records: ``node.info`` and ``node.links`` (protocols/ops.md §8).

Presence and topology change often and need no history, so they are not feed
ops: each (author, kind) holds one record, the one with the highest
``(version, id)``, and a record stops counting at its ``expires`` time. The
version is the author's clock reading when it wrote the record (ms).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

from . import codec
from .errors import Reason, Rejection
from .identity import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, Identity, verify
from .ops import MAX_CLOCK_SKEW_MS, MAX_TIMESTAMP_MS, valid_network

RECORD_FORMAT = 1
RECORD_DOMAIN = b"liberation-node/record/v1\x00"
MAX_RECORD_BYTES = 16384
MAX_RECORD_TTL_MS = 24 * 3600 * 1000
MAX_URLS = 8
MAX_URL_BYTES = 256
MAX_CAPS = 16
MAX_FRONTIER = 256
MAX_LINKS = 64
MAX_RTT_MS = 600_000


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """``node.info``: who a node is and where to reach it."""

    name: str
    software: str
    urls: tuple[str, ...]  # signaling URLs (protocols/transport, later)
    caps: tuple[str, ...]
    frontier: tuple[tuple[bytes, int], ...]  # (author, highest seq held), sorted by author


@dataclass(frozen=True, slots=True)
class NodeLinks:
    """``node.links``: a node's current peers with round-trip times."""

    links: tuple[tuple[bytes, int], ...]  # (peer, rtt ms), sorted by peer


RecordBody = NodeInfo | NodeLinks


@dataclass(frozen=True, slots=True)
class Record:
    network: str
    author: bytes
    kind: str
    version: int
    expires: int
    body: RecordBody
    signature: bytes
    wire: bytes
    id: bytes

    @property
    def key(self) -> tuple[bytes, str]:
        return (self.author, self.kind)

    def supersedes(self, other: Record) -> bool:
        """Last-writer-wins: higher version, then higher id (ties are rare and arbitrary)."""
        return (self.version, self.id) > (other.version, other.id)


def _text_list(v: Any, count: int, size: int) -> bool:
    return (type(v) is list and len(v) <= count
            and all(type(x) is str and 0 < len(x.encode("utf-8")) <= size for x in v))


def _pairs(v: Any, count: int, hi: int) -> bool:
    if type(v) is not list or len(v) > count:
        return False
    for item in v:
        if (type(item) is not list or len(item) != 2 or type(item[0]) is not bytes
                or len(item[0]) != PUBLIC_KEY_BYTES or type(item[1]) is not int
                or not 0 <= item[1] <= hi):
            return False
    keys = [item[0] for item in v]
    return all(a < b for a, b in itertools.pairwise(keys))


def _parse_body(kind: str, raw: Any) -> RecordBody:
    if type(raw) is not dict:
        raise Rejection(Reason.BAD_BODY, "body is not a map")
    if kind == "node.info":
        if set(raw) != {"caps", "frontier", "name", "software", "urls"}:
            raise Rejection(Reason.BAD_BODY, "node.info has caps, frontier, name, software, urls")
        if not (type(raw["name"]) is str and len(raw["name"].encode("utf-8")) <= 64
                and type(raw["software"]) is str and len(raw["software"].encode("utf-8")) <= 64
                and _text_list(raw["urls"], MAX_URLS, MAX_URL_BYTES)
                and _text_list(raw["caps"], MAX_CAPS, 32)
                and _pairs(raw["frontier"], MAX_FRONTIER, 2**53 - 1)):
            raise Rejection(Reason.BAD_BODY, "bad node.info field")
        return NodeInfo(raw["name"], raw["software"], tuple(raw["urls"]), tuple(raw["caps"]),
                        tuple((a, s) for a, s in raw["frontier"]))
    if kind == "node.links":
        if set(raw) != {"links"} or not _pairs(raw["links"], MAX_LINKS, MAX_RTT_MS):
            raise Rejection(Reason.BAD_BODY, "node.links has links: [[peer, rtt_ms]...]")
        return NodeLinks(tuple((p, r) for p, r in raw["links"]))
    raise Rejection(Reason.UNKNOWN_KIND, repr(kind)[:80])


def _dump_body(body: RecordBody) -> tuple[str, dict[str, Any]]:
    if isinstance(body, NodeInfo):
        return "node.info", {
            "caps": list(body.caps), "frontier": [[a, s] for a, s in sorted(body.frontier)],
            "name": body.name, "software": body.software, "urls": list(body.urls),
        }
    return "node.links", {"links": [[p, r] for p, r in sorted(body.links)]}


def create_record(identity: Identity, *, network: str, version: int, ttl_ms: int,
                  body: RecordBody) -> Record:
    kind, body_map = _dump_body(body)
    fields = [RECORD_FORMAT, network, identity.public_key, kind, version, version + ttl_ms,
              body_map]
    signature = identity.sign(RECORD_DOMAIN + codec.pack(fields))
    return decode_record(codec.pack([*fields, signature]), network, now=None)


def decode_record(wire: bytes, network: str, now: int | None, *,
                  verdict: tuple[bytes, bool] | None = None) -> Record:
    """Decode and check a record; with `now`, also refuse one expired or from the future.
    `verdict` is a signature check already done on exactly these bytes, as for
    `ops.decode_op` (core/verified.py): taken only when its key is this record's author."""
    raw = codec.unpack(wire, MAX_RECORD_BYTES)
    if type(raw) is not list or len(raw) != 8:
        raise Rejection(Reason.MALFORMED, "a record is an 8-element array")
    fmt, net, author, kind, version, expires, body_raw, sig = raw
    if type(fmt) is not int or fmt != RECORD_FORMAT:
        raise Rejection(Reason.UNSUPPORTED_FORMAT, f"record format {fmt!r}"[:80])
    if not valid_network(net):
        raise Rejection(Reason.MALFORMED, "bad network name")
    if type(author) is not bytes or len(author) != PUBLIC_KEY_BYTES:
        raise Rejection(Reason.MALFORMED, "author is 32 bytes")
    if type(kind) is not str:
        raise Rejection(Reason.MALFORMED, "kind is text")
    if (type(version) is not int or type(expires) is not int
            or not 0 <= version < expires <= MAX_TIMESTAMP_MS):
        raise Rejection(Reason.MALFORMED, "0 <= version < expires")
    if type(sig) is not bytes or len(sig) != SIGNATURE_BYTES:
        raise Rejection(Reason.MALFORMED, "signature is 64 bytes")
    if type(body_raw) is dict and not codec.check_map_keys_sorted(body_raw):
        raise Rejection(Reason.NON_CANONICAL, "body keys are not in canonical order")
    body = _parse_body(kind, body_raw)
    if expires - version > MAX_RECORD_TTL_MS:
        raise Rejection(Reason.RECORD_TTL_TOO_LONG, f"{expires - version} ms")
    if net != network:
        raise Rejection(Reason.WRONG_NETWORK, f"record is for network {net!r}"[:80])
    signed = RECORD_DOMAIN + b"\x97" + bytes(wire[1 : len(wire) - (2 + SIGNATURE_BYTES)])
    if not (verdict[1] if verdict is not None and verdict[0] == author
            else verify(author, signed, sig)):
        raise Rejection(Reason.BAD_SIGNATURE)
    wire = bytes(wire)
    record = Record(net, author, kind, version, expires, body, sig, wire, record_id(wire))
    if now is not None:
        check_times(record, now)
    return record


def check_times(record: Record, now: int) -> None:
    """The checks of `decode_record` that depend on the receiver's clock, last: refuse a
    record expired or from the future (ops.md §7.5, §8.5)."""
    if record.expires <= now:
        raise Rejection(Reason.RECORD_EXPIRED)
    if record.version > now + MAX_CLOCK_SKEW_MS:
        raise Rejection(Reason.FROM_THE_FUTURE,
                        f"version {record.version - now} ms ahead of our clock")


def record_id(wire: bytes) -> bytes:
    """A record's id: BLAKE2b-256 of its wire bytes (protocols/ops.md §8.1)."""
    return hashlib.blake2b(wire, digest_size=32).digest()
