"""bodies.json: detachable post contents and sealed direct messages (ops.md §12, §13)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import nacl.bindings

from liberation_node.core import codec, sealing
from liberation_node.core.bodies import Post, PostHeader, Register, Retract, content_hash
from liberation_node.core.contents import Contents
from liberation_node.core.ingested import Ingested
from liberation_node.core.ops import MAX_OP_BYTES, Op, carry, create_op, decode_carried
from liberation_node.core.reading import Reader
from liberation_node.core.replica import Replica

from .common import (
    ALICE,
    BOB,
    CAROL,
    HOUR,
    NETWORK,
    T0,
    Writer,
    h,
    hx,
    rejection_reason,
    seal_for,
    signed_op,
    step_json,
)

ZERO_NONCE = bytes(24)


def _kdf(data: bytes, person: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32, person=person).digest()


def _aead(message: bytes, ad: bytes, key: bytes) -> bytes:
    out: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad,
                                                                          ZERO_NONCE, key)
    return out


def _seal_steps(r: bytes, author: Any, to: bytes, plaintext: bytes) -> dict[str, Any]:
    """§13.3 step by step, written out here apart from core/sealing.py."""
    e = _kdf(r, b"ln-dm-eph")
    big_e: bytes = nacl.bindings.crypto_scalarmult_base(e)
    k = _kdf(r, b"ln-dm-key")
    steps: dict[str, Any] = {"r": h(r), "e": h(e), "E": h(big_e), "K": h(k)}
    slots = b""
    for role, key in (("recipient", to), ("author", author.public_key)):
        x_pub: bytes = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(key)
        shared: bytes = nacl.bindings.crypto_scalarmult(e, x_pub)
        slot_key = _kdf(shared + big_e + x_pub, b"ln-dm-slot")
        slot = _aead(k, big_e, slot_key)
        steps[f"{role}_x25519"] = h(x_pub)
        steps[f"{role}_shared"] = h(shared)
        steps[f"{role}_slot_key"] = h(slot_key)
        steps[f"{role}_slot"] = h(slot)
        slots += slot
    ad = sealing.DM_DOMAIN + NETWORK.encode() + b"\x00" + author.public_key
    body = _aead(plaintext, ad, k)
    steps.update({"ad_hex": h(ad), "plaintext_hex": h(plaintext), "ciphertext_hex": h(body),
                  "content_hex": h(big_e + slots + body)})
    return steps


def _plaintext(to: bytes, text: bytes, padded: int) -> bytes:
    return to + len(text).to_bytes(2, "big") + text + bytes(padded - len(text))


def _readers(op: Op, content: bytes) -> list[dict[str, Any]]:
    out = []
    for name, who in (("alice", ALICE), ("bob", BOB), ("carol", CAROL)):
        held = Contents()
        held.load(op.id, content)
        reading = Reader(who, NETWORK).read(op._replace(content=None), held)
        out.append({"reader": name, "seed": h(who.seed), "x25519_public": h(who.exchange_public),
                    "text": reading.text, "to": hx(reading.to),
                    "unreadable": reading.unreadable})
    return out


def _direct() -> dict[str, Any]:
    text = "see you at nine"
    r = seal_for(ALICE, 2, T0 + HOUR)
    plain = _plaintext(BOB.public_key, text.encode(), 256)
    steps = _seal_steps(r, ALICE, BOB.public_key, plain)
    content = sealing.seal(text, BOB.public_key, ALICE, NETWORK, r)
    assert content.hex() == steps["content_hex"] and len(content) == 434
    alice = Writer(ALICE)
    alice.write(Register("alice"), T0)
    op = alice.write(Post("direct", text, 1, BOB.public_key), T0 + HOUR)
    assert op.content == content
    # A message whose padding is not zeros: it opens, and is shown as malformed.
    r2 = bytes([0x42]) * 32
    bad_plain = _plaintext(BOB.public_key, b"odd", 256)[:-1] + b"\x01"
    bad = _seal_steps(r2, ALICE, BOB.public_key, bad_plain)
    bad_content = bytes.fromhex(bad["content_hex"])
    header = PostHeader("direct", 1, len(bad_content), content_hash(bad_content))
    bad_op = create_op(ALICE, network=NETWORK, seq=3, prev=op.id, timestamp=T0 + 2 * HOUR,
                       body=header)
    return {
        "description": "alice's direct message to bob, sealed (§13.3): the writer's 32 "
                       "random bytes r, every derived value, the content; its op (header, "
                       "carried form); and what alice, bob and carol read from it. "
                       "'malformed': a message whose padding is not zeros, which bob opens "
                       "and shows as unreadable ('invalid').",
        "network": NETWORK, "author": h(ALICE.public_key), "to": h(BOB.public_key),
        "text": text, **steps,
        "header_hex": h(op.wire), "id": h(op.id), "carried_hex": h(op.carried),
        "readers": _readers(op, content),
        "malformed": {**bad, "header_hex": h(bad_op.wire), "id": h(bad_op.id),
                      "readers": _readers(bad_op, bad_content)},
    }


def _sizes() -> list[dict[str, int]]:
    return [{"text_bytes": n, "padded": sealing.padded_length(n),
             "content_size": sealing.OVERHEAD + sealing.padded_length(n)}
            for n in (1, 256, 257, 512, 513, 1024, 1025, 2048, 2049, 4096)]


# -- checking contents ----------------------------------------------------------------------

def _v2_header(body: dict[str, Any], seq: int = 1) -> bytes:
    fields = [2, NETWORK, ALICE.public_key, seq, None if seq == 1 else bytes([0xAA]) * 32, [],
              T0, "message.post", codec.sorted_map(body)]
    return signed_op(ALICE, fields)


def _content_case(name: str, description: str, wire: bytes, header_reason: str | None,
                  content_reason: str | None) -> dict[str, Any]:
    got_header = rejection_reason(decode_carried, wire, NETWORK)
    assert got_header == header_reason, (name, got_header)
    content = None
    op_id = None
    if header_reason is None:
        op, refused = decode_carried(wire, NETWORK)
        assert (refused.reason.value if refused else None) == content_reason, name
        content, op_id = op.content, op.id
    return {"name": name, "description": description, "network": NETWORK,
            "wire_hex": h(wire), "header_reason": header_reason,
            "content_reason": content_reason, "id": hx(op_id), "content_hex": hx(content)}


def _content_cases() -> list[dict[str, Any]]:
    post = create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0,
                     body=Post("social", "hello", 1, None))
    assert post.content is not None
    text = post.content
    not_utf8 = b"\xff\xfe"
    bad_utf8 = _v2_header({"channel": "social", "hash": content_hash(not_utf8), "priority": 1,
                           "size": 2})
    sealed = bytes(range(256)) + bytes(434 - 256)  # any bytes: only the readers can tell
    direct = _v2_header({"channel": "direct", "hash": content_hash(sealed), "priority": 1,
                         "size": 434})
    register = create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0,
                         body=Register("alice"))
    legacy = create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0, format=1,
                       body=Post("social", "hello", 1, None))
    tampered = bytearray(carry(post.wire, text))
    tampered[len(post.wire) - 10] ^= 1  # in the header's signature
    oversize = create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0,
                         body=Post("social", "x" * 4096, 1, None))
    assert oversize.content is not None
    big = carry(oversize.wire, oversize.content)
    too_big = big + b"x" * (MAX_OP_BYTES + 1 - len(big))  # not canonical either: size first
    return [
        _content_case("post_with_content", "a format-2 post's carried form: header and "
                      "content accepted", carry(post.wire, text), None, None),
        _content_case("post_header_alone", "the same op, its header only", post.wire, None,
                      None),
        _content_case("content_one_byte_short", "the content's length is not the header's "
                      "size: only the content is refused", carry(post.wire, text[:-1]), None,
                      "bad_content"),
        _content_case("content_altered", "same length, another hash",
                      carry(post.wire, b"jello"), None, "bad_content"),
        _content_case("content_not_utf8", "a social post's content is its UTF-8 text; the "
                      "author signed the hash of bytes that are not UTF-8",
                      carry(bad_utf8, not_utf8), None, "bad_content"),
        _content_case("direct_content_unchecked", "a direct message's content is checked by "
                      "size and hash only: a node that is not a reader cannot tell more",
                      carry(direct, sealed), None, None),
        _content_case("content_on_a_register", "only format-2 posts have a content",
                      carry(register.wire, b"x"), None, "bad_content"),
        _content_case("content_on_a_format_1_post", "a format-1 post has its text inline",
                      carry(legacy.wire, b"hello"), None, "bad_content"),
        _content_case("content_not_bin", "the 11th element must be bin: the input is no "
                      "carried form", b"\x9b" + post.wire[1:] + codec.pack("hello"),
                      "malformed", None),
        _content_case("header_signature_broken", "the header decides: its bad signature "
                      "refuses the op, whatever its content", bytes(tampered),
                      "bad_signature", None),
        _content_case("carried_oversize", "a carried form over 8192 bytes", too_big,
                      "oversize", None),
    ]


# -- replicas -------------------------------------------------------------------------------

def _step(label: str, wire: bytes, result: Ingested) -> dict[str, Any]:
    return {**step_json(label, wire, result),
            "contents": [[h(i), hx(c)] for _, _, i, c in result.contents],
            "content_reason": result.content_rejection.reason.value
            if result.content_rejection else None}


def _final(replica: Replica) -> dict[str, Any]:
    return {"held": sorted(h(i) for i in replica.ops),
            "contents": sorted(h(i) for i, _ in replica.contents.items()),
            "retracted": sorted(h(i) for i in replica.contents.retracted),
            "digest": h(replica.digest())}


def _sequence(name: str, description: str,
              steps: Sequence[tuple[str, bytes | tuple[str, bytes]]]) -> dict[str, Any]:
    """`steps`: (label, wire to ingest) or (label, ("drop", op id)): a node drops a content."""
    replica = Replica(NETWORK)
    rows = []
    for label, what in steps:
        if isinstance(what, tuple):
            _, op_id = what
            rows.append({"label": label, "drop": h(op_id),
                         "contents": [[h(i), hx(c)] for _, _, i, c in
                                      replica.drop_contents([op_id])]})
        else:
            rows.append(_step(label, what, replica.ingest(what)))
    return {"name": name, "description": description, "network": NETWORK, "steps": rows,
            "final": _final(replica)}


def _sequences() -> list[dict[str, Any]]:
    a = Writer(ALICE)
    reg = a.write(Register("alice"), T0)
    p1 = a.write(Post("social", "first", 1, None), T0 + HOUR)
    p2 = a.write(Post("billboard", "second", 2, None), T0 + 2 * HOUR)
    retract = a.write(Retract(p1.id), T0 + 3 * HOUR)
    bad = bytearray(p2.carried)
    bad[-1] ^= 1
    out = [
        _sequence("content_after_its_header", "the header first, bare; then its carried form: "
                  "a duplicate by id whose content is taken (§12.5)",
                  [("register", reg.wire), ("p1 header", p1.wire),
                   ("p1 carried", p1.carried)]),
        _sequence("retraction_purges", "a held content is dropped when the retract is held, "
                  "and never taken again (§12.6)",
                  [("register", reg.wire), ("p1 carried", p1.carried),
                   ("p2 carried", p2.carried), ("retract p1", retract.wire),
                   ("p1 carried again", p1.carried)]),
        _sequence("retraction_first", "a retract held before the content ever came: the "
                  "content is not taken", [("register", reg.wire), ("p1 header", p1.wire),
                                           ("p2 header", p2.wire), ("retract p1", retract.wire),
                                           ("p1 carried", p1.carried)]),
        _sequence("bad_content_with_a_new_op", "the header is applied, its content refused "
                  "(§12.4); the good content is taken later",
                  [("register", reg.wire), ("p1 carried", p1.carried),
                   ("p2 with a bad content", bytes(bad)), ("p2 carried", p2.carried)]),
        _sequence("a_dropped_content", "a node drops a content (its retention): the header "
                  "stays, the digest does not change (§12.5); compare the final digest with "
                  "content_after_its_header's own feed",
                  [("register", reg.wire), ("p1 carried", p1.carried),
                   ("p2 carried", p2.carried), ("drop p2", ("drop", p2.id))]),
    ]
    whole = Replica(NETWORK)
    for op in (reg, p1, p2):
        whole.ingest(op.carried)
    assert out[-1]["final"]["digest"] == h(whole.digest())
    assert out[-1]["final"]["contents"] == [h(p1.id)]
    return out


def build() -> dict[str, Any]:
    return {
        "description": "Op format 2: post contents apart from their headers, and sealed direct "
                       "messages. 'cases': carried forms (or headers) decoded for 'network', "
                       "the header's verdict (header_reason) and, for a valid header, the "
                       "content's (content_reason: null when it matches), the header's id "
                       "and the content kept. 'direct': a sealed direct message step by step "
                       "and who reads it. 'sizes': text lengths and the content size they "
                       "seal to. 'sequences': inputs ingested in order by one replica (or a "
                       "content dropped, 'drop'), each step as in ops_invalid.json plus "
                       "'contents' (taken [id, content] or dropped [id, null], in order) and "
                       "'content_reason'; 'final' lists the held ops, contents, retracted "
                       "posts and the digest.",
        "spec": "protocols/ops.md §12, §13",
        "cases": _content_cases(),
        "direct": _direct(),
        "sizes": _sizes(),
        "sequences": _sequences(),
    }
