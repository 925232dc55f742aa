"""Feed operations: layout, signing, id, and the checks an op passes alone
(protocols/ops.md §4-§6, §12, §14).

An op is a 10-element msgpack array. Its first nine elements, encoded as a
9-element array and prefixed with `OP_DOMAIN`, are the exact bytes signed; the
whole 10-element encoding is the op's wire form, its *header*, and its
BLAKE2b-256 hash is the op id. Checks that need the author's feed (prev,
timestamps, forks) live in `replica.py`; checks that need balances live in
`ledger.py`.

In op format 2 a post's header signs the size and hash of its content, which
travels after the header as an 11th element (the *carried* form, §12.3) and can
be dropped by any node without touching the header, the feed or the digest.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any, NamedTuple

from . import codec, sealing
from .bodies import (
    Body,
    Post,
    PostHeader,
    content_hash,
    content_mismatch,
    dump_body,
    parse_body,
)
from .errors import Reason, Rejection
from .identity import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, Identity, verify

OP_FORMAT = 2  # what this node writes: posts with detached contents (§12)
LEGACY_FORMAT = 1  # still valid: feeds written before format 2 go on (§12.1)
FORMATS = (LEGACY_FORMAT, OP_FORMAT)
OP_DOMAIN = b"liberation-node/op/v1\x00"
MAX_OP_BYTES = 8192
MAX_DEPS = 32
MAX_NETWORK_BYTES = 64
MAX_SEQ = 2**53 - 1
MAX_TIMESTAMP_MS = 253402300799999  # 9999-12-31T23:59:59.999Z: every calendar can print it
ID_BYTES = 32
# An op or record dated further ahead of the receiver's clock than this is
# refused for now (protocols/ops.md §5.4): otherwise an author could date claims
# into the far future, or pin its records with a version no clock will reach.
# The rule is local and clock-based, so it only ever delays an op: once the
# receiver's clock catches up, the same bytes are accepted.
MAX_CLOCK_SKEW_MS = 15 * 60 * 1000
# No op of a network is dated before its genesis (protocols/ops.md §14): a network
# that does not state one starts at 2025-01-01T00:00:00Z. Without a floor an author
# could back-date a register to 1970 and claim every week since (ops.md §6.2.7).
DEFAULT_GENESIS_MS = 1_735_689_600_000


def op_id(wire: bytes) -> bytes:
    """The op id: BLAKE2b-256 (unkeyed, no personalisation) of the op's wire bytes."""
    return hashlib.blake2b(wire, digest_size=ID_BYTES).digest()


class Dep(NamedTuple):
    """A causal dependency on another author's feed up to `seq`, whose op there is `id`.

    Naming (B, s, id) puts B's whole feed prefix 1..s in this op's causal past
    (the chain of `prev` hashes pins it); see protocols/ops.md §5.2.
    """

    author: bytes
    seq: int
    id: bytes


class Op(NamedTuple):
    """A decoded, signature-checked op. Build with `create_op` or `decode_op`.

    A NamedTuple rather than a frozen dataclass: it is just as immutable and is
    built four times faster, which shows on the ingest path (scripts/bench_ingest.py).
    """

    network: str
    author: bytes
    seq: int
    prev: bytes | None
    deps: tuple[Dep, ...]
    timestamp: int
    kind: str
    body: Body
    signature: bytes
    wire: bytes  # the header: signed, hashed into the id, held for good
    id: bytes
    format: int = OP_FORMAT
    # A format-2 post's content while it travels with the op (decoded or just
    # written); the replica keeps contents apart (contents.py), never in an Op.
    content: bytes | None = None

    @property
    def ref(self) -> Dep:
        return Dep(self.author, self.seq, self.id)

    @property
    def carried(self) -> bytes:
        """The bytes to send: the carried form with the content, else the header."""
        return carry(self.wire, self.content) if self.content is not None else self.wire


