"""The sync engine against protocols/vectors/frames.json (protocols/sync.md §2-§4, §6).

Expected values come only from the JSON. What the spec defines outright (the
HELLO signed bytes, the bucket split and the bucket hash) is recomputed here
with hashlib and the spec's constants; the rest is asked of the implementation:
frames.encode/decode, the session's HELLO checks, and reconcile's bucket hashes,
heads and comparison, including SYNC_HEADS that cover buckets in part.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from liberation_node.core import frames, reconcile
from liberation_node.core.bodies import Register
from liberation_node.core.errors import Rejection
from liberation_node.core.identity import Identity, verify
from liberation_node.core.ops import create_op
from liberation_node.core.replica import Replica
from liberation_node.core.session import Session, SessionClosed, SessionConfig, State

from .test_vectors import named

VECTORS = Path(__file__).resolve().parent.parent / "protocols" / "vectors"
DATA: dict[str, Any] = json.loads((VECTORS / "frames.json").read_text(encoding="utf-8"))
HELLO_DOMAIN = b"liberation-node/hello/v1\x00"  # §4.1, spelled out rather than imported
NETWORK = DATA["hello_checks"]["network"]

# §3: the frame types by name, as the spec lists them.
CLASSES: dict[str, type] = {
    "HELLO": frames.Hello, "CLOSE": frames.Close, "PING": frames.Ping, "PONG": frames.Pong,
    "OPS": frames.Ops, "IHAVE": frames.IHave, "GRAFT": frames.Graft, "PRUNE": frames.Prune,
    "RECORDS": frames.Records, "SYNC_OPEN": frames.SyncOpen, "SYNC_SAME": frames.SyncSame,
    "SYNC_BUCKETS": frames.SyncBuckets, "SYNC_HEADS": frames.SyncHeads, "WANT": frames.Want,
    "SIGNAL": frames.Signal,
}
NAMES = {cls: name for name, cls in CLASSES.items()}

Json = dict[str, Any]


def value(raw: Any, kind: Any) -> Any:
    """A JSON field value as the frame holds it: bin from hex, lists as tuples."""
    if kind == "bin":
        return bytes.fromhex(raw)
    if isinstance(kind, dict) and "list" in kind:
        return tuple(value(v, kind["list"]) for v in raw)
    if isinstance(kind, dict) and "row" in kind:
        assert len(raw) == len(kind["row"])
        return tuple(value(v, k) for v, k in zip(raw, kind["row"], strict=True))
    return raw  # uint, bool, str


def build(type_name: str, fields: Json) -> frames.Frame:
    spec = DATA["types"][type_name]
    assert [name for name, _ in spec["fields"]] == list(fields)
    frame: frames.Frame = CLASSES[type_name](
        *(value(fields[name], kind) for name, kind in spec["fields"]))
    return frame


def check_frame(entry: Json) -> frames.Frame:
    """`entry` ({type, fields, hex}) encodes and decodes exactly as stated."""
    data = bytes.fromhex(entry["hex"])
    frame = build(entry["type"], entry["fields"])
    assert frames.encode(frame) == data and len(data) == entry["size"]
    assert frames.decode(data) == frame
    return frame


def test_frame_types_and_constants() -> None:
    """§3: codes 0-14 in order; §2: the size limits."""
    assert [DATA["types"][n]["code"] for n in CLASSES] == list(range(len(CLASSES)))
    assert set(DATA["types"]) == set(CLASSES)
    for name, spec in DATA["types"].items():
        if spec["fields"]:
            continue
        assert frames.encode(CLASSES[name]()) == bytes([0x91, spec["code"]])
    constants = DATA["constants"]
    assert constants["max_frame_bytes"] == frames.MAX_FRAME_BYTES == 65536
    assert constants["target_frame_bytes"] == frames.TARGET_FRAME_BYTES
    assert constants["max_items"] == frames.MAX_ITEMS
    assert bytes.fromhex(constants["hello_domain_hex"]) == HELLO_DOMAIN
    assert constants["bucket_hash_bytes"] == reconcile.BUCKET_HASH_BYTES
    assert constants["prefix_bytes"] == reconcile.PREFIX_BYTES
    assert constants["max_bits"] == reconcile.MAX_BITS
    assert constants["max_refs"] == frames.MAX_REFS
    # §5.4: MAX_REFS refs of the largest size (78 bytes) fit one frame with room to spare.
    assert constants["max_refs"] * 78 + 16 <= constants["max_frame_bytes"]
    assert constants["heads_budget_bytes"] == reconcile.HEADS_BUDGET_BYTES \
        == constants["max_frame_bytes"] - 4096
    assert constants["head_row_bytes"] == reconcile.HEAD_ROW_BYTES
    assert constants["record_row_bytes"] == reconcile.RECORD_ROW_BYTES


@named([c for c in DATA["cases"] if c["valid"]])
def test_valid_frame(case: Json) -> None:
    frame = check_frame(case)
    data = bytes.fromhex(case["hex"])
    # §2: [type, fields...] - the array header, then the type code.
    code = DATA["types"][case["type"]]["code"]
    assert data[1] == code and NAMES[type(frame)] == case["type"]


@named([c for c in DATA["cases"] if not c["valid"]])
def test_refused_frame(case: Json) -> None:
    data = bytes.fromhex(case["hex"])
    assert len(data) == case["size"]
    with pytest.raises(Rejection) as refused:
        frames.decode(data)
    assert refused.value.reason.value == case["reason"]


def test_every_frame_type_and_verdict_is_covered() -> None:
    valid = {c["type"] for c in DATA["cases"] if c["valid"]}
    assert valid == set(CLASSES)
    verdicts = {c["reason"] for c in DATA["cases"] if not c["valid"]}
    assert verdicts == {"undecodable", "non_canonical", "oversize", "malformed"}


# -- §4 session --------------------------------------------------------------------------------

def test_hello_signed_bytes() -> None:
    hello = DATA["hello"]
    me = Identity.from_seed(bytes.fromhex(hello["seed"]))
    signed = HELLO_DOMAIN + bytes.fromhex(hello["binding_hex"])
    assert signed.hex() == hello["signed_hex"] and me.public_key.hex() == hello["node_id"]
    signature = bytes.fromhex(hello["signature"])
    assert me.sign(signed) == signature and verify(me.public_key, signed, signature)
    frame = frames.decode(bytes.fromhex(hello["frame_hex"]))
    assert isinstance(frame, frames.Hello)
    assert (frame.version, frame.network, frame.node_id, frame.binding_sig) == (
        1, hello["network"], me.public_key, signature)
    # A session of this identity on a connection with this binding sends exactly that HELLO
    # (the software string aside, which is informative).
    session = Session(me, hello["network"], bytes.fromhex(hello["binding_hex"]), 0,
                      SessionConfig(software=frame.software), nonce=1)
    assert session.take_output() == [bytes.fromhex(hello["frame_hex"])]


@named(DATA["hello_checks"]["cases"])
def test_hello_checks(case: Json) -> None:
    setup = DATA["hello_checks"]
    me = Identity.from_seed(bytes.fromhex(setup["local_seed"]))
    session = Session(me, setup["network"], bytes.fromhex(setup["binding_hex"]), 0,
                      SessionConfig(protocol_version=setup["version"]), nonce=1)
    session.take_output()
    reason = None
    try:
        for data in case["inputs_hex"]:
            session.receive(bytes.fromhex(data), 0)
    except SessionClosed as closed:
        reason = closed.reason
    assert reason == case["close_reason"]
    assert (session.state is State.OPEN) == (case["state"] == "open")
    assert (session.peer.hex() if session.peer and case["peer"] else None) == case["peer"]
    assert [NAMES[type(frames.decode(d))] for d in session.take_output()] == case["sent"]


# -- §6 anti-entropy -------------------------------------------------------------------------

ROUND = DATA["round"]


def bucket(author: bytes, bits: int) -> int:
    """§6.3: the top `bits` bits of the author's first two bytes."""
    return (author[0] << 8 | author[1]) >> (16 - bits) if bits else 0


