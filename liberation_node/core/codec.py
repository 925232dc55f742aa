"""Canonical msgpack (protocols/ops.md §3).

Signatures and ids are computed over bytes, so every value must have exactly
one encoding. msgpack-python already emits the shortest form of every integer,
string, binary, array and map header; we add the rest of the canonical rules
(map keys are text and sorted by their UTF-8 bytes; no floats, no extension
types) and, on decode, require that re-encoding reproduces the input byte for
byte. That one comparison rejects every alternative encoding of the same
values at once (longer headers, signed-family integers, duplicate keys...).

Two canonical rules are about *values*, not encodings, and so are checked by the
callers where the value is parsed: map keys must be text in sorted order
(`check_map_keys_sorted`), and floats and extension values are never valid field
values (protocols/ops.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack

from .errors import Reason, Rejection

Value = None | bool | int | str | bytes | list["Value"] | dict[str, "Value"]

_packer_options: dict[str, Any] = {"use_bin_type": True}
# Packers to reuse: `msgpack.packb` makes a new one per call, which costs three times
# the packing of a small frame. Taken from and given back to this list (each step
# atomic), so that threads that check frames (inbound.py) never share one.
_packers: list[msgpack.Packer] = []


def pack(obj: Any) -> bytes:
    """Encode canonically. Callers build maps with sorted keys (see `sorted_map`)."""
    try:
        packer = _packers.pop()
    except IndexError:
        packer = msgpack.Packer(**_packer_options)
    data: bytes = packer.pack(obj)  # a packer that raised is not given back (it may hold
    _packers.append(packer)  # part of `obj`)
    return data


def sorted_map(items: Mapping[str, Any]) -> dict[str, Any]:
    """A dict whose iteration order is the canonical key order (UTF-8 bytewise)."""
    return {k: items[k] for k in sorted(items, key=lambda key: key.encode("utf-8"))}


def unpack(data: bytes, max_bytes: int, *, lists: bool = True) -> Any:
    """Decode one canonical value of at most `max_bytes` bytes, or raise `Rejection`.
    Arrays decode as lists, or with `lists=False` as tuples (cheaper to keep).

    Never raises anything else, whatever the bytes (tests/test_codec.py fuzzes it).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise Rejection(Reason.UNDECODABLE, "not bytes")
    if len(data) > max_bytes:
        raise Rejection(Reason.OVERSIZE, f"{len(data)} bytes > {max_bytes}")
    try:
        obj = msgpack.unpackb(data, raw=False, use_list=lists, strict_map_key=True,
                            timestamp=0)
    except Exception as exc:  # msgpack raises many types for bad bytes; all mean "undecodable"
        raise Rejection(Reason.UNDECODABLE, type(exc).__name__) from None
    try:
        again = pack(obj)
    except Exception as exc:  # defensive: whatever msgpack decoded, it can re-encode
        raise Rejection(Reason.NON_CANONICAL, type(exc).__name__) from None
    if again != data:
        raise Rejection(Reason.NON_CANONICAL, "re-encoding differs from the input")
    return obj


def peek(data: bytes) -> Any:
    """Decode loosely: arrays as tuples, no canonical check, None for bytes that do not
    decode at all. Only for work whose outcome depends on no encoding rule (signature
    checks keyed by the hash of the exact bytes, core/verified.py); never raises."""
    try:
        return msgpack.unpackb(data, raw=False, use_list=False, strict_map_key=False,
                               timestamp=0)
    except Exception:  # any bad bytes: nothing to look at
        return None


def check_map_keys_sorted(value: dict[Any, Any]) -> bool:
    """True when a decoded map's keys are all text, in canonical order (hence unique)."""
    keys = list(value)
    if not {*map(type, keys)} <= {str}:
        return False  # msgpack allows binary keys; our canonical form does not (§3)
    # UTF-8 orders strings as their code points do, so this is the bytewise order
    # without encoding every key (this runs for every op and record taken in); a
    # decoded map's keys are distinct, so sorted means strictly increasing.
    try:
        return keys == sorted(keys)
    except TypeError:  # defensive: not all text after all
        return False