def with_content(op: Op, content: bytes | None) -> Op:
    """`op._replace(content=content)`, in a tenth of the time: it runs twice for every
    carried op taken in (the content comes with it, then is held apart)."""
    return Op._make((*op[:-1], content))


def carry(header: bytes, content: bytes) -> bytes:
    """The carried form (§12.3): the header's ten elements and the content as an 11th."""
    return b"\x9b" + header[1:] + codec.pack(content)


def header_of(wire: bytes) -> bytes:
    """The header of an op as it travels (itself, or a carried form's first ten elements);
    `Rejection` for a carried form that does not split."""
    return split_carried(wire)[0] if wire[:1] == b"\x9b" else wire


def split_carried(wire: bytes) -> tuple[bytes, bytes]:
    """(header, content) of a carried form, the header taken from the bytes received
    (no re-encoding, §3.5); `Rejection` when `wire` is no 11-element carried form."""
    header, content, _ = open_carried(wire)
    return header, content


def open_carried(wire: bytes) -> tuple[bytes, bytes, list[Any]]:
    """`split_carried`, and the header's ten elements as decoded: the one canonical
    decode of the whole carried form also stands for its header's (each element of a
    canonical array is encoded canonically), so `decode_fields` takes them as they are
    instead of decoding the header again."""
    raw = codec.unpack(wire, MAX_OP_BYTES)
    if type(raw) is not list or len(raw) != 11:
        raise Rejection(Reason.MALFORMED, "a carried op is an 11-element array")
    content = raw.pop()
    if type(content) is not bytes:
        raise Rejection(Reason.MALFORMED, "a carried op's 11th element is its content, bin")
    n = len(content)
    tail = n + (2 if n <= 0xFF else 3 if n <= 0xFFFF else 5)  # its bin8/16/32 encoding
    return b"\x9a" + bytes(wire[1 : len(wire) - tail]), content, raw


def valid_network(name: Any) -> bool:
    """Network names are 1-64 bytes of lowercase ASCII letters, digits, '-', '.' and '_'."""
    if type(name) is not str or not 1 <= len(name) <= MAX_NETWORK_BYTES:
        return False
    # Every character is allowed exactly when stripping the allowed ones leaves nothing
    # (one C call: this runs for every op and record taken in).
    return not name.strip("abcdefghijklmnopqrstuvwxyz0123456789-._")


def _signed_fields(
    network: str, author: bytes, seq: int, prev: bytes | None, deps: tuple[Dep, ...],
    timestamp: int, kind: str, body_map: dict[str, Any], format: int = OP_FORMAT,
) -> list[Any]:
    return [format, network, author, seq, prev,
            [[d.author, d.seq, d.id] for d in deps], timestamp, kind, body_map]


def create_op(
    identity: Identity, *, network: str, seq: int, prev: bytes | None, timestamp: int,
    body: Body, deps: tuple[Dep, ...] = (), genesis: int = DEFAULT_GENESIS_MS,
    format: int = OP_FORMAT, seal: bytes | None = None,
) -> Op:
    """Sign a new op. A `Post` in format 2 becomes a `PostHeader` and its content (the
    returned op's `content`); a direct one is sealed with `seal`, fresh random bytes
    (sealing.SEAL_BYTES) the caller draws. Raises ValueError for a post that cannot be
    written (`Rejection` for an op that `decode_op` would refuse)."""
    content = None
    if format == OP_FORMAT and isinstance(body, Post):
        body, content = post_content(body, identity, network, seal)
    kind, body_map = dump_body(body)
    deps = tuple(sorted(deps, key=lambda d: d.author))
    fields = _signed_fields(network, identity.public_key, seq, prev, deps, timestamp, kind,
                            codec.sorted_map(body_map), format)
    signature = identity.sign(OP_DOMAIN + codec.pack(fields))
    wire = codec.pack([*fields, signature])
    # One code path decides validity, for us and for peers.
    op = decode_op(wire, network, genesis=genesis)
    if content is not None:
        return op._replace(content=content)
    return op


