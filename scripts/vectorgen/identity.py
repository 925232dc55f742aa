"""identity.json: seeds to keys, text ids, signatures, verification edge cases (ops.md §2, §4)."""

from __future__ import annotations

from typing import Any

from liberation_node.core.identity import Identity, id_from_text, short_id, verify

from .common import ALICE, h

MESSAGE = b"liberation-node test message"
# The order of the Ed25519 base point group (RFC 8032 section 5.1).
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
SEEDS = [bytes(32), bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32, bytes([4]) * 32,
         bytes([0xFF]) * 32, bytes(range(32))]


def _key_case(seed: bytes, message: bytes) -> dict[str, Any]:
    me = Identity.from_seed(seed)
    return {"seed": h(seed), "public_key": h(me.public_key), "text": me.text,
            "short": short_id(me.public_key), "message_hex": h(message),
            "signature": h(me.sign(message))}


def _parse(name: str, text: str, description: str) -> dict[str, Any]:
    try:
        key: str | None = h(id_from_text(text))
    except ValueError:
        key = None
    return {"name": name, "text": text, "valid": key is not None, "public_key": key,
            "description": description}


def _parse_cases() -> list[dict[str, Any]]:
    text = ALICE.text
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    last = alphabet.index(text[-1])
    spare_bits = text[:-1] + alphabet[last ^ 0b001]  # only the 3 unused low bits differ
    typo = text[:10] + ("a" if text[10] != "a" else "b") + text[11:]
    return [
        _parse("canonical", text, "the form id_to_text produces"),
        _parse("uppercase_body", "ln" + text[2:].upper(), "the base32 body is case-insensitive"),
        _parse("surrounding_whitespace", f"  {text}\n", "whitespace around the id is ignored"),
        _parse("unicode_whitespace", f"\u00a0{text}\u3000",
               "leading and trailing whitespace is any that str.strip() removes (ops.md §2.2)"),
        _parse("with_padding", text + "=", "base32 padding may be present"),
        _parse("two_padding_chars", text + "==", "the padding of 34 bytes is one '='"),
        _parse("nonzero_spare_bits", spare_bits,
               "the last character carries 3 unused bits; they MUST be zero, so that every "
               "id has one text form (ops.md §2.2)"),
        _parse("uppercase_prefix", "LN" + text[2:], "the prefix is lowercase 'ln'"),
        _parse("no_prefix", text[2:], "the prefix is required"),
        _parse("checksum_mismatch", typo, "one mistyped character: the checksum catches it"),
        _parse("too_short", text[:-8], "not 34 bytes once decoded"),
        _parse("too_long", text + "aaaaaaaa", "not 34 bytes once decoded"),
        _parse("not_base32", text[:5] + "1" + text[6:], "'1' is not in the base32 alphabet"),
    ]


def _verify(name: str, public_key: bytes, message: bytes, signature: bytes,
            description: str) -> dict[str, Any]:
    return {"name": name, "public_key": h(public_key), "message_hex": h(message),
            "signature": h(signature), "valid": verify(public_key, message, signature),
            "description": description}


def _verify_cases() -> list[dict[str, Any]]:
    sig = ALICE.sign(MESSAGE)
    s = int.from_bytes(sig[32:], "little")
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    high_s = sig[:32] + (s + GROUP_ORDER).to_bytes(32, "little")
    neutral = bytes([1]) + bytes(31)  # the encoding of the neutral point, of order 1
    return [
        _verify("good", ALICE.public_key, MESSAGE, sig, "a signature by the key"),
        _verify("other_message", ALICE.public_key, MESSAGE + b".", sig, "message changed"),
        _verify("flipped_bit", ALICE.public_key, MESSAGE, flipped, "signature changed"),
        _verify("s_not_reduced", ALICE.public_key, MESSAGE, high_s,
                "S + L: passes the group equation, refused because S >= L (no malleability)"),
        _verify("small_order_key", neutral, b"", neutral + bytes(32),
                "key and R are the neutral point, S = 0: the cofactorless equation holds, "
                "refused because the key has small order"),
        _verify("short_signature", ALICE.public_key, MESSAGE, sig[:63], "63 bytes"),
    ]


def build() -> dict[str, Any]:
    return {
        "description": "Ed25519 identities: seed -> public key (the node id), its text form, "
                       "its short display form, and a signature of message_hex by that seed. "
                       "'parse' lists text ids to parse, 'verify' signature checks with their "
                       "verdicts.",
        "spec": "protocols/ops.md §2, §4.3",
        "cases": [_key_case(seed, MESSAGE if i else b"") for i, seed in enumerate(SEEDS)],
        "parse": _parse_cases(),
        "verify": _verify_cases(),
    }
