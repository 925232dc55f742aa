"""identity.json: seeds to keys, text ids, signatures, verification edge cases (ops.md §2, §4)."""

from __future__ import annotations

from typing import Any

from liberation_node.core.identity import Identity, id_from_text, short_id, verify

from . import edwards as ed
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
        _parse("dotless_i", text.replace("i", "\u0131", 1),
               "U+0131 (dotless i) upper-cases to ASCII 'I': a text id is ASCII only "
               "(ops.md §2.2.1)"),
        _parse("long_s", text.replace("s", "\u017f", 1),
               "U+017F (long s) upper-cases to ASCII 'S': refused"),
        _parse("fullwidth", "ln" + "".join(chr(ord(c) + 0xFEE0) for c in text[2:]),
               "fullwidth forms (U+FF41...) of every character after the prefix"),
        _parse("cyrillic_a", text.replace("a", "\u0430", 1) if "a" in text[2:]
               else "ln\u0430" + text[3:], "U+0430 looks like 'a'"),
        _parse("leading_bom", "\ufeff" + text,
               "U+FEFF is not whitespace (it is not stripped): refused, not read past"),
        _parse("zero_width_space", text[:20] + "\u200b" + text[20:],
               "U+200B inside the id: not whitespace, not ASCII"),
    ]


def _verify(name: str, public_key: bytes, message: bytes, signature: bytes,
            description: str) -> dict[str, Any]:
    full = len(signature) == 64
    return {"name": name, "public_key": h(public_key), "message_hex": h(message),
            "signature": h(signature), "valid": verify(public_key, message, signature),
            "cofactored": full and ed.verify_cofactored(public_key, message, signature),
            "lax_cofactorless": full and ed.verify_cofactorless(public_key, message, signature,
                                                                reduce=True),
            "description": description}


def _signed_by(a: int, public: bytes, label: bytes, k_mod: int, k_zero: bool
               ) -> tuple[bytes, bytes]:
    """(message, signature) by scalar `a` under the key bytes `public`, R = [r]B, for the
    first message whose challenge k is (k_zero) or is not a multiple of `k_mod`."""
    for i in range(1000):
        message = label + b" %d" % i
        r = int.from_bytes(ed.hashlib.sha512(b"r" + message).digest(), "little") % ed.L
        r_enc = ed.encode(ed.mul(r, ed.B))
        k = ed.challenge(r_enc, public, message)
        if (k % k_mod == 0) == k_zero:
            return message, r_enc + ((r + k * a) % ed.L).to_bytes(32, "little")
    raise AssertionError("no message found")


def _rule_cases() -> list[dict[str, Any]]:
    """The verification rules of ops.md §4.3.1, one per case, with what RFC 8032's
    cofactored check and a lax cofactorless one (y reduced mod p, no order checks) say."""
    a = ed.secret_scalar(ALICE.seed)
    t8 = ed.torsion_8()
    mixed = ed.encode(ed.add(ed.mul(a, ed.B), t8))
    identity_enc = ed.encode(ed.IDENTITY)
    cases = []
    m, sig = _signed_by(0, ed.encode(t8), b"order 8 key", 8, True)
    cases.append(_verify("small_order_key_order_8", ed.encode(t8), m, sig,
                         "the key is a point of order 8; k is a multiple of 8, so "
                         "[S]B - [k]A = R holds: refused, the key has small order"))
    k = ed.challenge(identity_enc, ALICE.public_key, MESSAGE)
    sig = identity_enc + (k * a % ed.L).to_bytes(32, "little")
    cases.append(_verify("small_order_r", ALICE.public_key, MESSAGE, sig,
                         "R is the neutral point (01 00...00) and S = k*a: both equations "
                         "hold, refused because R has small order"))
    r_noncanon = ed.encode_y(ed.P + 1, 0)
    k = ed.challenge(r_noncanon, ALICE.public_key, MESSAGE)
    sig = r_noncanon + (k * a % ed.L).to_bytes(32, "little")
    cases.append(_verify("non_canonical_r", ALICE.public_key, MESSAGE, sig,
                         "R is y = p + 1 (ee ff...ff 7f), a non-canonical encoding of the "
                         "neutral point: refused (small order; and R is compared as bytes)"))
    for name, y, k_mod, what in (("non_canonical_key_neutral", ed.P + 1, 1, "the neutral point"),
                                 ("non_canonical_key_order_4", ed.P, 4, "a point of order 4")):
        key = ed.encode_y(y, 0)
        m, sig = _signed_by(0, key, name.encode(), k_mod, True)
        cases.append(_verify(name, key, m, sig,
                             f"the key is y = {'p + 1' if y > ed.P else 'p'}, a non-canonical "
                             f"encoding of {what}: refused (non-canonical, small order)"))
    m, sig = _signed_by(a, mixed, b"mixed order", 8, False)
    cases.append(_verify("mixed_order_key_cofactored_only", mixed, m, sig,
                         "the key is alice's plus a point of order 8 (mixed order); k is "
                         "not a multiple of 8, so only the cofactored equation holds: "
                         "refused (the equation is checked without the cofactor)"))
    m, sig = _signed_by(a, mixed, b"mixed order", 8, True)
    cases.append(_verify("mixed_order_key_cofactorless_holds", mixed, m, sig,
                         "the same mixed-order key; k is a multiple of 8, so the "
                         "cofactorless equation holds: VALID (a mixed-order key is not "
                         "refused as such)"))
    return cases


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
        *_rule_cases(),
    ]


def build() -> dict[str, Any]:
    return {
        "description": "Ed25519 identities: seed -> public key (the node id), its text form, "
                       "its short display form, and a signature of message_hex by that seed. "
                       "'parse' lists text ids to parse, 'verify' signature checks with their "
                       "verdicts.",
        "spec": "protocols/ops.md §2, §4.3, §4.3.1",
        "cases": [_key_case(seed, MESSAGE if i else b"") for i, seed in enumerate(SEEDS)],
        "parse": _parse_cases(),
        "verify": _verify_cases(),
    }
