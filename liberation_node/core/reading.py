"""What this node can show of a post: its text, or why not (protocols/ops.md §12, §13).

A post's text is its content (format 2) or inline (format 1). This node shows it
unless the content is not held (dropped, or purged by a retraction), the post is
a direct message for other nodes (sealed to them; legacy format-1 direct posts
are plaintext on the wire, but this node still shows them only to their author
and recipient), or the content does not hold a well-formed message.

Opening a direct message costs an X25519 exchange (about 40 µs), so results are
kept per op id in a bounded table; only the messages this node can read keep
their text there, and only while their content is held.
"""

from __future__ import annotations

from dataclasses import dataclass

from .bodies import Post, PostHeader
from .contents import Contents
from .identity import Identity
from .ops import Op
from .sealing import Opened, SealError, open_sealed

# Why a post's text is not shown (the API's `unreadable`, docs/api.md).
DROPPED = "dropped"  # the content is not held here (retention, or it never came)
RETRACTED = "retracted"  # the author retracted the post: its content is gone for good
NOT_FOR_THIS_NODE = "not_for_this_node"  # a direct message between two other nodes
INVALID = "invalid"  # the content does not hold a well-formed message
MAX_CACHED = 65_536


@dataclass(frozen=True, slots=True)
class Reading:
    text: str | None
    to: bytes | None  # a direct message's recipient, when this node may know it
    encrypted: bool  # the text travels sealed (format-2 direct messages)
    unreadable: str | None  # why `text` is None; None when it is shown


class Reader:
    """Reads posts as the node `identity` (None: a node that reads no direct message)."""

    def __init__(self, identity: Identity | None, network: str) -> None:
        self.identity = identity
        self.network = network
        self._opened: dict[bytes, Opened | str] = {}  # op id -> opened, or why not

    def opens(self, op: Op, content: bytes) -> bool:
        """Can this node read the direct message `op` with `content`? (Retention keeps
        those: contents.py.)"""
        return isinstance(self._open(op, content), Opened)

    def read(self, op: Op, contents: Contents) -> Reading:
        body = op.body
        if isinstance(body, Post):  # format 1: the text is in the header
            if op.id in contents.retracted:
                return Reading(None, body.to, False, RETRACTED)
            me = self.identity.public_key if self.identity else None
            if body.to is not None and me not in (op.author, body.to):
                return Reading(None, body.to, False, NOT_FOR_THIS_NODE)
            return Reading(body.text, body.to, False, None)
        assert isinstance(body, PostHeader)
        sealed = body.channel == "direct"
        content = contents.get(op.id)
        if content is None:
            self._opened.pop(op.id, None)
            return Reading(None, None, sealed, RETRACTED if op.id in contents.retracted
                           else DROPPED)
        if not sealed:
            try:
                return Reading(content.decode("utf-8"), None, False, None)
            except UnicodeDecodeError:  # checked when taken (ops.md §12.4); defensive
                return Reading(None, None, False, INVALID)
        opened = self._open(op, content)
        if isinstance(opened, Opened):
            return Reading(opened.text, opened.to, True, None)
        return Reading(None, None, True, opened)

    def _open(self, op: Op, content: bytes) -> Opened | str:
        known = self._opened.get(op.id)
        if known is not None:
            return known
        result: Opened | str = NOT_FOR_THIS_NODE
        if self.identity is not None:
            try:
                opened = open_sealed(content, self.identity, op.author, self.network)
            except SealError:
                result = INVALID
            else:
                result = opened if opened is not None else NOT_FOR_THIS_NODE
        if len(self._opened) >= MAX_CACHED:
            del self._opened[next(iter(self._opened))]
        self._opened[op.id] = result
        return result
