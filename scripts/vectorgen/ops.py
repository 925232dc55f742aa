"""ops_valid.json and the decode cases of ops_invalid.json (ops.md §3-§7)."""

from __future__ import annotations

from typing import Any

from liberation_node.core import codec
from liberation_node.core.bodies import (
    MAX_AMOUNT_CENTS,
    MAX_MEMO_BYTES,
    MAX_TEXT_BYTES,
    Claim,
    Post,
    Register,
    Retract,
    Transfer,
    dump_body,
)
from liberation_node.core.identity import Identity
from liberation_node.core.ops import (
    DEFAULT_GENESIS_MS,
    LEGACY_FORMAT,
    MAX_CLOCK_SKEW_MS,
    MAX_DEPS,
    MAX_OP_BYTES,
    MAX_SEQ,
    MAX_TIMESTAMP_MS,
    OP_DOMAIN,
    Dep,
    Op,
    create_op,
    decode_op,
)

from .common import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    HOUR,
    MINUTE,
    NETWORK,
    OTHER_NETWORK,
    T0,
    Raw,
    Writer,
    body_json,
    dep_json,
    enc,
    h,
    hx,
    rejection_reason,
    signed_op,
    who,
)

# -- valid ops ----------------------------------------------------------------------------


def _valid(name: str, description: str, signer: Identity, op: Op) -> dict[str, Any]:
    _, body_map = dump_body(op.body)
    body_map = codec.sorted_map(body_map)
    fields = [op.format, op.network, op.author, op.seq, op.prev,
              [[d.author, d.seq, d.id] for d in op.deps], op.timestamp, op.kind, body_map]
    signed = OP_DOMAIN + codec.pack(fields)
    assert signed == OP_DOMAIN + b"\x99" + op.wire[1:-66]
    assert signer.sign(signed) == op.signature
    case: dict[str, Any] = {
        "name": name,
        "description": description,
        "format": op.format,
        "input": {"seed": h(signer.seed), "network": op.network, "seq": op.seq,
                  "prev": hx(op.prev), "deps": [dep_json(d) for d in op.deps],
                  "timestamp": op.timestamp, "kind": op.kind, "body": body_json(op.body)},
        "author": h(op.author),
        "author_text": signer.text,
        "body_hex": h(codec.pack(body_map)),
        "signed_hex": h(signed),
        "signature": h(op.signature),
        "wire_hex": h(op.wire),
        "id": h(op.id),
    }
    if op.content is not None:  # a format-2 post: its content, and how it travels (§12.3)
        case["content_hex"] = h(op.content)
        case["carried_hex"] = h(op.carried)
    return case


