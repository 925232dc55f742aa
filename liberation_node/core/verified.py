"""Signature checks done ahead of ingest, and the bounded memo that carries them to it
(protocols/ops.md §6.1; issue 10, parallel verification).

Ed25519 verification is most of the cost of taking in an op, and it is a pure
function of the op's bytes, so a driver may run it for a whole OPS frame in
worker processes (verifiers.py) while its loop does the rest: `check_frame`
is what a worker runs; its verdicts go into the replica's `Verified` memo just
before the frame itself is handed to the mesh, in the frame's order.

A verdict is keyed by the op id, the BLAKE2b-256 hash of the very header that
was checked (ops.md §4), and it names the key it was checked against:
`decode_op` takes it on trust only when that key is the author it parses itself
(`trusted`), and verifies for real otherwise. So a verdict changes no outcome,
only where the work was done: a bad signature is refused with the same reason,
and a header the quick parse below misreads is simply checked again. The memo
is bounded, oldest first out: a verdict lost to eviction costs one more
verification, never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import codec, frames
from .identity import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, verify
from .ops import OP_DOMAIN, op_id
from .records import MAX_RECORD_BYTES, RECORD_DOMAIN, record_id

Verdict = tuple[bytes, bytes, bool]  # (op id, the key checked against, valid)
# [code, eager, [[wire, hops], ...]]: the frames whose items workers check
_OPS, _RECORDS = frames.type_code(frames.Ops), frames.type_code(frames.Records)
MEMO_SIZE = 8192  # verdicts held: two full OPS frames' worth (frames.MAX_ITEMS = 4096)


class Verified:
    """Verdicts by op id, at most `size`, each taken once."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._held: dict[bytes, tuple[bytes, bool]] = {}
        self.used = 0  # verdicts taken by ingest (a figure for tests and benchmarks)

    def __len__(self) -> int:
        return len(self._held)

    def learn(self, verdicts: Iterable[Verdict]) -> None:
        held = self._held
        for oid, key, ok in verdicts:
            held.pop(oid, None)  # re-inserted last: the newest leaves last
            held[oid] = (key, ok)
            if len(held) > self.size:
                del held[next(iter(held))]

    def take(self, oid: bytes) -> tuple[bytes, bool] | None:
        """The verdict on op `oid` (the key it was checked against, and whether the
        signature is valid), forgotten as it is taken; None if there is none."""
        verdict = self._held.pop(oid, None)
        if verdict is not None:
            self.used += 1
        return verdict


def check_frame(data: bytes) -> list[Verdict]:
    """A worker's job: the verdicts on an OPS frame's ops or a RECORDS frame's records
    (none for anything else: the session judges a bad frame itself, in its turn).
    Never raises.

    The frame is read loosely, without the canonical re-encoding that `frames.decode`
    does: a verdict depends on no encoding rule (it is keyed by the hash of the exact
    header bytes, and taken only for the author `decode_op` parses), and the session
    checks the frame in full when its turn comes."""
    if len(data) > frames.MAX_FRAME_BYTES:
        return []
    raw = codec.peek(data)
    if (type(raw) is not tuple or len(raw) != 3 or raw[0] not in (_OPS, _RECORDS)
            or type(raw[2]) is not tuple):
        return []
    wires = (item[0] for item in raw[2]
             if type(item) is tuple and len(item) == 2 and type(item[0]) is bytes)
    return check(wires) if raw[0] == _OPS else check_records(wires)


def check(wires: Iterable[bytes]) -> list[Verdict]:
    """Verify the signatures of ops as they travel (headers or carried forms). Wires
    whose shape this quick look does not recognise get no verdict: `decode_op` judges
    them in full. Never raises."""
    verdicts = []
    for wire in wires:
        header = wire if wire[:1] != b"\x9b" else _header(wire)
        if header is None:
            continue
        author = _author(header)
        if author is None or len(header) < 2 + SIGNATURE_BYTES + PUBLIC_KEY_BYTES:
            continue
        # The bytes `decode_op` checks: the first nine elements as a 9-element array
        # (0x99) after the domain, and the signature that ends the header.
        signed = OP_DOMAIN + b"\x99" + header[1 : len(header) - (2 + SIGNATURE_BYTES)]
        verdicts.append((op_id(header), author,
                         verify(author, signed, header[len(header) - SIGNATURE_BYTES :])))
    return verdicts


def check_records(wires: Iterable[bytes]) -> list[Verdict]:
    """`check` for records (ops.md §8): keyed by record id, the hash of the record's
    bytes, so that they can share the memo with ops (an op header and a record differ
    in their first byte, hence in their hash). Never raises."""
    verdicts = []
    for wire in wires:
        author = _author(wire, 0x98)
        if author is None or len(wire) > MAX_RECORD_BYTES:
            continue
        # The bytes `decode_record` checks: the first seven elements as a 7-element array.
        signed = RECORD_DOMAIN + b"\x97" + wire[1 : len(wire) - (2 + SIGNATURE_BYTES)]
        verdicts.append((record_id(wire), author,
                         verify(author, signed, wire[len(wire) - SIGNATURE_BYTES :])))
    return verdicts


def _header(wire: bytes) -> bytes | None:
    """The header of a carried form, cut as `ops.split_carried` cuts it but without its
    canonical check (see `check_frame`); None when it is no 11-element array ending in
    a bin."""
    raw = codec.peek(wire)
    if type(raw) is not tuple or len(raw) != 11 or type(raw[10]) is not bytes:
        return None
    n = len(raw[10])
    tail = n + (2 if n <= 0xFF else 3 if n <= 0xFFFF else 5)
    return b"\x9a" + wire[1 : len(wire) - tail]


def _author(header: bytes, array: int = 0x9A) -> bytes | None:
    """The author key of an op header (or with `array` 0x98, a record), read at its
    offset: [format (fixint), network (fixstr or str8), author (bin8 of 32), ...]; None
    for any other layout."""
    if (len(header) < 2 + SIGNATURE_BYTES + PUBLIC_KEY_BYTES or header[0] != array
            or header[1] > 0x7F):
        return None
    tag = header[2]
    if 0xA0 <= tag <= 0xBF:
        at = 3 + (tag & 0x1F)
    elif tag == 0xD9:
        at = 4 + header[3]
    else:
        return None
    if header[at : at + 2] != b"\xc4\x20" or len(header) < at + 2 + PUBLIC_KEY_BYTES:
        return None
    return header[at + 2 : at + 2 + PUBLIC_KEY_BYTES]
