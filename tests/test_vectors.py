"""The implementation against the protocol vectors in protocols/vectors/ (protocols/ops.md).

Expected values come only from the JSON files; this module never runs the
generator to produce them. It recomputes what the spec defines (signed bytes,
BLAKE2b ids, digest formulas) on its own and asks the implementation for the
rest. The last test checks that the files are what scripts/make_vectors.py
produces today, so the vectors cannot drift from the code unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from liberation_node.core import codec
from liberation_node.core.bodies import Body, Claim, Post, PostHeader, Register, Retract, Transfer
from liberation_node.core.errors import Reason, Rejection
from liberation_node.core.identity import Identity, id_from_text, short_id, verify
from liberation_node.core.ingested import Ingested
from liberation_node.core.ops import Dep, create_op, decode_carried, decode_op
from liberation_node.core.records import (
    NodeInfo,
    NodeLinks,
    RecordBody,
    create_record,
    decode_record,
)
from liberation_node.core.replica import Replica

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "protocols" / "vectors"
OP_DOMAIN = b"liberation-node/op/v1\x00"  # §4.1, spelled out here rather than imported
RECORD_DOMAIN = b"liberation-node/record/v1\x00"  # §8.1
DIGEST_DOMAIN = b"liberation-node/digest/v1"  # §10
BIN_FIELDS = {"to", "post", "hash"}  # the body fields that are bin (§6.1, §12.2)

Json = dict[str, Any]
Test = TypeVar("Test", bound=Callable[..., None])


def load(name: str) -> Json:
    data: Json = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


IDENTITY = load("identity.json")
ENCODING = load("encoding.json")
OPS_VALID = load("ops_valid.json")
OPS_INVALID = load("ops_invalid.json")
RECORDS = load("records.json")
LEDGER = load("ledger.json")
FORKS = load("forks.json")
SCENARIOS = [*LEDGER["cases"], *FORKS["cases"]]


def named(cases: list[Json]) -> Callable[[Test], Test]:
    """Parametrize a test over `cases`, each shown by its name."""
    mark = pytest.mark.parametrize("case", cases, ids=[c["name"] for c in cases])

    def apply(test: Test) -> Test:
        marked: Test = mark(test)
        return marked

    return apply


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def reason_of(fn: Any, *args: Any, **kwargs: Any) -> str | None:
    try:
        fn(*args, **kwargs)
    except Rejection as rejection:
        return rejection.reason.value
    return None


def test_every_file_names_its_spec_section() -> None:
    for path in sorted(VECTORS.glob("*.json")):
        data = load(path.name)
        assert data["description"] and data["spec"].startswith(
            ("protocols/ops.md §", "protocols/sync.md §", "protocols/transport.md §",
             "protocols/discovery.md §")), \
            path.name
        assert data["cases"], path.name


# -- §2 identity ----------------------------------------------------------------------------

@named([{"name": c["seed"][:8], **c} for c in IDENTITY["cases"]])
def test_identity_keys_text_and_signature(case: Json) -> None:
    me = Identity.from_seed(bytes.fromhex(case["seed"]))
    assert me.public_key.hex() == case["public_key"]
    assert me.text == case["text"] and short_id(me.public_key) == case["short"]
    assert id_from_text(case["text"]) == me.public_key
    message = bytes.fromhex(case["message_hex"])
    assert me.sign(message).hex() == case["signature"]
    assert verify(me.public_key, message, bytes.fromhex(case["signature"]))


@named(IDENTITY["parse"])
def test_identity_text_parsing(case: Json) -> None:
    try:
        key: str | None = id_from_text(case["text"]).hex()
    except ValueError:
        key = None
    assert key == case["public_key"]
    assert (key is not None) == case["valid"]


@named(IDENTITY["verify"])
def test_signature_verification(case: Json) -> None:
    key, message, signature = (bytes.fromhex(case[k])
                               for k in ("public_key", "message_hex", "signature"))
    assert verify(key, message, signature) is case["valid"]


# -- §3 canonical encoding ------------------------------------------------------------------

def from_typed(typed: Json) -> Any:
    ((tag, value),) = typed.items()
    if tag == "bin":
        return bytes.fromhex(value)
    if tag == "array":
        return [from_typed(v) for v in value]
    if tag == "map":
        return {from_typed(k): from_typed(v) for k, v in value}
    return value  # nil, bool, int, str


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (so True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@named(ENCODING["cases"])
def test_encoding(case: Json) -> None:
    data = bytes.fromhex(case["hex"])
    assert (reason_of(codec.unpack, data, 1 << 20) or "ok") == case["decode"]
    if "depth" in case:  # nested containers, given as hex only (ops.md §3.3.1)
        depth, value = 0, codec.unpack(data, 1 << 20) if case["canonical"] else None
        while isinstance(value, list | dict):
            depth, value = depth + 1, value[0] if isinstance(value, list) else value["a"]
        assert depth == (case["depth"] if case["canonical"] else 0)
        assert case["canonical"] == (case["depth"] <= 1024)
    elif case["canonical"]:
        value = from_typed(case["value"])
        assert codec.pack(value) == data
        assert same(codec.unpack(data, 1 << 20), value)
    elif "canonical_hex" in case:
        assert codec.pack(from_typed(case["value"])).hex() == case["canonical_hex"]
        assert case["canonical_hex"] != case["hex"]
    if "refused_by" in case:  # accepted by the generic step, refused by the field (§3.4)
        file, name = case["refused_by"].split(":")
        refusing = {c["name"]: c for c in load(file)["cases"]}[name]
        assert refusing["reason"] in ("non_canonical", "malformed", "bad_body")
        assert reason_of(decode_op, bytes.fromhex(refusing["wire_hex"]),
                         refusing["network"]) == refusing["reason"]


# -- §4-§6 valid ops ------------------------------------------------------------------------

def body_from_json(kind: str, fields: Json) -> Body:
    raw: Json = {k: bytes.fromhex(v) if k in BIN_FIELDS else v for k, v in fields.items()}
    if kind == "human.register":
        return Register(raw["name"])
    if kind == "ledger.claim":
        return Claim(raw["week"])
    if kind == "ledger.transfer":
        return Transfer(raw["to"], raw["amount"], raw["memo"])
    if kind == "message.post" and "hash" in raw:  # format 2 (§12.2)
        return PostHeader(raw["channel"], raw["priority"], raw["size"], raw["hash"])
    if kind == "message.post":
        return Post(raw["channel"], raw["text"], raw["priority"], raw.get("to"))
    assert kind == "message.retract"
    return Retract(raw["post"])


@named(OPS_VALID["cases"])
def test_valid_op(case: Json) -> None:
    given = case["input"]
    deps = [[bytes.fromhex(d["author"]), d["seq"], bytes.fromhex(d["id"])]
            for d in given["deps"]]
    prev = bytes.fromhex(given["prev"]) if given["prev"] else None
    author = bytes.fromhex(case["author"])
    body_map = {k: bytes.fromhex(v) if k in BIN_FIELDS else v for k, v in given["body"].items()}
    assert codec.pack(body_map).hex() == case["body_hex"]
    # §4.1: the signed bytes are the domain and the first nine fields as a 9-element array.
    nine = [case["format"], given["network"], author, given["seq"], prev, deps,
            given["timestamp"], given["kind"], body_map]
    signed = OP_DOMAIN + codec.pack(nine)
    assert signed.hex() == case["signed_hex"]
    signature = bytes.fromhex(case["signature"])
    assert verify(author, signed, signature)
    wire = bytes.fromhex(case["wire_hex"])
    assert wire == codec.pack([*nine, signature])
    assert blake2b_256(wire).hex() == case["id"]
    # The implementation builds the same op from the inputs and decodes it back.
    me = Identity.from_seed(bytes.fromhex(given["seed"]))
    assert me.public_key == author and me.text == case["author_text"]
    body = body_from_json(given["kind"], given["body"])
    op = create_op(me, network=given["network"], seq=given["seq"], prev=prev,
                   timestamp=given["timestamp"], body=body, format=case["format"],
                   deps=tuple(Dep(a, s, i) for a, s, i in reversed(deps)))
    assert op.wire == wire and op.id.hex() == case["id"] and op.signature == signature
    back = decode_op(wire, given["network"])
    assert (back.author, back.seq, back.prev, back.timestamp, back.kind, back.body,
            back.format) == (author, given["seq"], prev, given["timestamp"], given["kind"],
                             body, case["format"])
    assert [[d.author, d.seq, d.id] for d in back.deps] == deps
    if "content_hex" in case:  # §12.3: the content, after the header's ten elements
        content = bytes.fromhex(case["content_hex"])
        assert isinstance(body, PostHeader) and len(content) == body.size
        assert blake2b_256(content) == body.hash
        carried = bytes.fromhex(case["carried_hex"])
        assert carried == b"\x9b" + wire[1:] + codec.pack(content)
        assert decode_carried(carried, given["network"]) == (back._replace(content=content),
                                                             None)


# -- §7 ops refused on their own ------------------------------------------------------------

@named(OPS_INVALID["cases"])
def test_invalid_op(case: Json) -> None:
    wire = bytes.fromhex(case["wire_hex"])
    now = case.get("now")
    assert reason_of(decode_op, wire, case["network"], now=now) == case["reason"]
    result = Replica(case["network"]).ingest(wire, now)
    assert result.outcome == "rejected"
    assert result.rejection is not None and result.rejection.reason == case["reason"]


def test_from_the_future_only_delays() -> None:
    """§5.4: the clock bound is local policy; the same bytes pass once the clock catches up."""
    ops = [c for c in OPS_INVALID["cases"] if c["reason"] == "from_the_future"]
    records = [c for c in RECORDS["cases"] if c["reason"] == "from_the_future"]
    assert ops and records
    for case in ops:
        wire, later = bytes.fromhex(case["wire_hex"]), case["now"] + 1
        assert reason_of(decode_op, wire, case["network"], now=later) is None, case["name"]
        assert reason_of(decode_op, wire, case["network"]) is None, case["name"]
        assert Replica(case["network"]).ingest(wire, later).outcome != "rejected", case["name"]
    for case in records:
        wire, later = bytes.fromhex(case["wire_hex"]), case["now"] + 1
        assert reason_of(decode_record, wire, case["network"], later) is None, case["name"]
        assert Replica(case["network"]).ingest_record(wire, later).outcome == "applied"


def test_vectors_cover_every_reason_and_outcome() -> None:
    steps = [s for seq in OPS_INVALID["sequences"] for s in seq["steps"]]
    reasons = {c["reason"] for c in OPS_INVALID["cases"]}
    reasons |= {s["reason"] for s in steps if s["reason"]}
    reasons |= {w["reason"] for s in steps for w in s["rejected_waiters"]}
    reasons |= {c["reason"] for c in RECORDS["cases"] if c["reason"]}
    reasons |= {c["content_reason"] for c in load("bodies.json")["cases"] if c["content_reason"]}
    assert reasons == {r.value for r in Reason}
    assert {s["outcome"] for s in steps} == {"applied", "pending", "duplicate", "fork",
                                             "rejected"}
    voids = {e["effect"] for case in SCENARIOS for e in case["final"]["effects"].values()}
    assert voids >= {"applied", "not_registered", "already_registered", "already_claimed",
                     "week_out_of_range", "overdraft", "forked"}


# -- §5.3, §5.5, §9: feed context -----------------------------------------------------------

def check_step(step: Json, result: Ingested) -> None:
    label = step["label"]
    assert result.outcome == step["outcome"], label
    assert (result.rejection.reason.value if result.rejection else None) == step["reason"], label
    missing = result.missing
    assert ({"author": missing.author.hex(), "seq": missing.seq, "id": missing.id.hex()}
            if missing else None) == step["missing"], label
    assert [op.id.hex() for op in result.applied] == step["applied"], label
    assert [op.id.hex() for op in result.excluded] == step["excluded"], label
    assert [a.hex() for a in result.forked] == step["forked"], label
    assert [{"id": op.id.hex(), "reason": r.reason.value}
            for op, r in result.rejected_waiters] == step["rejected_waiters"], label


def check_feeds(replica: Replica, final: Json) -> None:
    assert {a.hex(): s for a, s in replica.frontier().items()} == final["frontier"]
    forks = {a.hex(): (s, [p.id.hex() for p in proofs]) for a, s, proofs in replica.forks()}
    assert forks == {f["author"]: (f["fork_seq"], f["proofs"]) for f in final["forks"]}
    for fork in final["forks"]:  # §9.2: two proofs, lowest ids first
        assert fork["proofs"] == sorted(fork["proofs"]) and len(fork["proofs"]) == 2
    assert sorted(i.hex() for i in replica.ops) == final["held"]
    assert replica.digest().hex() == final["digest"]


@named(OPS_INVALID["sequences"])
def test_feed_sequence(case: Json) -> None:
    replica = Replica(case["network"])
    for step in case["steps"]:
        check_step(step, replica.ingest(bytes.fromhex(step["wire_hex"])))
    check_feeds(replica, case["final"])
    assert len(replica.pending) == case["final"]["pending"]


# -- §8 records -----------------------------------------------------------------------------

def record_body(kind: str, fields: Json) -> RecordBody:
    if kind == "node.info":
        return NodeInfo(fields["name"], fields["software"], tuple(fields["urls"]),
                        tuple(fields["caps"]),
                        tuple((bytes.fromhex(a), s) for a, s in fields["frontier"]))
    return NodeLinks(tuple((bytes.fromhex(p), r) for p, r in fields["links"]))


@named(RECORDS["cases"])
def test_record(case: Json) -> None:
    wire = bytes.fromhex(case["wire_hex"])
    assert reason_of(decode_record, wire, case["network"], case["now"]) == case["reason"]
    now = case["now"] if case["now"] is not None else case.get("input", {}).get("version", 0)
    result = Replica(case["network"]).ingest_record(wire, now)
    assert result.outcome == ("applied" if case["valid"] else "rejected")
    assert (result.rejection.reason.value if result.rejection else None) == case["reason"]
    if not case["valid"]:
        return
    given = case["input"]
    record = decode_record(wire, case["network"], case["now"])
    assert record.id.hex() == case["id"] == blake2b_256(wire).hex()
    # §8.1: the signed bytes are the domain and the first seven fields as a 7-element array.
    assert (RECORD_DOMAIN + b"\x97" + wire[1:-66]).hex() == case["signed_hex"]
    assert verify(record.author, bytes.fromhex(case["signed_hex"]), record.signature)
    assert record.signature.hex() == case["signature"] and record.author.hex() == case["author"]
    body = record_body(given["kind"], given["body"])
    assert (record.kind, record.version, record.expires, record.body) == (
        given["kind"], given["version"], given["expires"], body)
    me = Identity.from_seed(bytes.fromhex(given["seed"]))
    made = create_record(me, network=case["network"], version=given["version"],
                         ttl_ms=given["expires"] - given["version"], body=body)
    assert made.wire == wire


@named(RECORDS["merges"])
def test_record_merge(case: Json) -> None:
    replica = Replica(case["network"])
    for step in case["steps"]:
        result = replica.ingest_record(bytes.fromhex(step["wire_hex"]), case["now"])
        assert result.outcome == step["outcome"], step["id"]
        # §5.5, §8.4: an applied record names itself and the record it replaced.
        assert (result.record.id.hex() if result.record else None) == (
            step["id"] if step["outcome"] == "applied" else None), step["id"]
        assert (result.replaced.id.hex() if result.replaced else None) == step["replaced"]
    assert sorted(r.id.hex() for r in replica.records.values()) == case["held"]
    ids = b"".join(bytes.fromhex(i) for i in case["held"])  # §10: sorted record ids
    assert blake2b_256(DIGEST_DOMAIN + b"/records" + ids).hex() == case["records_digest"]
    assert replica.records_digest().hex() == case["records_digest"]
    assert replica.digest().hex() == case["digest"]


# -- §6.2, §9, §10: whole histories ---------------------------------------------------------

def check_effects(replica: Replica, ops: dict[str, bytes], effects: Json) -> None:
    for label, wire in ops.items():
        oid = blake2b_256(wire)
        want = effects[label]
        assert (oid in replica.ops) == want["held"], label
        effect = replica.ledger.effects.get(oid) if want["held"] else None
        got = None if effect is None else (effect.void.value if effect.void else "applied")
        assert (got, None if effect is None else effect.amount) == (
            want["effect"], want["amount"]), label


def check_accounts(replica: Replica, rows: list[Json]) -> None:
    ledger = replica.ledger
    for row in rows:
        author = bytes.fromhex(row["author"])
        acct = ledger.accounts.get(author)
        assert (acct is not None and acct.registered_at is not None) == row["registered"]
        assert ledger.incoming(author) == row["incoming"], row["name"]
        if acct is None:
            assert row["claimed"] == row["spent"] == row["acknowledged_credit"] == 0
            continue
        assert sorted(acct.claimed_weeks) == row["claimed_weeks"], row["name"]
        assert (acct.claimed, acct.acked_credit, acct.spent, acct.spendable) == (
            row["claimed"], row["acknowledged_credit"], row["spent"], row["spendable"])
        if row["registered"]:
            assert acct.name == row["registered_name"]


def check_digests(replica: Replica, state: Json) -> None:
    """§10, recomputed from the spec: entries in author order, then the two sub-digests."""
    entries = state["feed_entries"]
    assert [e["author"] for e in entries] == sorted(e["author"] for e in entries)
    for entry in entries:
        author = bytes.fromhex(entry["author"])
        assert replica.feeds[author].entry(author).hex() == entry["entry_hex"]
    ops_digest = blake2b_256(DIGEST_DOMAIN + b"/ops"
                             + b"".join(bytes.fromhex(e["entry_hex"]) for e in entries))
    assert ops_digest.hex() == state["ops_digest"] == replica.ops_digest().hex()
    assert replica.records_digest().hex() == state["records_digest"]
    records_digest = bytes.fromhex(state["records_digest"])
    assert blake2b_256(DIGEST_DOMAIN + ops_digest + records_digest).hex() == state["digest"]


def check_state(replica: Replica, ops: dict[str, bytes], state: Json) -> None:
    check_feeds(replica, state)
    check_effects(replica, ops, state["effects"])
    check_accounts(replica, state["accounts"])
    ledger = replica.ledger
    assert (ledger.granted, ledger.claimed, ledger.pool_available) == (
        state["pool"]["granted"], state["pool"]["claimed"], state["pool"]["available"])
    assert ledger.transferred == state["transferred"]
    check_digests(replica, state)


def check_entry_layout(case: Json) -> None:
    """§10.1: an entry is [author, head seq, head id or nil, [proof ids]], canonical msgpack."""
    state = case["final"]
    heads = {row["id"]: (row["author"], row["seq"]) for row in case["ops"]}
    forks = {f["author"]: f["proofs"] for f in state["forks"]}
    for entry in state["feed_entries"]:
        author, seq, head, proofs = codec.unpack(bytes.fromhex(entry["entry_hex"]), 1 << 16)
        assert author.hex() == entry["author"] and seq == state["frontier"][entry["author"]]
        if seq == 0:
            assert head is None
        else:
            assert head.hex() in state["held"] and heads[head.hex()] == (author.hex(), seq)
        assert [p.hex() for p in proofs] == forks.get(entry["author"], [])


def scenario_ops(case: Json) -> dict[str, bytes]:
    ops = {row["label"]: bytes.fromhex(row["wire_hex"]) for row in case["ops"]}
    for row in case["ops"]:
        assert blake2b_256(ops[row["label"]]).hex() == row["id"]
    return ops


@named(SCENARIOS)
def test_history_in_listed_order(case: Json) -> None:
    ops = scenario_ops(case)
    replica = Replica(case["network"])
    marks = {m["after_step"]: m for m in case["checkpoints"]}
    for i, step in enumerate(case["steps"], start=1):
        check_step(step, replica.ingest(bytes.fromhex(step["wire_hex"])))
        if i in marks:
            check_state(replica, ops, marks[i])
    check_state(replica, ops, case["final"])
    check_entry_layout(case)


@named(SCENARIOS)
def test_history_in_other_orders(case: Json) -> None:
    """DESIGN §2: the same ops give the same state whatever order they arrive in."""
    ops = scenario_ops(case)
    for order in case["orders"]:
        assert sorted(order) == sorted(ops)
        replica = Replica(case["network"])
        for label in order:
            replica.ingest(ops[label])
        check_state(replica, ops, case["final"])


def test_claims_reach_back_four_weeks_at_most() -> None:
    """ops.md §6.2.7: before the fix the window opened at the register's week, so a claim
    ten weeks late was applied, and so was a genesis-dated identity's claim of 2025."""
    case = {c["name"]: c for c in LEDGER["cases"]}["claim_arrears"]
    effects = {label: e["effect"] for label, e in case["final"]["effects"].items()}
    assert [effects[row["label"]] for row in case["ops"] if row["kind"] == "ledger.claim"] \
        == ["week_out_of_range", "week_out_of_range", "applied", "applied",
            "week_out_of_range", "applied"]


def test_ledger_constants_are_the_seed_defaults() -> None:
    """§6.2.6: $19 trillion pool, $800 a week, $104,000 housing + $104,000 investment."""
    constants = LEDGER["constants"]
    assert constants == {"pool_total": 19_000_000_000_000 * 100, "weekly_flow": 800 * 100,
                         "housing_credit": 104_000 * 100, "investment_pool": 104_000 * 100,
                         # §6.2.7, §14: four weeks of arrears; 2025-01-01T00:00:00Z
                         "claim_arrears_ms": 28 * 86_400_000, "genesis": 1_735_689_600_000}
    registers = [row["label"] for row in LEDGER["cases"][0]["ops"]
                 if row["kind"] == "human.register"]
    effects = LEDGER["cases"][0]["final"]["effects"]
    grant = constants["housing_credit"] + constants["investment_pool"]
    assert {effects[label]["amount"] for label in registers
            if effects[label]["effect"] == "applied"} == {grant}


# -- drift ----------------------------------------------------------------------------------

def test_vectors_are_what_the_generator_produces() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_vectors.py"), "--check"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