def _valid_cases() -> list[dict[str, Any]]:
    """Format-1 ops (still valid, §12.1): the examples of §4.5 and the ledger rules."""
    a, b, c, d = (Writer(who, format=LEGACY_FORMAT) for who in (ALICE, BOB, CAROL, DAVE))
    early = Writer(who(5), format=LEGACY_FORMAT)
    cases: list[dict[str, Any]] = []

    def add(name: str, description: str, w: Writer, op: Op) -> Op:
        cases.append(_valid(name, description, w.identity, op))
        w.head = op
        return op

    a1 = add("register_seq1", "first op of a feed: seq 1, prev nil, no deps", a,
             a.after(None, Register("alice"), T0))
    add("register_seq1_other_author", "another author's first op", b,
        b.after(None, Register("bob"), T0 + MINUTE))
    add("claim_seq2", "seq 2: prev is the id of seq 1", a,
        a.after(a1, Claim(202602), T0 + HOUR))
    a3 = add("transfer_seq3", "a transfer with a memo", a,
             a.after(a.head, Transfer(BOB.public_key, 30_000, "rent share"), T0 + 2 * HOUR))
    add("claim_with_deps", "one dep: acknowledges alice's feed up to her transfer", b,
        b.after(b.head, Claim(202602), T0 + 3 * HOUR, (a3.ref,)))
    add("transfer_unicode_memo", "memo text is UTF-8 (length limit in bytes)", b,
        b.after(b.head, Transfer(ALICE.public_key, 12_345, "merci \u2713 \U0001f35e"),
                T0 + 4 * HOUR, (a3.ref,)))
    post = add("post_seq1_billboard", "a post as the first op of a feed", c,
               c.after(None, Post("billboard", "Free bread at the market, 9am", 5, None), T0))
    assert a.head is not None and b.head is not None
    add("post_direct_two_deps",
        "a direct post (has 'to'); two deps, given in any order, sorted by author bytes", c,
        c.after(c.head, Post("direct", "see you there", 10, BOB.public_key), T0 + HOUR,
                (b.head.ref, a.head.ref)))
    add("retract_own_post", "retract names the post's op id", c,
        c.after(c.head, Retract(post.id), T0 + 2 * HOUR))
    add("post_social_priority_1", "lowest priority, seq > 1 without deps", c,
        c.after(c.head, Post("social", "hello, mesh", 1, None), T0 + 2 * HOUR))
    add("post_media", "media channel", c,
        c.after(c.head, Post("media", "https://example.org/video", 7, None), T0 + 3 * HOUR))
    add("register_long_name", "a 40-byte name takes a str8 header", d,
        d.after(None, Register("d" * 40), T0))
    add("claim_seq1_with_deps", "valid as an op (its ledger effect is another matter)", d,
        d.after(None, Claim(202602), T0, (a3.ref,)))
    big = create_op(DAVE, network=NETWORK, seq=MAX_SEQ, prev=bytes([0xAB]) * 32,
                    timestamp=MAX_TIMESTAMP_MS, format=LEGACY_FORMAT,
                    body=Transfer(CAROL.public_key, MAX_AMOUNT_CENTS, ""),
                    deps=(Dep(ALICE.public_key, 2**32, bytes([0xCD]) * 32),))
    add("largest_numbers", "seq, timestamp and amount at their limits (uint64 encodings)",
        d, big)
    add("claim_week_53", "week 53 of 2026, an ISO year with 53 weeks (valid as an op; its "
        "ledger effect depends on the claim window)", a,
        a.after(a.head, Claim(202653), T0 + 3 * HOUR))
    add("post_text_leading_bom", "a text beginning with U+FEFF (ef bb bf): the BOM is part "
        "of the value and of the signed bytes; a decoder that drops it (JavaScript's "
        "TextDecoder does unless ignoreBOM) re-encodes other bytes (ops.md §3.6)", c,
        c.after(c.head, Post("social", "\ufeffhello", 2, None), T0 + 4 * HOUR))
    add("register_at_genesis", "dated exactly at the network's genesis (ops.md §14): the "
        "earliest valid timestamp", early,
        early.after(None, Register("early"), DEFAULT_GENESIS_MS))
    return cases


def _v2_cases() -> list[dict[str, Any]]:
    """Format-2 ops (§12): what a node writes now."""
    a, b, c = Writer(ALICE), Writer(BOB), Writer(CAROL)
    cases: list[dict[str, Any]] = []

    def add(name: str, description: str, w: Writer, op: Op) -> Op:
        cases.append(_valid(name, description, w.identity, op))
        w.head = op
        return op

    add("v2_register_seq1", "format 2: every kind but message.post keeps its format-1 body",
        a, a.after(None, Register("alice"), T0))
    b1 = add("v2_register_other", "another author", b, b.after(None, Register("bob"), T0))
    post = add("v2_post_social", "a post's header names its content (the UTF-8 text) by size "
               "and hash; the content travels as an 11th element (carried_hex)", c,
               c.after(None, Post("social", "hello, mesh \u2713", 3, None), T0))
    add("v2_post_direct", "a direct message: the content is the text sealed to bob and to "
        "carol (§13), 434 bytes; the header does not name bob; one dep", c,
        c.after(c.head, Post("direct", "see you at nine", 1, BOB.public_key), T0 + HOUR,
                (b1.ref,)))
    add("v2_retract", "a retract: its body stays in the header; holding it purges the post's "
        "content (§12.6)", c, c.after(c.head, Retract(post.id), T0 + 2 * HOUR))
    return cases


# -- ops refused on their own -------------------------------------------------------------

PREV = bytes([0xAA]) * 32
REGISTER = {"name": "alice"}


def _fields(**over: Any) -> list[Any]:
    f: dict[str, Any] = {"format": 1, "network": NETWORK, "author": ALICE.public_key, "seq": 1,
                         "prev": None, "deps": [], "timestamp": T0, "kind": "human.register",
                         "body": REGISTER}
    f.update(over)
    return list(f.values())


