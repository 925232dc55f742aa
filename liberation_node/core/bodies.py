"""Op kinds and their bodies (protocols/ops.md §6), as a table in the style of aioice's codecs.

Each kind names its body fields as ``(key, check)``; a body is a msgpack map with
exactly those keys (optional ones may be absent), in canonical order. Parsing a
body returns a frozen dataclass, so the ledger works on typed values, never on
raw maps.

Op format 2 (ops.md §12) changes one body: a ``message.post`` names its text by
size and hash (`PostHeader`), and the text itself, its *content*, travels and is
stored apart, so that a node can drop it and keep the signed header. `Post` is
what a writer asks for, and the body of a format-1 post, whose text is inline.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import Reason, Rejection
from .sealing import DIRECT_SIZES

MAX_NAME_BYTES = 64
MAX_MEMO_BYTES = 256
MAX_TEXT_BYTES = 4096
MAX_AMOUNT_CENTS = 2**53 - 1  # fits every language's exact integer range
CHANNELS = ("billboard", "social", "media", "direct")
MIN_PRIORITY, MAX_PRIORITY = 1, 10


@dataclass(frozen=True, slots=True)
class Register:
    """``human.register``: the author joins the distribution (seed defaults apply)."""

    name: str


@dataclass(frozen=True, slots=True)
class Claim:
    """``ledger.claim``: the weekly flow for ISO week `week` (``yyyyww``, e.g. 202648)."""

    week: int


@dataclass(frozen=True, slots=True)
class Transfer:
    """``ledger.transfer``: pay `amount` cents to `to`."""

    to: bytes
    amount: int
    memo: str


@dataclass(frozen=True, slots=True)
class Post:
    """``message.post``: a message on a channel; `to` is set exactly for ``direct``."""

    channel: str
    text: str
    priority: int
    to: bytes | None


@dataclass(frozen=True, slots=True)
class PostHeader:
    """``message.post`` in op format 2: the content (the text, or for ``direct`` the
    sealed text, ops.md §13) is `size` bytes whose BLAKE2b-256 is `hash`."""

    channel: str
    priority: int
    size: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class Retract:
    """``message.retract``: the author withdraws its own post `post` (an op id)."""

    post: bytes


Body = Register | Claim | Transfer | Post | PostHeader | Retract
CONTENT_HASH_BYTES = 32


def is_post(body: Body) -> bool:
    """A ``message.post`` of either format."""
    return isinstance(body, Post | PostHeader)


def content_hash(content: bytes) -> bytes:
    """BLAKE2b-256 of a post's content, as its format-2 header names it (ops.md §12.2)."""
    return hashlib.blake2b(content, digest_size=CONTENT_HASH_BYTES).digest()


def content_mismatch(header: PostHeader, content: bytes) -> str | None:
    """Why `content` is not the content `header` signs, or None when it is (ops.md §12.4)."""
    if len(content) != header.size:
        return f"content of {len(content)} bytes, the header says {header.size}"
    if content_hash(content) != header.hash:
        return "the content does not hash to the header's hash"
    if header.channel != "direct":
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return "a post's text is UTF-8"
    return None


def _text(limit: int, min_bytes: int = 0) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if type(v) is not str:
            return False
        n = len(v.encode("utf-8"))
        return min_bytes <= n <= limit

    return check


