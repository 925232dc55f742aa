"""The implementation against protocols/vectors/bodies.json (protocols/ops.md §12, §13).

The sealing steps are recomputed here from the spec's formulas with libsodium and
hashlib directly, not with core/sealing.py, so that a mistake in either shows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.bindings
import pytest

from liberation_node.core.bodies import PostHeader
from liberation_node.core.contents import Contents
from liberation_node.core.errors import Rejection
from liberation_node.core.identity import Identity
from liberation_node.core.ops import decode_carried, decode_op
from liberation_node.core.reading import Reader
from liberation_node.core.replica import Replica
from liberation_node.core.sealing import OVERHEAD, open_sealed, padded_length, seal

BODIES = json.loads((Path(__file__).resolve().parent.parent / "protocols" / "vectors"
                     / "bodies.json").read_text(encoding="utf-8"))
Json = dict[str, Any]


def named(cases: list[Json]) -> Any:
    return pytest.mark.parametrize("case", cases, ids=[c["name"] for c in cases])


@named(BODIES["cases"])
def test_a_carried_form_is_judged_by_its_header_and_its_content_apart(case: Json) -> None:
    wire = bytes.fromhex(case["wire_hex"])
    try:
        op, refused = decode_carried(wire, case["network"])
    except Rejection as rejection:
        assert rejection.reason.value == case["header_reason"]
        result = Replica(case["network"]).ingest(wire)
        assert result.rejection is not None and result.rejection.reason == case["header_reason"]
        return
    assert case["header_reason"] is None
    assert (refused.reason.value if refused else None) == case["content_reason"]
    assert op.id.hex() == case["id"]
    assert (op.content.hex() if op.content else None) == case["content_hex"]
    # A replica that has the op's past takes the header, and the content only if it checks.
    replica = Replica(case["network"])
    result = replica.add(op._replace(content=None)) if op.seq > 1 else replica.ingest(wire)
    if op.seq == 1:
        assert result.outcome == "applied"
        assert (result.content_rejection.reason.value if result.content_rejection
                else None) == case["content_reason"]
        assert replica.contents.get(op.id) == (bytes.fromhex(case["content_hex"])
                                               if case["content_hex"] else None)


def kdf(data: bytes, person: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32, person=person).digest()


def aead(message: bytes, ad: bytes, key: bytes) -> bytes:
    out: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        message, ad, bytes(24), key)
    return out


def check_seal(d: Json, author: bytes, to: bytes, network: str) -> bytes:
    """Recompute ops.md §13.3 from the vector's r and plaintext; returns the content."""
    r = bytes.fromhex(d["r"])
    e = kdf(r, b"ln-dm-eph")
    big_e = nacl.bindings.crypto_scalarmult_base(e)
    k = kdf(r, b"ln-dm-key")
    assert (e.hex(), big_e.hex(), k.hex()) == (d["e"], d["E"], d["K"])
    slots = b""
    for role, key in (("recipient", to), ("author", author)):
        x = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(key)
        shared = nacl.bindings.crypto_scalarmult(e, x)
        slot_key = kdf(shared + big_e + x, b"ln-dm-slot")
        slot = aead(k, big_e, slot_key)
        assert (x.hex(), shared.hex(), slot_key.hex(), slot.hex()) == (
            d[f"{role}_x25519"], d[f"{role}_shared"], d[f"{role}_slot_key"], d[f"{role}_slot"])
        slots += slot
    ad = b"liberation-node/dm/v1\x00" + network.encode() + b"\x00" + author
    assert ad.hex() == d["ad_hex"]
    body = aead(bytes.fromhex(d["plaintext_hex"]), ad, k)
    assert body.hex() == d["ciphertext_hex"]
    content = big_e + slots + body
    assert content.hex() == d["content_hex"]
    return content


def test_a_direct_message_seals_as_the_spec_says() -> None:
    d = BODIES["direct"]
    author, to, network = bytes.fromhex(d["author"]), bytes.fromhex(d["to"]), d["network"]
    content = check_seal(d, author, to, network)
    plain = bytes.fromhex(d["plaintext_hex"])
    text = d["text"].encode()
    assert plain == to + len(text).to_bytes(2, "big") + text + bytes(256 - len(text))
    alice = Identity.from_seed(bytes([1]) * 32)
    assert alice.public_key == author
    assert seal(d["text"], to, alice, network, bytes.fromhex(d["r"])) == content
    op = decode_op(bytes.fromhex(d["header_hex"]), network)
    assert op.id.hex() == d["id"] and isinstance(op.body, PostHeader)
    assert (op.body.channel, op.body.size) == ("direct", len(content)) and len(content) == 434
    assert op.body.hash == hashlib.blake2b(content, digest_size=32).digest()
    carried, refused = decode_carried(bytes.fromhex(d["carried_hex"]), network)
    assert refused is None and carried.content == content


@pytest.mark.parametrize("which", ["direct", "malformed"])
def test_who_reads_a_direct_message(which: str) -> None:
    d = BODIES["direct"] if which == "direct" else BODIES["direct"]["malformed"]
    network, author = BODIES["direct"]["network"], bytes.fromhex(BODIES["direct"]["author"])
    if which == "malformed":
        check_seal(d, author, bytes.fromhex(BODIES["direct"]["to"]), network)
    op = decode_op(bytes.fromhex(d["header_hex"]), network)
    content = bytes.fromhex(d["content_hex"])
    held = Contents()
    held.load(op.id, content)
    for reader in d["readers"]:
        me = Identity.from_seed(bytes.fromhex(reader["seed"]))
        assert me.exchange_public.hex() == reader["x25519_public"]
        reading = Reader(me, network).read(op, held)
        assert (reading.text, reading.to.hex() if reading.to else None,
                reading.unreadable) == (reader["text"], reader["to"], reader["unreadable"])
        if reader["unreadable"] == "not_for_this_node":
            assert open_sealed(content, me, author, network) is None


def test_sizes() -> None:
    for row in BODIES["sizes"]:
        assert padded_length(row["text_bytes"]) == row["padded"]
        assert OVERHEAD + row["padded"] == row["content_size"]


@named(BODIES["sequences"])
def test_sequences(case: Json) -> None:
    replica = Replica(case["network"])
    for step in case["steps"]:
        if "drop" in step:
            changes = replica.drop_contents([bytes.fromhex(step["drop"])])
        else:
            result = replica.ingest(bytes.fromhex(step["wire_hex"]))
            assert result.outcome == step["outcome"], step["label"]
            assert [op.id.hex() for op in result.applied] == step["applied"], step["label"]
            assert (result.content_rejection.reason.value if result.content_rejection
                    else None) == step["content_reason"], step["label"]
            changes = result.contents
        assert [[i.hex(), c.hex() if c else None] for _, _, i, c in changes] == step["contents"], \
            step["label"]
    final = case["final"]
    assert sorted(i.hex() for i in replica.ops) == final["held"]
    assert sorted(i.hex() for i, _ in replica.contents.items()) == final["contents"]
    assert sorted(i.hex() for i in replica.contents.retracted) == final["retracted"]
    assert replica.digest().hex() == final["digest"]