def _transfer(**over: Any) -> list[Any]:
    body = {"amount": 100, "memo": "", "to": BOB.public_key}
    body.update(over)
    return _fields(seq=2, prev=PREV, kind="ledger.transfer", body=body)


def _post(format: int = 1, **over: Any) -> list[Any]:
    body: dict[str, Any] = {"channel": "social", "priority": 5, "text": "hi"}
    body.update(over)
    return _fields(format=format, seq=2, prev=PREV, kind="message.post",
                   body=codec.sorted_map(body))


def _v2_post(**over: Any) -> list[Any]:
    body: dict[str, Any] = {"channel": "social", "hash": bytes(32), "priority": 5, "size": 2}
    body.update(over)
    return _fields(format=2, seq=2, prev=PREV, kind="message.post",
                   body=codec.sorted_map(body))


def _signed(fields: list[Any], signer: Identity = ALICE) -> bytes:
    return signed_op(signer, fields)


def _dep(i: int, seq: int = 1) -> list[Any]:
    return [who(i).public_key, seq, bytes([i]) * 32]


def _deps_sorted(ids: list[int]) -> list[list[Any]]:
    return sorted((_dep(i) for i in ids), key=lambda d: d[0])


def _oversize() -> bytes:
    """A signed transfer of exactly MAX_OP_BYTES + 1 bytes (its memo is too long as well)."""
    fields = _transfer()
    size = MAX_OP_BYTES + 1 - len(_signed(fields))
    while True:
        fields[8]["memo"] = "x" * size
        wire = _signed(fields)
        if len(wire) == MAX_OP_BYTES + 1:
            return wire
        size += MAX_OP_BYTES + 1 - len(wire)


DecodeCase = tuple[str, str, bytes, str] | tuple[str, str, bytes, str, int]


