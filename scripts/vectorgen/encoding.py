"""encoding.json: canonical msgpack, and inputs a decoder must refuse (ops.md §3)."""

from __future__ import annotations

from typing import Any

import msgpack

from liberation_node.core import codec

from .common import h, rejection_reason

LIMIT = 1 << 20


def typed(value: Any) -> Any:
    """A value in the vectors' typed JSON: {"int": 1}, {"str": ""}, {"bin": hex}, ..."""
    if value is None:
        return {"nil": None}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, bytes):
        return {"bin": h(value)}
    if isinstance(value, list):
        return {"array": [typed(v) for v in value]}
    assert isinstance(value, dict)
    return {"map": [[typed(k), typed(v)] for k, v in value.items()]}


def _canonical(name: str, value: Any, note: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        value = codec.sorted_map(value)
    data = codec.pack(value)
    assert codec.unpack(data, LIMIT) == value
    return {"name": name, "hex": h(data), "canonical": True, "decode": "ok",
            "value": typed(value), "note": note}


def _refused(name: str, hex_: str, note: str) -> dict[str, Any]:
    data = bytes.fromhex(hex_)
    reason = rejection_reason(codec.unpack, data, LIMIT)
    assert reason is not None, name
    case: dict[str, Any] = {"name": name, "hex": hex_, "canonical": False, "decode": reason}
    value = _decode_loosely(data) if reason == "non_canonical" else None
    if reason == "non_canonical" and not isinstance(value, float):  # floats have no form
        case["value"] = typed(value)
        case["canonical_hex"] = h(codec.pack(value))
    case["note"] = note
    return case


def _decode_loosely(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False)


def _structural(name: str, hex_: str, refused_by: str, note: str) -> dict[str, Any]:
    """Accepted by the generic decoding step, refused where the field is parsed (§3.4)."""
    assert rejection_reason(codec.unpack, bytes.fromhex(hex_), LIMIT) is None
    return {"name": name, "hex": hex_, "canonical": False, "decode": "ok",
            "refused_by": refused_by, "note": note}


MAX_DEPTH = 1024  # nested arrays and maps a decoder MUST accept, and no more (§3.3.1)


def _nested(name: str, depth: int, opener: bytes, note: str) -> dict[str, Any]:
    """`depth` containers, each holding the next, around nil: given as hex only (a JSON
    reader may not take the value nested that deep)."""
    data = opener * depth + b"\xc0"
    reason = rejection_reason(codec.unpack, data, LIMIT)
    case: dict[str, Any] = {"name": name, "hex": h(data), "depth": depth,
                            "canonical": reason is None, "decode": reason or "ok"}
    assert (reason is None) == (depth <= MAX_DEPTH), (name, reason)
    case["note"] = note
    return case


def _cases() -> list[dict[str, Any]]:
    keys_utf8 = {"z": 1, "\u00e9": 2, "\uff61": 3, "\U00010000": 4}
    return [
        _canonical("nil", None),
        _canonical("false", False),
        _canonical("true", True),
        _canonical("int_0", 0, "positive fixint"),
        _canonical("int_127", 127, "largest positive fixint"),
        _canonical("int_128", 128, "uint8"),
        _canonical("int_255", 255, "largest uint8"),
        _canonical("int_256", 256, "uint16"),
        _canonical("int_65535", 65535, "largest uint16"),
        _canonical("int_65536", 65536, "uint32"),
        _canonical("int_2p32_minus_1", 2**32 - 1, "largest uint32"),
        _canonical("int_2p32", 2**32, "uint64"),
        _canonical("int_2p53_minus_1", 2**53 - 1, "largest seq and amount"),
        _canonical("int_2p64_minus_1", 2**64 - 1, "largest uint64"),
        _canonical("int_minus_1", -1, "negative fixint"),
        _canonical("int_minus_32", -32, "smallest negative fixint"),
        _canonical("int_minus_33", -33, "int8"),
        _canonical("int_minus_128", -128, "smallest int8"),
        _canonical("int_minus_129", -129, "int16"),
        _canonical("int_minus_32769", -32769, "int32"),
        _canonical("int_minus_2p31_minus_1", -(2**31) - 1, "int64"),
        _canonical("int_minus_2p63", -(2**63), "smallest int64"),
        _canonical("str_empty", ""),
        _canonical("str_utf8", "\u00e9\u20ac", "length counts UTF-8 bytes (5), not characters"),
        _canonical("str_31", "a" * 31, "largest fixstr"),
        _canonical("str_32", "a" * 32, "str8"),
        _canonical("str_256", "a" * 256, "str16"),
        _canonical("str_leading_bom", "\ufeffa", "U+FEFF (ef bb bf) at the start is part of "
                   "the text: a decoder MUST keep it (JavaScript's TextDecoder drops it "
                   "unless ignoreBOM is set; §3.6)"),
        _canonical("bin_empty", b"", "bin8 (there is no fixbin)"),
        _canonical("bin_32", bytes(range(32)), "a public key or op id"),
        _canonical("bin_256", bytes(256), "bin16"),
        _canonical("array_empty", []),
        _canonical("array_mixed", [1, "a", b"\x00", None, [True]]),
        _canonical("array_15", list(range(15)), "largest fixarray"),
        _canonical("array_16", list(range(16)), "array16"),
        _canonical("map_empty", {}),
        _canonical("map_sorted", {"b": 2, "a": 1, "ab": 3},
                   "keys sorted by their UTF-8 bytes: a < ab < b"),
        _canonical("map_keys_utf8_order", keys_utf8,
                   "UTF-8 byte order, which is code point order: U+FF61 sorts before "
                   "U+10000 (UTF-16 code-unit order would put it after)"),
        _canonical("map_16", {f"k{i:02d}": i for i in range(16)}, "map16"),
        _refused("int_1_as_uint8", "cc01", "1 fits a positive fixint"),
        _refused("int_1_as_uint16", "cd0001", "1 fits a positive fixint"),
        _refused("int_1_as_uint64", "cf0000000000000001", "1 fits a positive fixint"),
        _refused("int_200_as_uint16", "cd00c8", "200 fits uint8"),
        _refused("int_1_as_int8", "d001", "non-negative integers use the unsigned family"),
        _refused("int_200_as_int16", "d100c8", "non-negative integers use the unsigned family"),
        _refused("int_0_as_int64", "d30000000000000000", "0 is the single byte 00"),
        _refused("int_minus_1_as_int8", "d0ff", "-1 fits a negative fixint"),
        _refused("int_minus_100_as_int16", "d1ff9c", "-100 fits int8"),
        _refused("str_as_str8", "d90161", "a 1-byte string is a fixstr"),
        _refused("str_as_str16", "da000161", "a 1-byte string is a fixstr"),
        _refused("bin_as_bin16", "c5000100", "a 1-byte binary is bin8"),
        _refused("array_as_array16", "dc000101", "a 1-element array is a fixarray"),
        _refused("array_as_array32", "dd0000000101", "a 1-element array is a fixarray"),
        _refused("map_as_map16", "de0001a16101", "a 1-entry map is a fixmap"),
        _refused("map_duplicate_keys", "82a16101a16102", "a key appears at most once"),
        _refused("float32", "ca3f800000", "no floats"),
        _refused("empty_input", "", "no value at all"),
        _refused("reserved_byte", "c1", "0xc1 is never used"),
        _refused("truncated", "cd00", "uint16 with one byte"),
        _refused("trailing_bytes", "0000", "exactly one value, nothing after it"),
        _refused("str_invalid_utf8", "a1ff", "text is valid UTF-8"),
        _refused("str_utf8_surrogate", "a3eda080", "UTF-8 never encodes surrogates"),
        _refused("map_int_key", "810101", "map keys are text"),
        _refused("map_nil_key", "81c001", "map keys are text"),
        _nested("array_nested_1024", MAX_DEPTH, b"\x91",
                "1024 arrays, each the only element of the one around it, then nil: the "
                "deepest nesting a decoder MUST accept (§3.3.1)"),
        _nested("array_nested_1025", MAX_DEPTH + 1, b"\x91",
                "1025 levels: MUST be refused as undecodable (§3.3.1), whatever the frame "
                "or op around it"),
        _nested("map_nested_1025", MAX_DEPTH + 1, b"\x81\xa1a",
                "maps count as levels too: 1025 nested {\"a\": ...}"),
        _structural("map_unsorted_keys", "82a16201a16102", "ops_invalid.json:body_keys_unsorted",
                    "map keys out of order: refused as non_canonical when an op or record "
                    "body is parsed (the only maps in version 1)"),
        _structural("map_bin_key", "81c4016101", "ops_invalid.json:body_bin_key",
                    "a bin map key: msgpack allows it, the canonical form does not; refused "
                    "as non_canonical when an op or record body is parsed"),
        _structural("float64", "cb3ff0000000000000", "ops_invalid.json:timestamp_float64",
                    "no field admits a float: refused as malformed/bad_body by the field"),
        _structural("ext_fixext1", "d40001", "ops_invalid.json:signature_ext",
                    "no field admits an extension type: refused by the field"),
    ]


def build() -> dict[str, Any]:
    return {
        "description": "Canonical msgpack. Values are typed JSON: {\"nil\": null}, "
                       "{\"bool\": b}, {\"int\": n}, {\"str\": s}, {\"bin\": hex}, "
                       "{\"array\": [...]}, {\"map\": [[key, value], ...]} (entries in wire "
                       "order). 'decode' is what the generic decoding step (§3.3) gives: ok, "
                       "non_canonical or undecodable. Cases with canonical=false and "
                       "decode=ok are refused where the value is parsed (§3.4), by the case "
                       "named in 'refused_by'.",
        "spec": "protocols/ops.md §3",
        "cases": _cases(),
    }