def post_content(post: Post, author: Identity, network: str, seal: bytes | None
                 ) -> tuple[PostHeader, bytes]:
    """A post's format-2 header body and its content: the UTF-8 text, or for the direct
    channel the text sealed to its recipient and its author (§13)."""
    if post.channel == "direct":
        if post.to is None or post.to == author.public_key:
            raise ValueError("a direct message names another node")
        if seal is None:
            raise ValueError("a direct message is sealed with fresh random bytes")
        content = sealing.seal(post.text, post.to, author, network, seal)
    else:
        content = post.text.encode("utf-8")
    return PostHeader(post.channel, post.priority, len(content), content_hash(content)), content


def content_problem(op: Op, content: bytes) -> str | None:
    """Why `content` cannot go with `op`, or None (§12.4)."""
    if op.format != OP_FORMAT or not isinstance(op.body, PostHeader):
        return "only a format-2 post has a content"
    return content_mismatch(op.body, content)


def decode_carried(wire: bytes, network: str, *, known_id: bytes | None = None,
                   now: int | None = None, genesis: int = DEFAULT_GENESIS_MS
                   ) -> tuple[Op, Rejection | None]:
    """An op as it travels, header or carried form: the op (with its content when that
    checks) and the content's refusal, if any. The header's verdict never depends on
    what comes with it (§12.4): a bad content is refused alone. Raises `Rejection`
    for the header, as `decode_op`."""
    if wire[:1] != b"\x9b":
        return decode_op(wire, network, known_id=known_id, now=now, genesis=genesis), None
    header, content, fields = open_carried(wire)
    op = decode_fields(fields, header, network, known_id=known_id, now=now, genesis=genesis)
    problem = content_problem(op, content)
    if problem is not None:
        return op, Rejection(Reason.BAD_CONTENT, problem)
    return with_content(op, content), None


def decode_op(wire: bytes, network: str, *, check_signature: bool = True,
              known_id: bytes | None = None, now: int | None = None,
              genesis: int = DEFAULT_GENESIS_MS,
              verdict: tuple[bytes, bool] | None = None) -> Op:
    """Decode and check an op on its own: encoding, shape, body, network, signature.

    Raises `Rejection` with a precise reason; never any other exception.
    `check_signature=False` is only for ops read back from our own store, which
    were verified before they were written (and whose id the store re-checks).
    `known_id` saves hashing twice when the caller already computed `op_id(wire)`.
    With `now` (the receiver's clock, ms), an op dated more than
    `MAX_CLOCK_SKEW_MS` ahead is refused as `from_the_future`. `genesis` is the
    network's (ops.md §14): an op dated before it is refused as `before_genesis`.
    `verdict` is a signature check already done on exactly these bytes (core/verified.py:
    the key checked against, and whether it passed); it stands in for verifying only
    when that key is this op's author.
    """
    return decode_fields(codec.unpack(wire, MAX_OP_BYTES), wire, network,
                         check_signature=check_signature, known_id=known_id, now=now,
                         genesis=genesis, verdict=verdict)


