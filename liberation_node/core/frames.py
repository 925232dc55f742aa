"""Session frames: the messages peers exchange over one connection (protocols/sync.md §3).

A frame is one canonical msgpack array ``[type, field...]``; each message type
is a frozen dataclass and one row of `_TABLE`, which says how to check and build
it. Decoding never raises anything but `Rejection` (reason MALFORMED, OVERSIZE,
UNDECODABLE or NON_CANONICAL), whatever the bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from . import codec
from .errors import Reason, Rejection

MAX_FRAME_BYTES = 64 * 1024  # hard limit, both directions (sync.md §2)
TARGET_FRAME_BYTES = 16 * 1024  # what senders aim for when batching ops
MAX_ITEMS = 4096  # entries in any list field
MAX_REFS = 800  # refs per IHAVE/GRAFT: 800 x 78 B stays under 64 KiB (sync.md §5.4)
REF_BYTES = 32
# Hop counts saturate here; a sender that does not know how far an op or record has
# travelled (a served range, a stored op) says so with this value (sync.md §5.1).
MAX_HOPS = 255

Ref = tuple[bytes, int, bytes]  # (author, seq, op id)
Announced = tuple[bytes, int, bytes, int]  # (author, seq, op id, hops)


@dataclass(frozen=True, slots=True)
class Hello:
    """First frame each way: who we are, and proof that we are on *this* connection."""

    version: int
    network: str
    node_id: bytes
    binding_sig: bytes  # Ed25519 over HELLO_DOMAIN + the transport's binding value
    software: str


@dataclass(frozen=True, slots=True)
class Close:
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Ping:
    nonce: int


@dataclass(frozen=True, slots=True)
class Pong:
    nonce: int
    clock: int  # the sender's clock when it answered (ms): gives the clock offset (§4.4)


@dataclass(frozen=True, slots=True)
class Ops:
    """Op wire bytes, in causal order within the frame, each with the number of links
    it crossed to reach the sender (its hop count, MAX_HOPS when unknown). `eager`
    marks gossip pushes."""

    eager: bool
    ops: tuple[tuple[bytes, int], ...]  # (op wire, hops)

    @property
    def wires(self) -> list[bytes]:
        return [wire for wire, _ in self.ops]


@dataclass(frozen=True, slots=True)
class IHave:
    """Lazy gossip: ids of ops the sender holds and did not push to us (Plumtree),
    each with its hop count at the sender."""

    refs: tuple[Announced, ...]  # (author, seq, id, hops)


@dataclass(frozen=True, slots=True)
class Graft:
    """Send me these, and push to me eagerly from now on (no refs: only the latter)."""

    refs: tuple[Ref, ...]


@dataclass(frozen=True, slots=True)
class Prune:
    """Stop pushing ops to me eagerly; announce them with IHAVE instead."""


@dataclass(frozen=True, slots=True)
class Records:
    """Record wires, each with its hop count; `eager` marks gossip pushes (sync.md §5.6)."""

    eager: bool
    records: tuple[tuple[bytes, int], ...]  # (record wire, hops)

    @property
    def wires(self) -> list[bytes]:
        return [wire for wire, _ in self.records]


@dataclass(frozen=True, slots=True)
class SyncOpen:
    """Anti-entropy, step 1: my digest; is yours the same?"""

    round: int
    digest: bytes
    authors: int  # how many feeds I hold: sizes the bucket split
    salt: bytes


@dataclass(frozen=True, slots=True)
class SyncSame:
    round: int


@dataclass(frozen=True, slots=True)
class SyncBuckets:
    """Step 2: my bucket hashes, `bits` leading bits of the author id per bucket."""

    round: int
    bits: int
    hashes: bytes  # 2**bits hashes of BUCKET_HASH_BYTES each, bucket 0 first


@dataclass(frozen=True, slots=True)
class SyncHeads:
    """Step 3: my feed heads and records in the buckets that differ.

    `partial` lists buckets whose rows did not all fit (one bucket can hold
    more feeds than a frame: ids are cheap to grind into one prefix): for
    those, a feed missing from `heads` says nothing, and is not sent for.
    """

    round: int
    bits: int
    buckets: tuple[int, ...]
    # (author8, seq, head8, proofs8): 8-byte prefixes keep a row near 27 bytes
    heads: tuple[tuple[bytes, int, bytes, tuple[bytes, ...]], ...]
    records: tuple[tuple[bytes, str, bytes], ...]  # author8, kind, id8
    partial: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Want:
    """Send me these feed ranges (inclusive), these fork proofs and these records.

    `round` closes step 3 of an anti-entropy round; 0 is a request on its own
    (e.g. for an op's missing causal past). An author is named by its full id,
    or by the 8-byte prefix it had in the peer's SYNC_HEADS when we do not
    know the full id; a prefix means every held author with that prefix.
    """

    round: int
    ranges: tuple[tuple[bytes, int, int], ...]
    forks: tuple[bytes, ...]  # authors whose fork proofs I lack
    records: tuple[tuple[bytes, str], ...]


@dataclass(frozen=True, slots=True)
class Signal:
    """Relayed signaling (sync.md §7): an offer or answer for `to`, from `origin`.

    Forwarded hop by hop (at most `ttl` more hops) towards a peer connected to
    `to`, so that two nodes that share only a relay can set up a direct
    connection. `payload` is the transport's offer/answer (JSON text); it is
    not signed here: the HELLO of the resulting connection authenticates both
    ends and binds them to that very connection (§4.1), so a relay that alters
    it only breaks the attempt.
    """

    to: bytes
    origin: bytes
    nonce: int
    ttl: int
    payload: str


Frame = (Hello | Close | Ping | Pong | Ops | IHave | Graft | Prune | Records | SyncOpen
         | SyncSame | SyncBuckets | SyncHeads | Want | Signal)


# -- field checks -----------------------------------------------------------------------

Check = Callable[[Any], bool]


def _uint(hi: int = 2**53 - 1) -> Check:
    return lambda v: type(v) is int and 0 <= v <= hi


def _bin(n: int | None = None, most: int = MAX_FRAME_BYTES) -> Check:
    return lambda v: type(v) is bytes and (len(v) == n if n is not None else len(v) <= most)


def _text(most: int) -> Check:
    return lambda v: type(v) is str and len(v) <= most


def _list(item: Check, most: int = MAX_ITEMS) -> Check:
    return lambda v: type(v) is tuple and len(v) <= most and all(map(item, v))


def _row(*items: Check) -> Check:
    # Rows of 2 to 4 fields are checked field by field without a loop: a busy frame
    # (IHAVE, OPS, RECORDS) has hundreds of them, and every frame is checked.
    n = len(items)
    if n == 2:
        a, b = items
        return lambda v: type(v) is tuple and len(v) == 2 and a(v[0]) and b(v[1])
    if n == 3:
        a, b, c = items
        return lambda v: type(v) is tuple and len(v) == 3 and a(v[0]) and b(v[1]) and c(v[2])
    if n == 4:
        a, b, c, d = items
        return lambda v: (type(v) is tuple and len(v) == 4 and a(v[0]) and b(v[1])
                          and c(v[2]) and d(v[3]))
    return lambda v: type(v) is tuple and len(v) == n and all(
        c(x) for c, x in zip(items, v, strict=True))


_U53 = 2**53 - 1


def _ref(v: Any) -> bool:
    """(author, seq, op id): `_row(_bin(32), _uint(), _bin(32))` written out, as GRAFT
    and IHAVE carry hundreds of them (tests/test_frames_checks.py holds them equal)."""
    return (type(v) is tuple and len(v) == 3 and type(v[0]) is bytes and len(v[0]) == 32
            and type(v[1]) is int and 0 <= v[1] <= _U53 and type(v[2]) is bytes
            and len(v[2]) == 32)


def _announced(v: Any) -> bool:
    """(author, seq, op id, hops): `_row(_bin(32), _uint(), _bin(32), _uint(MAX_HOPS))`
    written out."""
    return (type(v) is tuple and len(v) == 4 and type(v[0]) is bytes and len(v[0]) == 32
            and type(v[1]) is int and 0 <= v[1] <= _U53 and type(v[2]) is bytes
            and len(v[2]) == 32 and type(v[3]) is int and 0 <= v[3] <= MAX_HOPS)


def _with_hops(most: int) -> Check:
    """`_list(_row(_bin(most=most), _uint(MAX_HOPS)))` in one function: OPS and RECORDS
    carry up to thousands of these rows, and the composed checks cost a call per field."""

    def check(v: Any) -> bool:
        if type(v) is not tuple or len(v) > MAX_ITEMS:
            return False
        for row in v:
            if type(row) is not tuple or len(row) != 2:
                return False
            wire, hops = row
            if (type(wire) is not bytes or len(wire) > most or type(hops) is not int
                    or not 0 <= hops <= MAX_HOPS):
                return False
        return True

    return check


_author: Check = lambda v: type(v) is bytes and len(v) in (8, 32)  # noqa: E731
_bool: Check = lambda v: type(v) is bool  # noqa: E731

# type code -> (class, one check per field); lists decode to tuples
_TABLE: dict[int, tuple[type, tuple[Check, ...]]] = {
    0: (Hello, (_uint(255), _text(64), _bin(32), _bin(64), _text(64))),
    1: (Close, (_text(64), _text(256))),
    2: (Ping, (_uint(),)),
    3: (Pong, (_uint(), _uint())),
    4: (Ops, (_bool, _with_hops(8192))),
    5: (IHave, (_list(_announced),)),
    6: (Graft, (_list(_ref),)),
    7: (Prune, ()),
    8: (Records, (_bool, _with_hops(16384))),
    9: (SyncOpen, (_uint(), _bin(32), _uint(), _bin(8))),
    10: (SyncSame, (_uint(),)),
    11: (SyncBuckets, (_uint(), _uint(16), _bin(most=MAX_FRAME_BYTES))),
    # Bucket indexes: 16 bits of split at most, buckets 0 .. 65535 (sync.md §3.11).
    12: (SyncHeads, (_uint(), _uint(16), _list(_uint(2**16 - 1)),
                     _list(_row(_bin(8), _uint(), _bin(8), _list(_bin(8), 2))),
                     _list(_row(_bin(8), _text(32), _bin(8))), _list(_uint(2**16 - 1)))),
    13: (Want, (_uint(), _list(_row(_author, _uint(), _uint())), _list(_author),
                _list(_row(_author, _text(32))))),
}
_TABLE[14] = (Signal, (_bin(32), _bin(32), _uint(), _uint(8), _text(32 * 1024)))
_CODE: dict[type, int] = {cls: code for code, (cls, _) in _TABLE.items()}


def type_code(cls: type) -> int:
    """The type code a frame of class `cls` starts with (sync.md §3)."""
    return _CODE[cls]


def _getter(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """A frame's fields in wire order, read in one call (encode is on every hot path)."""
    names = [f.name for f in fields(cls)]
    if len(names) > 1:
        get: Callable[[Any], tuple[Any, ...]] = attrgetter(*names)
        return get
    if names:
        one = attrgetter(names[0])
        return lambda frame: (one(frame),)
    return lambda frame: ()


_FIELDS = {cls: _getter(cls) for cls in _CODE}


def encode(frame: Frame) -> bytes:
    """Canonical msgpack of `[type, field...]` (msgpack writes tuples as arrays)."""
    cls = type(frame)
    return codec.pack((_CODE[cls], *_FIELDS[cls](frame)))


def decode(data: bytes) -> Frame:
    """One frame from bytes, or `Rejection`. Arrays decode to tuples."""
    raw = codec.unpack(data, MAX_FRAME_BYTES, lists=False)
    if type(raw) is not tuple or not raw or type(raw[0]) is not int:
        raise Rejection(Reason.MALFORMED, "a frame is [type, field...]")
    entry = _TABLE.get(raw[0])
    if entry is None:
        raise Rejection(Reason.MALFORMED, f"unknown frame type {raw[0]}")
    cls, checks = entry
    fields_ = raw[1:]
    if len(fields_) != len(checks):
        raise Rejection(Reason.MALFORMED, f"{cls.__name__} has {len(checks)} fields")
    for i, (check, value) in enumerate(zip(checks, fields_, strict=True)):
        if not check(value):
            raise Rejection(Reason.MALFORMED, f"{cls.__name__} field {i}")
    frame: Frame = cls(*fields_)
    return frame