def _uint(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: type(v) is int and lo <= v <= hi


def _bin(n: int) -> Callable[[Any], bool]:
    return lambda v: type(v) is bytes and len(v) == n


def iso_weeks_in_year(year: int) -> int:
    """52 or 53: an ISO year has week 53 exactly when its 28 December falls in it."""
    return datetime.date(year, 12, 28).isocalendar()[1]


def _week(v: Any) -> bool:
    if type(v) is not int or not 1970 <= v // 100 <= 9999:
        return False
    return 1 <= v % 100 <= iso_weeks_in_year(v // 100)


@dataclass(frozen=True)
class KindSpec:
    name: str
    required: tuple[tuple[str, Callable[[Any], bool]], ...]
    optional: tuple[tuple[str, Callable[[Any], bool]], ...]
    build: Callable[[dict[str, Any]], Body]
    dump: Callable[[Any], dict[str, Any]]


def _dump_post(b: Post) -> dict[str, Any]:
    out: dict[str, Any] = {"channel": b.channel, "priority": b.priority, "text": b.text}
    if b.to is not None:
        out["to"] = b.to
    return out


KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec(
            "human.register",
            (("name", _text(MAX_NAME_BYTES)),),
            (),
            lambda m: Register(m["name"]),
            lambda b: {"name": b.name},
        ),
        KindSpec(
            "ledger.claim",
            (("week", _week),),
            (),
            lambda m: Claim(m["week"]),
            lambda b: {"week": b.week},
        ),
        KindSpec(
            "ledger.transfer",
            (("amount", _uint(1, MAX_AMOUNT_CENTS)), ("memo", _text(MAX_MEMO_BYTES)),
             ("to", _bin(32))),
            (),
            lambda m: Transfer(m["to"], m["amount"], m["memo"]),
            lambda b: {"amount": b.amount, "memo": b.memo, "to": b.to},
        ),
        KindSpec(
            "message.post",
            (("channel", lambda v: v in CHANNELS and type(v) is str),
             ("priority", _uint(MIN_PRIORITY, MAX_PRIORITY)),
             ("text", _text(MAX_TEXT_BYTES, min_bytes=1))),
            (("to", _bin(32)),),
            lambda m: Post(m["channel"], m["text"], m["priority"], m.get("to")),
            _dump_post,
        ),
        KindSpec(
            "message.retract",
            (("post", _bin(32)),),
            (),
            lambda m: Retract(m["post"]),
            lambda b: {"post": b.post},
        ),
    )
}

# Format 2 (ops.md §12.2): every kind as in format 1 but message.post.
KINDS_V2: dict[str, KindSpec] = {
    **KINDS,
    "message.post": KindSpec(
        "message.post",
        (("channel", lambda v: v in CHANNELS and type(v) is str), ("hash", _bin(32)),
         ("priority", _uint(MIN_PRIORITY, MAX_PRIORITY)),
         ("size", _uint(1, max(DIRECT_SIZES)))),
        (),
        lambda m: PostHeader(m["channel"], m["priority"], m["size"], m["hash"]),
        lambda b: {"channel": b.channel, "hash": b.hash, "priority": b.priority,
                   "size": b.size},
    ),
}

KIND_OF: dict[type, str] = {
    Register: "human.register", Claim: "ledger.claim", Transfer: "ledger.transfer",
    Post: "message.post", PostHeader: "message.post", Retract: "message.retract",
}


def parse_body(kind: str, raw: Any, format: int = 1) -> Body:
    """Check a decoded body map against its kind's table in op format `format`; raise
    `Rejection` if it does not fit."""
    spec = (KINDS_V2 if format == 2 else KINDS).get(kind)
    if spec is None:
        raise Rejection(Reason.UNKNOWN_KIND, repr(kind)[:80])
    if type(raw) is not dict:
        raise Rejection(Reason.BAD_BODY, "body is not a map")
    seen = 0
    for key, check in spec.required:
        if key not in raw:
            raise Rejection(Reason.BAD_BODY, f"missing field {key!r}")
        if not check(raw[key]):
            raise Rejection(Reason.BAD_BODY, f"bad field {key!r}")
        seen += 1
    for key, check in spec.optional:
        if key in raw:
            if not check(raw[key]):
                raise Rejection(Reason.BAD_BODY, f"bad field {key!r}")
            seen += 1
    if seen != len(raw):
        extra = sorted(set(raw) - {k for k, _ in spec.required + spec.optional})
        raise Rejection(Reason.BAD_BODY, f"unexpected field {extra[0]!r}"[:80])
    body = spec.build(raw)
    if isinstance(body, Post) and (body.channel == "direct") != (body.to is not None):
        raise Rejection(Reason.BAD_BODY, "'to' is required for direct posts and only for them")
    if isinstance(body, PostHeader) and not (
            body.size in DIRECT_SIZES if body.channel == "direct" else body.size <= MAX_TEXT_BYTES):
        raise Rejection(Reason.BAD_BODY, "size: 1-4096 bytes of text, or for a direct "
                        "message one of the sealed sizes (ops.md §13.4)")
    return body


def dump_body(body: Body) -> tuple[str, dict[str, Any]]:
    """The kind and canonical body map of a typed body."""
    kind = KIND_OF[type(body)]
    spec = KINDS_V2[kind] if isinstance(body, PostHeader) else KINDS[kind]
    return kind, spec.dump(body)
