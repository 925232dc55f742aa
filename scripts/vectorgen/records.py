"""records.json: node.info and node.links records, refusals, last-writer-wins (ops.md §8)."""

from __future__ import annotations

from typing import Any

from liberation_node.core import codec
from liberation_node.core.identity import Identity
from liberation_node.core.ops import MAX_CLOCK_SKEW_MS
from liberation_node.core.records import (
    MAX_RECORD_TTL_MS,
    MAX_RTT_MS,
    RECORD_DOMAIN,
    NodeInfo,
    NodeLinks,
    Record,
    RecordBody,
    create_record,
    decode_record,
)
from liberation_node.core.replica import Replica

from .common import (
    ALICE,
    BOB,
    CAROL,
    HOUR,
    MINUTE,
    NETWORK,
    OTHER_NETWORK,
    T0,
    h,
    rejection_reason,
    signed_record,
)


def _body_json(body: RecordBody) -> dict[str, Any]:
    if isinstance(body, NodeInfo):
        return {"caps": list(body.caps),
                "frontier": [[h(a), s] for a, s in sorted(body.frontier)],
                "name": body.name, "software": body.software, "urls": list(body.urls)}
    return {"links": [[h(p), r] for p, r in sorted(body.links)]}


def _record(signer: Identity, version: int, ttl: int, body: RecordBody) -> Record:
    return create_record(signer, network=NETWORK, version=version, ttl_ms=ttl, body=body)


def _valid(name: str, description: str, signer: Identity, record: Record,
           now: int | None = None) -> dict[str, Any]:
    assert rejection_reason(decode_record, record.wire, NETWORK, now) is None
    signed = RECORD_DOMAIN + b"\x97" + record.wire[1:-66]
    assert signer.sign(signed) == record.signature
    return {
        "name": name, "description": description, "network": NETWORK, "now": now,
        "valid": True, "reason": None,
        "input": {"seed": h(signer.seed), "kind": record.kind, "version": record.version,
                  "expires": record.expires, "body": _body_json(record.body)},
        "author": h(record.author),
        "signed_hex": h(signed), "signature": h(record.signature),
        "wire_hex": h(record.wire), "id": h(record.id),
    }


def _invalid(name: str, description: str, wire: bytes, reason: str,
             now: int | None = None) -> dict[str, Any]:
    got = rejection_reason(decode_record, wire, NETWORK, now)
    assert got == reason, (name, got)
    return {"name": name, "description": description, "network": NETWORK, "now": now,
            "valid": False, "reason": reason, "wire_hex": h(wire)}


INFO = NodeInfo("alice-laptop", "liberation-node/0.1.0",
                ("https://192.0.2.10:7443/v1/signal",), ("relay", "sync"),
                ((ALICE.public_key, 12), (BOB.public_key, 3)))
LINKS = NodeLinks(((ALICE.public_key, 35), (CAROL.public_key, 120)))


def _info_map(**over: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"caps": ["sync"], "frontier": [], "name": "n", "software": "s",
                         "urls": []}
    m.update(over)
    return codec.sorted_map(m)


def _fields(kind: Any = "node.info", body: Any = None, **over: Any) -> list[Any]:
    f: dict[str, Any] = {"format": 1, "network": NETWORK, "author": ALICE.public_key,
                         "kind": kind, "version": T0, "expires": T0 + HOUR,
                         "body": _info_map() if body is None else body}
    f.update(over)
    return list(f.values())