def _decode_cases() -> list[DecodeCase]:
    """(name, reason, wire, description[, now]); decoded for network NETWORK."""
    good = _signed(_fields())
    assert rejection_reason(decode_op, good, NETWORK) is None
    mapped = codec.pack({"format": 1})
    sig = ALICE.sign(b"")
    flipped = good[:-1] + bytes([good[-1] ^ 0x01])
    unsigned9 = enc(_fields())
    no_domain = b"\x9a" + unsigned9[1:] + enc(ALICE.sign(unsigned9))
    altered = bytearray(good)
    ts_at = good.index(codec.pack(T0))
    altered[ts_at + 8] ^= 0x01  # last byte of the uint64 timestamp
    own = [ALICE.public_key, 1, PREV]
    return [
        ("oversize", "oversize", _oversize(), "8193 bytes: one more than the limit"),
        ("empty", "undecodable", b"", "no bytes"),
        ("truncated", "undecodable", good[:-1], "a valid op minus its last byte"),
        ("trailing_byte", "undecodable", good + b"\x00", "a valid op plus one byte"),
        ("reserved_byte", "undecodable", b"\xc1", "0xc1 is not a msgpack type"),
        ("network_invalid_utf8", "undecodable",
         _signed(_fields(network=Raw(b"\xa2\xff\xfe"))), "text that is not UTF-8"),
        ("body_integer_key", "undecodable",
         _signed(_fields(body=Raw(b"\x81\x01\x01"))), "a map key that is not text"),
        ("seq_as_uint8", "non_canonical", _signed(_fields(seq=Raw(b"\xcc\x01"))),
         "seq 1 as uint8 (cc 01) instead of positive fixint 01"),
        ("seq_as_int64", "non_canonical",
         _signed(_fields(seq=Raw(b"\xd3" + (1).to_bytes(8, "big")))),
         "a non-negative integer in the signed family"),
        ("network_as_str8", "non_canonical",
         _signed(_fields(network=Raw(b"\xd9\x07" + NETWORK.encode()))),
         "a 7-byte string with a str8 header"),
        ("author_as_bin16", "non_canonical",
         _signed(_fields(author=Raw(b"\xc5\x00\x20" + ALICE.public_key))),
         "32 bytes with a bin16 header"),
        ("op_as_array16", "non_canonical", b"\xdc\x00\x0a" + good[1:],
         "the op array with an array16 header"),
        ("body_as_map16", "non_canonical",
         _signed(_fields(body=Raw(b"\xde\x00\x01" + enc("name") + enc("alice")))),
         "a 1-entry body map with a map16 header"),
        ("body_duplicate_key", "non_canonical",
         _signed(_fields(body=Raw(b"\x82" + enc("name") + enc("alice") + enc("name")
                                  + enc("bob")))), "the body names a key twice"),
        ("timestamp_float32", "non_canonical",
         _signed(_fields(timestamp=Raw(b"\xca\x3f\x80\x00\x00"))), "a float32"),
        ("body_keys_unsorted", "non_canonical",
         _signed(_fields(seq=2, prev=PREV, kind="ledger.transfer",
                         body={"to": BOB.public_key, "amount": 100, "memo": ""})),
         "body keys to, amount, memo: not in UTF-8 byte order"),
        ("body_bin_key", "non_canonical", _signed(_fields(body={b"name": "alice"})),
         "the body's key is bin, not str: msgpack allows it, the canonical form does not"),
        ("body_bin_key_before_unknown_kind", "non_canonical",
         _signed(_fields(kind="x", body={b"a": 1})),
         "body keys are checked before the kind"),
        ("not_an_array", "malformed", mapped, "a map, not the 10-element array"),
        ("nine_elements", "malformed", unsigned9, "the signed part alone, no signature"),
        ("eleven_elements", "malformed", b"\x9b" + good[1:] + b"\x00", "one element too many"),
        ("network_uppercase", "malformed", _signed(_fields(network="TestNet")),
         "network names are lowercase"),
        ("network_empty", "malformed", _signed(_fields(network="")), "empty network name"),
        ("network_too_long", "malformed", _signed(_fields(network="n" * 65)), "65 bytes"),
        ("author_31_bytes", "malformed", _signed(_fields(author=ALICE.public_key[:31])),
         "author is 32 bytes"),
        ("author_as_text", "malformed", _signed(_fields(author="a" * 32)),
         "author is bin, not str"),
        ("seq_zero", "malformed", _signed(_fields(seq=0)), "seq starts at 1"),
        ("seq_too_large", "malformed", _signed(_fields(seq=MAX_SEQ + 1, prev=PREV)),
         "seq is at most 2^53-1"),
        ("seq_bool", "malformed", _signed(_fields(seq=True)), "true is not an integer"),
        ("seq1_with_prev", "malformed", _signed(_fields(prev=PREV)), "seq 1 has prev nil"),
        ("seq2_without_prev", "malformed", _signed(_fields(seq=2)), "seq 2 needs a prev"),
        ("prev_31_bytes", "malformed", _signed(_fields(seq=2, prev=PREV[:31])),
         "prev is a 32-byte op id"),
        ("timestamp_negative", "malformed", _signed(_fields(timestamp=-1)),
         "timestamps are not negative"),
        ("timestamp_too_large", "malformed", _signed(_fields(timestamp=MAX_TIMESTAMP_MS + 1)),
         "after 9999-12-31T23:59:59.999Z"),
        ("timestamp_float64", "malformed", _signed(_fields(timestamp=float(T0))),
         "a float64 (which re-encodes identically) where an integer is required"),
        ("kind_not_text", "malformed", _signed(_fields(kind=1)), "kind is text"),
        ("signature_63_bytes", "malformed", enc([*_fields(), sig[:63]]), "63-byte signature"),
        ("signature_ext", "malformed", enc([*_fields(), Raw(b"\xd4\x00\x01")]),
         "an extension value where the signature goes"),
        ("deps_nil", "malformed", _signed(_fields(deps=None)), "deps is an array"),
        ("deps_too_many", "malformed",
         _signed(_fields(deps=_deps_sorted(list(range(2, 3 + MAX_DEPS))))),
         f"{MAX_DEPS + 1} deps"),
        ("dep_two_elements", "malformed", _signed(_fields(deps=[_dep(2)[:2]])),
         "a dep is [author, seq, id]"),
        ("dep_seq_zero", "malformed", _signed(_fields(deps=[_dep(2, seq=0)])),
         "a dep's seq starts at 1"),
        ("dep_id_31_bytes", "malformed", _signed(_fields(deps=[[*_dep(2)[:2], PREV[:31]]])),
         "a dep's id is 32 bytes"),
        ("format_3", "unsupported_format", _signed(_fields(format=3)), "format is 1 or 2"),
        ("format_0", "unsupported_format", _signed(_fields(format=0)), "format is 1 or 2"),
        ("format_bool", "unsupported_format", _signed(_fields(format=True)),
         "true is not the integer 1"),
        ("format_3_and_malformed", "unsupported_format",
         _signed(_fields(format=3, seq=0, network="")),
         "the format is checked before every other field"),
        ("v2_post_with_text", "bad_body", _signed(_post(format=2)),
         "a format-1 post body in format 2: its text is a content apart (§12.2)"),
        ("v2_post_with_to", "bad_body",
         _signed(_v2_post(channel="direct", size=434, to=BOB.public_key)),
         "a format-2 direct post does not name its recipient (§13.1)"),
        ("v2_post_size_zero", "bad_body", _signed(_v2_post(size=0)), "a text has 1 byte or more"),
        ("v2_post_size_too_large", "bad_body", _signed(_v2_post(size=4097)),
         "a text has at most 4096 bytes"),
        ("v2_direct_size_not_sealed", "bad_body",
         _signed(_v2_post(channel="direct", size=433)),
         "a direct message's content has one of five sizes (§13.4)"),
        ("v2_post_hash_31_bytes", "bad_body", _signed(_v2_post(hash=bytes(31))),
         "hash is 32 bytes"),
        ("signature_flipped_bit", "bad_signature", flipped, "last signature bit flipped"),
        ("signed_by_other_key", "bad_signature", _signed(_fields(), signer=BOB),
         "author alice, signed by bob"),
        ("field_changed_after_signing", "bad_signature", bytes(altered),
         "timestamp changed by 1 ms after signing"),
        ("signed_without_domain", "bad_signature", no_domain,
         "signature over the 9-element array without the domain prefix"),
        ("other_network", "wrong_network",
         _signed(_fields(network=OTHER_NETWORK)), "a valid op of network 'othernet'"),
        ("wrong_network_and_bad_signature", "wrong_network",
         _signed(_fields(network=OTHER_NETWORK), signer=BOB),
         "the network is checked before the signature"),
        ("kind_unknown", "unknown_kind",
         _signed(_fields(kind="ledger.mint", body={"amount": 1})), "no such kind"),
        ("kind_empty", "unknown_kind", _signed(_fields(kind="")), "no such kind"),
        ("kind_unknown_body_not_map", "unknown_kind", _signed(_fields(kind="x", body=[])),
         "the kind is checked before the body's shape"),
        ("body_not_map", "bad_body", _signed(_fields(body=["alice"])), "a body is a map"),
        ("register_missing_name", "bad_body", _signed(_fields(body={})), "name is required"),
        ("register_extra_field", "bad_body",
         _signed(_fields(body={"age": 3, "name": "alice"})), "no other fields"),
        ("register_name_too_long", "bad_body",
         _signed(_fields(body={"name": "\u00e9" * 33})), "66 UTF-8 bytes > 64"),
        ("register_name_bin", "bad_body", _signed(_fields(body={"name": b"alice"})),
         "name is text"),
        ("claim_week_54", "bad_body",
         _signed(_fields(seq=2, prev=PREV, kind="ledger.claim", body={"week": 202654})),
         "no ISO year has 54 weeks"),
        ("claim_week_53_in_52_week_year", "bad_body",
         _signed(_fields(seq=2, prev=PREV, kind="ledger.claim", body={"week": 202553})),
         "2025 has 52 ISO weeks (its 28 December is in week 52): 202553 does not exist"),
        ("claim_week_0", "bad_body",
         _signed(_fields(seq=2, prev=PREV, kind="ledger.claim", body={"week": 202600})),
         "weeks start at 1"),
        ("claim_year_1969", "bad_body",
         _signed(_fields(seq=2, prev=PREV, kind="ledger.claim", body={"week": 196952})),
         "years run 1970..9999"),
        ("transfer_amount_zero", "bad_body", _signed(_transfer(amount=0)), "amount >= 1"),
        ("transfer_amount_too_large", "bad_body",
         _signed(_transfer(amount=MAX_AMOUNT_CENTS + 1)), "amount <= 2^53-1"),
        ("transfer_to_31_bytes", "bad_body", _signed(_transfer(to=BOB.public_key[:31])),
         "to is 32 bytes"),
        ("transfer_to_self", "bad_body", _signed(_transfer(to=ALICE.public_key)),
         "an author cannot pay itself"),
        ("transfer_memo_too_long", "bad_body",
         _signed(_transfer(memo="m" * (MAX_MEMO_BYTES + 1))), "257 bytes"),
        ("transfer_amount_float64", "bad_body", _signed(_transfer(amount=100.0)),
         "a float64 amount"),
        ("post_empty_text", "bad_body", _signed(_post(text="")), "text has 1 byte or more"),
        ("post_text_too_long", "bad_body", _signed(_post(text="t" * (MAX_TEXT_BYTES + 1))),
         "4097 bytes"),
        ("post_unknown_channel", "bad_body", _signed(_post(channel="news")),
         "channels: billboard, social, media, direct"),
        ("post_priority_0", "bad_body", _signed(_post(priority=0)), "priority 1..10"),
        ("post_priority_11", "bad_body", _signed(_post(priority=11)), "priority 1..10"),
        ("post_direct_without_to", "bad_body", _signed(_post(channel="direct")),
         "direct posts name their recipient"),
        ("post_social_with_to", "bad_body", _signed(_post(to=BOB.public_key)),
         "only direct posts have 'to'"),
        ("post_direct_to_self", "bad_body",
         _signed(_post(channel="direct", to=ALICE.public_key)), "an author cannot message itself"),
        ("retract_post_31_bytes", "bad_body",
         _signed(_fields(seq=2, prev=PREV, kind="message.retract", body={"post": PREV[:31]})),
         "post is a 32-byte op id"),
        ("bad_body_before_wrong_network", "bad_body",
         _signed(_fields(network=OTHER_NETWORK, body={})),
         "the body is checked before the network"),
        ("dep_on_own_feed", "bad_deps", _signed(_fields(seq=2, prev=PREV, deps=[own])),
         "own ops are reached through prev"),
        ("deps_unsorted", "bad_deps", _signed(_fields(deps=_deps_sorted([2, 3])[::-1])),
         "deps sorted by author bytes"),
        ("deps_duplicate_author", "bad_deps",
         _signed(_fields(deps=[_dep(2), [who(2).public_key, 2, PREV]])),
         "at most one dep per author"),
        ("dated_before_genesis", "before_genesis",
         _signed(_fields(timestamp=DEFAULT_GENESIS_MS - 1)),
         "1 ms before the network's genesis (ops.md §14; testnet's is the default, "
         "1735689600000)"),
        ("dated_1970", "before_genesis", _signed(_fields(timestamp=0)),
         "a register dated 1970: it would open a claim window of 2,900 weeks"),
        ("wrong_network_before_genesis", "wrong_network",
         _signed(_fields(network=OTHER_NETWORK, timestamp=0)),
         "the network is compared first: another network's genesis is not known"),
        ("before_genesis_before_signature", "before_genesis",
         _signed(_fields(timestamp=0))[:-1] + b"\x00",
         "the genesis is checked before the signature (ops.md §7.6)"),
        ("dated_too_far_ahead", "from_the_future", _signed(_fields()),
         "the receiver's clock (now) is 15 min + 1 ms behind the op's timestamp",
         T0 - MAX_CLOCK_SKEW_MS - 1),
        ("signature_before_clock", "bad_signature", flipped,
         "the signature is checked before the receiver's clock", T0 - MAX_CLOCK_SKEW_MS - 1),
    ]


def _invalid_case(name: str, reason: str, wire: bytes, description: str,
                  now: int | None = None) -> dict[str, Any]:
    got = rejection_reason(decode_op, wire, NETWORK, now=now)
    assert got == reason, (name, got, reason)
    case: dict[str, Any] = {"name": name, "description": description, "network": NETWORK,
                            "wire_hex": h(wire), "reason": reason}
    if now is not None:
        case["now"] = now  # the receiver's clock, ms (§5.4)
    return case


def build_valid() -> dict[str, Any]:
    return {
        "description": "Valid ops: the op format, the inputs (seed, network, fields; body bin "
                       "fields as hex), the canonical body map, the exact bytes signed "
                       "(domain prefix included), the Ed25519 signature, the wire bytes "
                       "(the header) and the op id (BLAKE2b-256 of the wire bytes). Format-2 "
                       "posts (v2_*) also give their content and carried form (§12.3).",
        "spec": "protocols/ops.md §3, §4, §5, §6, §12, §14",
        "cases": _valid_cases() + _v2_cases(),
    }


def decode_cases() -> list[dict[str, Any]]:
    return [_invalid_case(*case) for case in _decode_cases()]