def decode_fields(raw: Any, wire: bytes, network: str, *, check_signature: bool = True,
                  known_id: bytes | None = None, now: int | None = None,
                  genesis: int = DEFAULT_GENESIS_MS,
                  verdict: tuple[bytes, bool] | None = None) -> Op:
    """`decode_op` for a header already decoded canonically into `raw` (`open_carried`):
    the same checks, in the same order, with the same reasons."""
    if type(raw) is not list or len(raw) != 10:
        raise Rejection(Reason.MALFORMED, "an op is a 10-element array")
    fmt, net, author, seq, prev, deps_raw, ts, kind, body_raw, sig = raw
    if type(fmt) is not int or fmt not in FORMATS:
        raise Rejection(Reason.UNSUPPORTED_FORMAT, f"op format {fmt!r}"[:80])
    if not valid_network(net):
        raise Rejection(Reason.MALFORMED, "bad network name")
    if type(author) is not bytes or len(author) != PUBLIC_KEY_BYTES:
        raise Rejection(Reason.MALFORMED, "author is 32 bytes")
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:
        raise Rejection(Reason.MALFORMED, "seq is an integer from 1")
    if seq == 1:
        if prev is not None:
            raise Rejection(Reason.MALFORMED, "the first op of a feed has no prev")
    elif type(prev) is not bytes or len(prev) != ID_BYTES:
        raise Rejection(Reason.MALFORMED, "prev is a 32-byte op id")
    if type(ts) is not int or not 0 <= ts <= MAX_TIMESTAMP_MS:
        raise Rejection(Reason.MALFORMED, "timestamp is milliseconds since 1970")
    if type(kind) is not str:
        raise Rejection(Reason.MALFORMED, "kind is text")
    if type(sig) is not bytes or len(sig) != SIGNATURE_BYTES:
        raise Rejection(Reason.MALFORMED, "signature is 64 bytes")
    deps = _parse_deps(deps_raw, author)
    if type(body_raw) is dict and not codec.check_map_keys_sorted(body_raw):
        raise Rejection(Reason.NON_CANONICAL, "body keys are not in canonical order")
    body = parse_body(kind, body_raw, fmt)
    if getattr(body, "to", None) == author:
        raise Rejection(Reason.BAD_BODY, "an author cannot pay or message itself")
    # The network check comes after the shape checks, so a malformed op is
    # reported as malformed, and before the signature, which is the costly part.
    if net != network:
        raise Rejection(Reason.WRONG_NETWORK, f"op is for network {net!r}"[:80])
    # Before the signature too: a fact about the network's definition, cheap to check
    # (ops.md §7.6).
    if ts < genesis:
        raise Rejection(Reason.BEFORE_GENESIS, f"dated {genesis - ts} ms before the "
                        "network's genesis")
    # Signed bytes: the same encoding minus the signature element. A 10-element
    # array header (0x9a) becomes 0x99 and the trailing bin8(64) (66 bytes) goes.
    signed = OP_DOMAIN + b"\x99" + bytes(wire[1 : len(wire) - (2 + SIGNATURE_BYTES)])
    if check_signature and not (verdict[1] if verdict is not None and verdict[0] == author
                                else verify(author, signed, sig)):
        raise Rejection(Reason.BAD_SIGNATURE)
    if now is not None and ts > now + MAX_CLOCK_SKEW_MS:
        raise Rejection(Reason.FROM_THE_FUTURE, f"dated {ts - now} ms ahead of our clock")
    wire = bytes(wire)
    return Op(net, author, seq, prev, deps, ts, kind, body, sig, wire, known_id or op_id(wire),
              fmt)


def _parse_deps(raw: Any, author: bytes) -> tuple[Dep, ...]:
    if raw == [] and type(raw) is list:  # most ops name no dependency
        return ()
    if type(raw) is not list or len(raw) > MAX_DEPS:
        raise Rejection(Reason.MALFORMED, f"deps is an array of at most {MAX_DEPS}")
    deps: list[Dep] = []
    for item in raw:
        if type(item) is not list or len(item) != 3:
            raise Rejection(Reason.MALFORMED, "a dep is [author, seq, id]")
        a, s, i = item
        if (type(a) is not bytes or len(a) != PUBLIC_KEY_BYTES or type(s) is not int
                or not 1 <= s <= MAX_SEQ or type(i) is not bytes or len(i) != ID_BYTES):
            raise Rejection(Reason.MALFORMED, "a dep is [author(32), seq, id(32)]")
        if a == author:
            raise Rejection(Reason.BAD_DEPS, "own ops are reached through prev, not deps")
        deps.append(Dep(a, s, i))
    keys = [d.author for d in deps]
    if any(x >= y for x, y in itertools.pairwise(keys)):
        raise Rejection(Reason.BAD_DEPS, "deps name each author at most once, sorted by author")
    return tuple(deps)