def _cases() -> list[dict[str, Any]]:
    info = _record(ALICE, T0, HOUR, INFO)
    wire = signed_record
    unsorted_frontier = sorted([[ALICE.public_key, 1], [BOB.public_key, 1]], reverse=True)
    tampered = info.wire[:-1] + bytes([info.wire[-1] ^ 0x01])
    return [
        _valid("node_info", "a full node.info", ALICE, info),
        _valid("node_info_empty", "empty name, software and lists are allowed", BOB,
               _record(BOB, T0, MINUTE, NodeInfo("", "", (), (), ()))),
        _valid("node_links", "links sorted by peer id", BOB, _record(BOB, T0, HOUR, LINKS)),
        _valid("node_links_empty", "no peers", CAROL,
               _record(CAROL, T0, HOUR, NodeLinks(()))),
        _valid("ttl_at_limit", "expires - version = 24 h exactly", CAROL,
               _record(CAROL, T0, MAX_RECORD_TTL_MS, NodeLinks(((ALICE.public_key, 0),)))),
        _valid("not_yet_expired", "now = expires - 1", ALICE, info, now=info.expires - 1),
        _invalid("expired_at_expires", "a record stops counting at expires: now = expires",
                 info.wire, "record_expired", now=info.expires),
        _invalid("expired_long_ago", "now well after expires", info.wire, "record_expired",
                 now=info.expires + 24 * HOUR),
        _invalid("version_too_far_ahead", "now is 15 min + 1 ms behind the record's version",
                 info.wire, "from_the_future", now=info.version - MAX_CLOCK_SKEW_MS - 1),
        _invalid("ttl_too_long", "expires - version = 24 h + 1 ms",
                 wire(ALICE, _fields(expires=T0 + MAX_RECORD_TTL_MS + 1)),
                 "record_ttl_too_long"),
        _invalid("version_equals_expires", "0 <= version < expires",
                 wire(ALICE, _fields(expires=T0)), "malformed"),
        _invalid("seven_elements", "a record is an 8-element array",
                 codec.pack(_fields()), "malformed"),
        _invalid("author_31_bytes", "author is 32 bytes",
                 wire(ALICE, _fields(author=ALICE.public_key[:31])), "malformed"),
        _invalid("kind_not_text", "kind is text", wire(ALICE, _fields(kind=7)), "malformed"),
        _invalid("format_2", "record format is 1", wire(ALICE, _fields(format=2)),
                 "unsupported_format"),
        _invalid("kind_unknown", "only node.info and node.links",
                 wire(ALICE, _fields(kind="node.status", body={})), "unknown_kind"),
        _invalid("kind_unknown_body_not_map", "for records the body's shape comes first",
                 wire(ALICE, _fields(kind="node.status", body=[])), "bad_body"),
        _invalid("info_missing_field", "node.info has exactly five fields",
                 wire(ALICE, _fields(body={"name": "n"})), "bad_body"),
        _invalid("info_extra_field", "node.info has exactly five fields",
                 wire(ALICE, _fields(body=_info_map(zone="x"))), "bad_body"),
        _invalid("info_empty_url", "each URL has 1..256 bytes",
                 wire(ALICE, _fields(body=_info_map(urls=[""]))), "bad_body"),
        _invalid("info_too_many_caps", "at most 16 caps",
                 wire(ALICE, _fields(body=_info_map(caps=[f"c{i}" for i in range(17)]))),
                 "bad_body"),
        _invalid("info_frontier_unsorted", "frontier sorted by author, each author once",
                 wire(ALICE, _fields(body=_info_map(frontier=unsorted_frontier))),
                 "bad_body"),
        _invalid("info_name_too_long", "name has at most 64 bytes",
                 wire(ALICE, _fields(body=_info_map(name="n" * 65))), "bad_body"),
        _invalid("links_rtt_too_large", f"rtt at most {MAX_RTT_MS} ms",
                 wire(ALICE, _fields("node.links",
                                     {"links": [[BOB.public_key, MAX_RTT_MS + 1]]})),
                 "bad_body"),
        _invalid("links_body_not_map", "a body is a map",
                 wire(ALICE, _fields("node.links", [[BOB.public_key, 1]])), "bad_body"),
        _invalid("body_keys_unsorted", "body keys in UTF-8 byte order",
                 wire(ALICE, _fields(body={"urls": [], "software": "s", "name": "n",
                                           "frontier": [], "caps": []})), "non_canonical"),
        _invalid("body_bin_key", "body keys are str: a bin key is not canonical",
                 wire(ALICE, _fields("node.links", {b"links": []})), "non_canonical"),
        _invalid("other_network", "a valid record of network 'othernet'",
                 wire(ALICE, _fields(network=OTHER_NETWORK)), "wrong_network"),
        _invalid("bad_signature", "last signature bit flipped", tampered, "bad_signature"),
        _invalid("signed_by_other_key", "author alice, signed by bob",
                 wire(BOB, _fields()), "bad_signature"),
    ]


def _merge(name: str, description: str, now: int, records: list[Record]) -> dict[str, Any]:
    replica = Replica(NETWORK)
    steps = []
    for record in records:
        result = replica.ingest_record(record.wire, now)
        steps.append({"wire_hex": h(record.wire), "id": h(record.id),
                      "version": record.version, "outcome": result.outcome.value,
                      "replaced": h(result.replaced.id) if result.replaced else None})
    return {
        "name": name, "description": description, "network": NETWORK, "now": now,
        "steps": steps,
        "held": sorted(h(r.id) for r in replica.records.values()),
        "records_digest": h(replica.records_digest()),
        "digest": h(replica.digest()),
    }


def _merges() -> list[dict[str, Any]]:
    old = _record(ALICE, T0, HOUR, INFO)
    new = _record(ALICE, T0 + MINUTE, HOUR, NodeInfo("alice-laptop", "liberation-node/0.1.1",
                                                         (), ("sync",), ()))
    tie_a = _record(BOB, T0, HOUR, NodeLinks(((ALICE.public_key, 10),)))
    tie_b = _record(BOB, T0, HOUR, NodeLinks(((ALICE.public_key, 20),)))
    lo, hi = sorted([tie_a, tie_b], key=lambda r: r.id)
    links = _record(ALICE, T0, HOUR, LINKS)
    short = _record(CAROL, T0, MINUTE, NodeLinks(()))
    now = T0 + 2 * MINUTE
    return [
        _merge("newer_version_wins", "higher version replaces; the older one is stale",
               T0, [old, new, old, new]),
        _merge("newer_version_wins_reversed", "same records, other order: same result",
               T0, [new, old]),
        _merge("version_tie_higher_id_wins", "equal versions: the higher record id wins",
               T0, [hi, lo]),
        _merge("version_tie_higher_id_wins_reversed", "same records, other order",
               T0, [lo, hi]),
        _merge("kinds_are_separate", "one record per (author, kind)", T0, [old, links]),
        _merge("expired_on_arrival", "an expired record is refused given now",
               now, [old, short]),
    ]


def build() -> dict[str, Any]:
    return {
        "description": "Signed last-writer-wins records. 'cases': a record decoded for "
                       "'network' (and, when 'now' is not null, checked against that clock "
                       "reading), valid with its inputs, signed bytes and id, or refused "
                       "with 'reason'. 'merges': records ingested in order with 'now'; the "
                       "outcome of each (applied, duplicate, stale, rejected) and, when "
                       "applied, the id of the record it replaced; the ids held at the end "
                       "and the digests.",
        "spec": "protocols/ops.md §8, §10, §5.4",
        "cases": _cases(),
        "merges": _merges(),
    }
