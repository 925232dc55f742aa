"""Ops on their own: encoding, signatures, every decode-time rejection (protocols/ops.md §3-§7)."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liberation_node.core import codec
from liberation_node.core.bodies import (
    Claim,
    Post,
    PostHeader,
    Register,
    Retract,
    Transfer,
    content_hash,
)
from liberation_node.core.errors import Reason, Rejection
from liberation_node.core.identity import id_from_text, id_to_text
from liberation_node.core.ingested import Outcome
from liberation_node.core.ops import (
    MAX_OP_BYTES,
    OP_DOMAIN,
    Dep,
    carry,
    create_op,
    decode_carried,
    decode_op,
    split_carried,
)
from liberation_node.core.replica import Replica
from liberation_node.core.sealing import DIRECT_SIZES

from .history import NETWORK, T0, HistoryBuilder, identity

ALICE, BOB = identity(0), identity(1)


def fields_of(wire: bytes) -> list[object]:
    return list(msgpack.unpackb(wire, raw=False))


def resign(fields: list[object], who=ALICE) -> bytes:  # type: ignore[no-untyped-def]
    """Re-encode mutated fields and sign them properly: only the mutation is wrong."""
    body = fields[:9]
    sig = who.sign(OP_DOMAIN + msgpack.packb(body, use_bin_type=True))
    return bytes(msgpack.packb([*body, sig], use_bin_type=True))


def first_op() -> bytes:
    return create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0,
                     body=Register("alice")).wire


def reason(wire: bytes, network: str = NETWORK) -> Reason:
    with pytest.raises(Rejection) as info:
        decode_op(wire, network)
    return info.value.reason


def test_round_trip_and_id() -> None:
    op = decode_op(first_op(), NETWORK)
    assert op.author == ALICE.public_key and op.seq == 1 and op.body == Register("alice")
    assert len(op.id) == 32 and op.id != decode_op(
        create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0 + 1,
                  body=Register("alice")).wire, NETWORK).id


@pytest.mark.parametrize(("index", "value", "expected"), [
    (0, 3, Reason.UNSUPPORTED_FORMAT),
    (0, True, Reason.UNSUPPORTED_FORMAT),
    (1, "Bad Network", Reason.MALFORMED),
    (2, b"short", Reason.MALFORMED),
    (3, 0, Reason.MALFORMED),
    (4, b"\x00" * 32, Reason.MALFORMED),  # seq 1 with a prev
    (5, [[BOB.public_key, 1]], Reason.MALFORMED),
    (5, [[ALICE.public_key, 1, b"\x00" * 32]], Reason.BAD_DEPS),
    (6, -1, Reason.MALFORMED),
    (7, "ledger.mint", Reason.UNKNOWN_KIND),
    (8, {"name": 7}, Reason.BAD_BODY),
    (8, {"name": "a", "x": 1}, Reason.BAD_BODY),
    (8, {}, Reason.BAD_BODY),
])
def test_each_field_is_checked(index: int, value: object, expected: Reason) -> None:
    fields = fields_of(first_op())
    fields[index] = value
    assert reason(resign(fields)) is expected


def test_deps_must_be_sorted_by_author() -> None:
    a, b = sorted([BOB.public_key, identity(2).public_key])
    fields = fields_of(first_op())
    fields[5] = [[b, 1, b"\x01" * 32], [a, 1, b"\x02" * 32]]
    assert reason(resign(fields)) is Reason.BAD_DEPS


def test_signature_network_and_size() -> None:
    wire = first_op()
    assert reason(wire, "other") is Reason.WRONG_NETWORK
    tampered = bytearray(wire)
    tampered[-70] ^= 1  # inside the body, before the signature
    assert reason(bytes(tampered)) in (Reason.BAD_SIGNATURE, Reason.NON_CANONICAL,
                                       Reason.BAD_BODY, Reason.UNDECODABLE)
    fields = fields_of(wire)
    fields[9] = bytes(64)
    assert reason(bytes(msgpack.packb(fields, use_bin_type=True))) is Reason.BAD_SIGNATURE
    assert reason(b"\x00" * (MAX_OP_BYTES + 1)) is Reason.OVERSIZE
    assert reason(b"\xc1") is Reason.UNDECODABLE


def test_non_canonical_encodings_are_refused() -> None:
    wire = first_op()
    # seq 1 as uint8 (0xcc 0x01) instead of positive fixint.
    fields = fields_of(wire)
    head = msgpack.packb(fields[:3], use_bin_type=True)[1:]
    rest = msgpack.packb(fields[4:], use_bin_type=True)[1:]
    assert reason(b"\x9a" + head + b"\xcc\x01" + rest) is Reason.NON_CANONICAL
    # Body keys out of order.
    fields = fields_of(create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0,
                                 body=Transfer(BOB.public_key, 5, "m")).wire)
    fields[8] = dict(reversed(list(fields[8].items())))  # type: ignore[union-attr]
    assert reason(resign(fields)) is Reason.NON_CANONICAL


def test_bodies_are_validated() -> None:
    def make(body: object, format: int = 1) -> bytes:
        fields = fields_of(first_op())
        kind, raw = body  # type: ignore[misc]
        fields[0], fields[7], fields[8] = format, kind, codec.sorted_map(raw)
        return resign(fields)

    assert reason(make(("ledger.claim", {"week": 202654}))) is Reason.BAD_BODY
    assert reason(make(("ledger.transfer", {"amount": 0, "memo": "", "to": BOB.public_key}))) \
        is Reason.BAD_BODY
    assert reason(make(("ledger.transfer", {"amount": 5, "memo": "", "to": ALICE.public_key}))) \
        is Reason.BAD_BODY
    assert reason(make(("message.post", {"channel": "direct", "priority": 1, "text": "x"}))) \
        is Reason.BAD_BODY
    assert reason(make(("message.post", {"channel": "social", "priority": 11, "text": "x"}))) \
        is Reason.BAD_BODY
    assert reason(make(("message.post", {"channel": "social", "priority": 1, "text": ""}))) \
        is Reason.BAD_BODY
    ok = make(("message.post", {"channel": "direct", "priority": 1, "text": "x",
                                "to": BOB.public_key}))
    assert decode_op(ok, NETWORK).body == Post("direct", "x", 1, BOB.public_key)
    # Format 2 (ops.md §12.2): the post's header names its content by size and hash.
    h = bytes(32)
    good = {"channel": "social", "hash": h, "priority": 1, "size": 5}
    assert decode_op(make(("message.post", good), 2), NETWORK).body == PostHeader(
        "social", 1, 5, h)
    assert reason(make(("message.post", {"channel": "social", "priority": 1, "text": "x"}),
                       2)) is Reason.BAD_BODY  # a format-1 body in format 2
    assert reason(make(("message.post", {**good, "to": BOB.public_key}), 2)) is Reason.BAD_BODY
    for size in (0, 4097, 8000):
        assert reason(make(("message.post", {**good, "size": size}), 2)) is Reason.BAD_BODY
    direct = {**good, "channel": "direct"}
    for size in DIRECT_SIZES:
        assert decode_op(make(("message.post", {**direct, "size": size}), 2), NETWORK)
    for size in (5, 433, 435, 4096):
        assert reason(make(("message.post", {**direct, "size": size}), 2)) is Reason.BAD_BODY
    assert reason(make(("message.post", {**good, "hash": h[:31]}), 2)) is Reason.BAD_BODY
    # Ledger bodies are the same in both formats.
    assert decode_op(make(("ledger.claim", {"week": 202602}), 2), NETWORK).format == 2


def test_a_post_carries_its_content_after_its_header() -> None:
    op = create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0,
                   body=Post("social", "héllo", 3, None))
    assert isinstance(op.body, PostHeader) and op.content == "héllo".encode()
    assert op.body.hash == content_hash(op.content) and op.body.size == 6
    carried = op.carried
    assert carried[0] == 0x9B and carried[1:].startswith(op.wire[1:])
    assert split_carried(carried) == (op.wire, op.content)
    again, refused = decode_carried(carried, NETWORK)
    assert (again, refused) == (op, None)
    # Whatever comes with a header, the header is judged alone (ops.md §12.4).
    for bad in (b"h\xc3llo!", "héllo".encode() + b"!", "HÉLLO".encode()):
        header, refusal = decode_carried(carry(op.wire, bad), NETWORK)
        assert header == op._replace(content=None)
        assert refusal is not None and refusal.reason is Reason.BAD_CONTENT
    register = create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0,
                         body=Register("alice"))
    _, refusal = decode_carried(carry(register.wire, b"x"), NETWORK)
    assert refusal is not None and refusal.reason is Reason.BAD_CONTENT
    # A carried form's 11th element must be bin: else the whole input is malformed.
    with pytest.raises(Rejection) as info:
        decode_carried(b"\x9b" + op.wire[1:] + codec.pack("text"), NETWORK)
    assert info.value.reason is Reason.MALFORMED
    assert reason(carried) is Reason.MALFORMED  # decode_op takes headers only


def test_a_legacy_format_1_post_keeps_its_text_inline() -> None:
    op = create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0, format=1,
                   body=Post("social", "old", 1, None))
    assert op.format == 1 and op.content is None and op.carried == op.wire
    assert decode_op(op.wire, NETWORK).body == Post("social", "old", 1, None)


def test_text_ids_round_trip_and_catch_typos() -> None:
    text = id_to_text(ALICE.public_key)
    assert text.startswith("ln") and id_from_text(text) == ALICE.public_key
    typo = text[:10] + ("a" if text[10] != "a" else "b") + text[11:]
    with pytest.raises(ValueError, match="checksum"):
        id_from_text(typo)
    for bad in ("", "xx", "ln!!!!", text[:-3]):
        with pytest.raises(ValueError):
            id_from_text(bad)


def test_feed_rules_in_the_replica() -> None:
    h = HistoryBuilder()
    reg = h.write(ALICE, Register("alice"))
    post = h.write(ALICE, Post("social", "hi", 1, None))
    replica = Replica(NETWORK)
    assert replica.ingest(reg.wire).outcome is Outcome.APPLIED
    assert replica.ingest(reg.wire).outcome is Outcome.DUPLICATE
    # Timestamp before prev's.
    back = create_op(ALICE, network=NETWORK, seq=2, prev=reg.id, timestamp=reg.timestamp - 1,
                     body=Claim(202648))
    got = replica.ingest(back.wire)
    assert got.outcome is Outcome.REJECTED and got.rejection is not None
    assert got.rejection.reason is Reason.TIMESTAMP_REGRESSION
    # Retracting somebody else's post.
    bob_reg = h.write(BOB, Register("bob"))
    replica.ingest(bob_reg.wire)
    replica.ingest(post.wire)
    steal = create_op(BOB, network=NETWORK, seq=2, prev=bob_reg.id, timestamp=h.tick(),
                      body=Retract(post.id))
    got = replica.ingest(steal.wire)
    assert got.rejection is not None and got.rejection.reason is Reason.NOT_AUTHORS_POST
    # A dep on an op we do not have waits for it.
    wants = create_op(BOB, network=NETWORK, seq=2, prev=bob_reg.id, timestamp=h.tick(),
                      body=Post("social", "re", 1, None),
                      deps=(Dep(identity(3).public_key, 4, b"\x07" * 32),))
    got = replica.ingest(wants.wire)
    assert got.outcome is Outcome.PENDING and got.missing == wants.deps[0]
    assert list(replica.pending.wanted()) == [wants.deps[0]]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    replica = Replica(NETWORK)
    got = replica.ingest(data)
    assert got.outcome is Outcome.REJECTED
    assert replica.ingest_record(data, T0).outcome is Outcome.REJECTED


VALID = [first_op(),
         create_op(ALICE, network=NETWORK, seq=3, prev=b"\x01" * 32, timestamp=T0,
                   body=Transfer(BOB.public_key, 10, "memo"),
                   deps=(Dep(BOB.public_key, 2, b"\x02" * 32),)).wire]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                        min_size=1, max_size=4),
       st.integers(0, 10_000), st.binary(max_size=8))
def test_mutated_ops_never_raise_and_are_never_accepted(
    wire: bytes, flips: list[tuple[int, int]], cut: int, tail: bytes
) -> None:
    data = bytearray(wire)
    for pos, val in flips:
        data[pos % len(data)] = val
    mutated = bytes(data[: max(1, len(data) - cut % 4)]) + tail
    replica = Replica(NETWORK)
    got = replica.ingest(mutated)
    if mutated != wire:
        # Any change to signed bytes breaks the signature; canonical decoding
        # forbids re-encodings, so nothing but the original can be accepted.
        assert got.outcome is Outcome.REJECTED, mutated.hex()


def test_a_held_record_arriving_again_is_not_verified_again(monkeypatch: object) -> None:
    import liberation_node.core.records as records_module
    from liberation_node.core.records import NodeLinks, create_record

    record = create_record(ALICE, network=NETWORK, version=T0, ttl_ms=60_000,
                           body=NodeLinks(((BOB.public_key, 3),)))
    replica = Replica(NETWORK)
    assert replica.ingest_record(record.wire, T0).outcome is Outcome.APPLIED
    calls = []
    real = records_module.verify
    monkeypatch.setattr(records_module, "verify",  # type: ignore[attr-defined]
                        lambda *a: calls.append(a) or real(*a))
    assert replica.ingest_record(record.wire, T0).outcome is Outcome.DUPLICATE
    assert calls == []


def _old_decode_carried(wire: bytes) -> tuple[bytes, bytes] | Rejection:
    """How a carried form was decoded before it was decoded once: the whole form, then
    its header again on its own (the reference `open_carried` must agree with)."""
    try:
        raw = codec.unpack(wire, MAX_OP_BYTES)
        if type(raw) is not list or len(raw) != 11:
            raise Rejection(Reason.MALFORMED, "a carried op is an 11-element array")
        content = raw[10]
        if type(content) is not bytes:
            raise Rejection(Reason.MALFORMED, "a carried op's 11th element is its content, bin")
        n = len(content)
        header = b"\x9a" + wire[1 : len(wire) - (n + (2 if n <= 0xFF else 3 if n <= 0xFFFF
                                                      else 5))]
        return decode_op(header, NETWORK).wire, content
    except Rejection as rejection:
        return rejection


CARRIED = [create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0,
                     body=Post("social", "hello " * n, 1, None)).carried for n in (1, 60)]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(CARRIED), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                          max_size=3),
       st.integers(0, 10_000), st.binary(max_size=8))
def test_a_carried_form_decoded_once_gives_what_two_decodes_gave(
    wire: bytes, flips: list[tuple[int, int]], cut: int, tail: bytes
) -> None:
    """One canonical decode of a carried form stands for its header's (issue 10): every
    outcome and reason, for any mutation, is the one the two decodes gave."""
    data = bytearray(wire)
    for pos, val in flips:
        data[pos % len(data)] = val
    mutated = bytes(data[: max(1, len(data) - cut % 4)]) + tail
    old = _old_decode_carried(mutated)
    try:
        op, bad_content = decode_carried(mutated, NETWORK)
        new: tuple[bytes, bytes] | Rejection = (op.wire, split_carried(mutated)[1])
    except Rejection as rejection:
        new, bad_content = rejection, None
    got = Replica(NETWORK).ingest(mutated)
    if isinstance(old, Rejection):
        assert isinstance(new, Rejection)
        assert (new.reason, new.detail) == (old.reason, old.detail)
        assert got.outcome is Outcome.REJECTED and got.rejection is not None
        assert (got.rejection.reason, got.rejection.detail) == (old.reason, old.detail)
    else:
        assert new == old
        assert got.outcome is Outcome.APPLIED
        assert (got.content_rejection is None) == (bad_content is None)


def test_a_carried_op_is_decoded_once_on_ingest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest decodes (and re-encodes for the canonical check) a carried form once, not
    once whole and again for its header (issue 10: each decode is CPU on the loop)."""
    calls: list[int] = []
    unpack = codec.unpack

    def counted(data: bytes, max_bytes: int, *, lists: bool = True) -> object:
        calls.append(len(data))
        return unpack(data, max_bytes, lists=lists)

    monkeypatch.setattr(codec, "unpack", counted)
    got = Replica(NETWORK).ingest(CARRIED[1])
    assert got.outcome is Outcome.APPLIED
    assert calls == [len(CARRIED[1])]


def test_with_content_is_replace() -> None:
    from liberation_node.core.ops import with_content

    op = create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0,
                   body=Post("social", "hello", 1, None))
    assert op.content is not None
    for content in (None, b"x", op.content):
        assert with_content(op, content) == op._replace(content=content)
        assert type(with_content(op, content)) is type(op)