def test_choose_bits_and_bucket_of() -> None:
    for row in DATA["choose_bits"]:
        assert reconcile.choose_bits(row["authors"]) == row["bits"], row
    for row in DATA["bucket_of"]:
        author = bytes.fromhex(row["author"])
        assert reconcile.bucket_of(author, row["bits"]) == row["bucket"]
        assert bucket(author, row["bits"]) == row["bucket"]


def replica(side: str) -> Replica:
    given = ROUND[side]
    rep = Replica(NETWORK)
    for wire in given["ops"]:
        rep.ingest(bytes.fromhex(wire))
    for wire in given["records"]:
        rep.ingest_record(bytes.fromhex(wire), ROUND["now"])
    assert rep.digest().hex() == given["digest"] and reconcile.author_count(rep) == given["authors"]
    assert {a.hex(): s for a, s in rep.frontier().items()} == given["frontier"]
    assert {a.hex(): s for a, s, _ in rep.forks()} == given["forks"]
    return rep


@pytest.mark.parametrize("side", ["a", "b"])
def test_bucket_hashes(side: str) -> None:
    """§6.3: each bucket hashes its authors' feed entries, then their record ids."""
    rep = replica(side)
    bits, salt = ROUND["bits"], bytes.fromhex(ROUND["salt"])
    rows = ROUND[f"buckets_{side}"]
    assert [r["bucket"] for r in rows] == list(range(1 << bits))
    for row in rows:
        authors = sorted(a for a in rep.feeds if bucket(a, bits) == row["bucket"])
        keys = sorted(k for k in rep.records if bucket(k[0], bits) == row["bucket"])
        assert [a.hex() for a in authors] == row["authors"]
        assert [[a.hex(), k] for a, k in keys] == row["records"]
        data = b"".join(rep.feeds[a].entry(a) for a in authors)
        data += b"".join(rep.records[k].id for k in keys)
        assert data.hex() == row["input_hex"]
        digest = hashlib.blake2b(data, digest_size=4, salt=salt + bytes(8)).digest()
        assert digest.hex() == row["hash"]
    expected = bytes.fromhex("".join(r["hash"] for r in rows))
    assert reconcile.bucket_hashes(rep, bits, salt) == expected


def test_round() -> None:
    """§6.2-§6.4: the frames of one round, each as the implementation produces it."""
    a, b = replica("a"), replica("b")
    sync_open, buckets, heads, want = (check_frame(f) for f in ROUND["frames"])
    assert [f["from"] for f in ROUND["frames"]] == ["a", "b", "a", "b"]
    assert isinstance(sync_open, frames.SyncOpen) and isinstance(buckets, frames.SyncBuckets)
    assert isinstance(heads, frames.SyncHeads) and isinstance(want, frames.Want)
    salt = bytes.fromhex(ROUND["salt"])
    assert sync_open == frames.SyncOpen(sync_open.round, a.digest(), reconcile.author_count(a),
                                        salt)
    bits = reconcile.choose_bits(max(sync_open.authors, reconcile.author_count(b)))
    assert bits == ROUND["bits"] == buckets.bits
    assert buckets.hashes == reconcile.bucket_hashes(b, bits, salt)
    differing = reconcile.differing(reconcile.bucket_hashes(a, bits, salt), buckets.hashes)
    assert differing == ROUND["differing"]
    assert reconcile.heads(a, sync_open.round, bits, differing) == heads
    plan = reconcile.compare(b, heads)
    assert want == frames.Want(heads.round, tuple(plan.want_ranges), tuple(plan.want_forks),
                               tuple(plan.want_records))
    check_plan(plan, ROUND["plan_b"])
    heads_b = check_frame(ROUND["heads_b"])
    assert reconcile.heads(b, sync_open.round, bits, differing) == heads_b
    assert isinstance(heads_b, frames.SyncHeads)
    check_plan(reconcile.compare(a, heads_b), ROUND["plan_a"])


def check_plan(plan: reconcile.Plan, expected: Json) -> None:
    def rows(items: list[Any]) -> list[Any]:
        return [[x.hex() if isinstance(x, bytes) else x for x in item]
                if isinstance(item, tuple) else item.hex() for item in items]

    assert {name: rows(getattr(plan, name)) for name in expected} == expected


def test_heads_rows_follow_the_spec() -> None:
    """§6.3: rows by author prefix, seq 0 heads zero-filled, proofs as 8-byte prefixes."""
    a = replica("a")
    heads = build("SYNC_HEADS", ROUND["frames"][2]["fields"])
    assert isinstance(heads, frames.SyncHeads)
    rows = {row[0]: row for row in heads.heads}
    assert list(rows) == sorted(rows)
    for author, feed in a.feeds.items():
        if bucket(author, heads.bits) not in heads.buckets:
            assert author[:8] not in rows
            continue
        _, seq, head, proofs = rows[author[:8]]
        assert seq == feed.head_seq
        assert head == (feed.ops[-1].id[:8] if feed.ops else bytes(8))
        assert proofs == tuple(sorted(p.id[:8] for p in feed.proofs))
    assert any(row[1] == 0 and row[2] == bytes(8) and len(row[3]) == 2 for row in heads.heads)


def test_both_sides_agree_after_the_exchange() -> None:
    a, b = replica("a"), replica("b")
    for target, source in ((a, "b"), (b, "a")):
        for wire in ROUND[source]["ops"]:
            target.ingest(bytes.fromhex(wire))
        for wire in ROUND[source]["records"]:
            target.ingest_record(bytes.fromhex(wire), ROUND["now"])
    assert a.digest() == b.digest() and a.digest().hex() == ROUND["digest_after"]


# -- §6.3-§6.4 buckets covered in part ----------------------------------------------------------

PARTIAL = DATA["partial"]
WINDOW = DATA["window"]


def test_sync_heads_has_a_partial_field() -> None:
    """§3.11: the sixth field lists covered buckets; a valid case has a non-empty one."""
    assert [name for name, _ in DATA["types"]["SYNC_HEADS"]["fields"]][-1] == "partial"
    cases = [c for c in DATA["cases"] if c["valid"] and c["type"] == "SYNC_HEADS"
             and c["fields"]["partial"]]
    assert cases
    for case in cases:
        frame = check_frame(case)
        assert isinstance(frame, frames.SyncHeads)
        assert set(frame.partial) <= set(frame.buckets)


def test_partial_buckets_compare_only_the_listed_rows() -> None:
    """§6.4: in a partial bucket R compares only the feeds and record keys I listed."""
    b = replica("b")
    heads = check_frame(PARTIAL["heads"])
    assert isinstance(heads, frames.SyncHeads) and heads.partial
    bits = PARTIAL["bits"]
    assert heads.bits == bits
    plan = reconcile.compare(b, heads)
    check_plan(plan, PARTIAL["plan_b"])
    listed = {row[0] for row in heads.heads}
    listed_records = {(row[0], row[1]) for row in heads.records}
    named = [x[0] for x in plan.send_ranges + plan.want_ranges] + plan.send_proofs \
        + plan.want_forks
    for author in named:
        if bucket(author[:8] + bytes(24), bits) in heads.partial:
            assert author[:8] in listed
    for author, kind in plan.send_records + plan.want_records:
        if bucket(author[:8] + bytes(24), bits) in heads.partial:
            assert (author[:8], kind) in listed_records
    # B holds feeds in the partial buckets that A did not list: they are left alone.
    assert any(bucket(x, bits) in heads.partial and x[:8] not in listed for x in b.feeds)


def window_replica() -> Replica:
    """The replica the 'window' description spells out."""
    rep = Replica(NETWORK)
    for i in range(1, WINDOW["authors"] + 1):
        who = Identity.from_seed(i.to_bytes(2, "big") * 16)
        op = create_op(who, network=NETWORK, seq=1, prev=None,
                       timestamp=WINDOW["register_timestamp_base"] + i, body=Register(f"n{i}"))
        assert rep.ingest(op.wire).outcome == "applied"
    return rep


def test_a_bucket_too_big_goes_in_part() -> None:
    """§6.3: the rows sorted, a cyclic window of room_feeds rows from rotate mod n."""
    prefixes = [bytes.fromhex(p) for p in WINDOW["prefixes"]]
    assert prefixes == sorted(prefixes) and len(prefixes) == WINDOW["authors"]
    salt = bytes.fromhex(WINDOW["salt"])
    rotate = int.from_bytes(salt[:4], "big")
    assert rotate == WINDOW["rotate"] and rotate % len(prefixes) == WINDOW["start"]
    room = (DATA["constants"]["heads_budget_bytes"] // 2) // DATA["constants"]["head_row_bytes"]
    assert room == WINDOW["room_feeds"] < len(prefixes)
    window = {prefixes[(WINDOW["start"] + k) % len(prefixes)] for k in range(room)}
    data = bytes.fromhex(WINDOW["frame"]["hex"])
    assert len(data) == WINDOW["frame"]["size"] <= frames.MAX_FRAME_BYTES
    heads = frames.decode(data)
    assert isinstance(heads, frames.SyncHeads)
    assert heads.buckets == (0,) and heads.partial == (0,) and heads.records == ()
    rows = [row[0] for row in heads.heads]
    assert rows == sorted(rows) and set(rows) == window
    # The implementation picks exactly these rows from the replica described.
    rep = window_replica()
    assert sorted(a[:8] for a in rep.feeds) == prefixes
    assert reconcile.heads(rep, heads.round, heads.bits, [0], rotate=rotate) == heads
