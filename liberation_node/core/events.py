"""What the mesh tells the node that drives it (protocols/sync.md §8).

The daemon and the simulator both drain these from `Mesh.next_event()`; they
are the only way the pure core reports anything, so they are also what the
status page, the logs and the metrics see.
"""

from __future__ import annotations

from dataclasses import dataclass

from .contents import Change
from .ops import Op
from .records import Record

ConnId = int  # chosen by the driver: one per transport connection


@dataclass(frozen=True, slots=True)
class PeerUp:
    """HELLO checked both ways: `peer` (its node id) is on connection `conn`."""

    conn: ConnId
    peer: bytes


@dataclass(frozen=True, slots=True)
class PeerDown:
    """The session on `conn` ended; `reason` is a close reason of sync.md §4.3."""

    conn: ConnId
    peer: bytes | None
    reason: str
    detail: str
    by_peer: bool  # the peer closed (or vanished) rather than we


@dataclass(frozen=True, slots=True)
class Changed:
    """The replica changed: write these to the store (one transaction), in this order.

    `applied` are new ops in a causal order; `excluded` are ops a fork voided;
    `records` are records now held, `dropped_records` ones no longer held;
    `contents` are post contents taken `(author, seq, op id, content)` or dropped
    (content None), in order, written after the ops (protocols/ops.md §12.5).
    """

    applied: tuple[Op, ...]
    excluded: tuple[Op, ...]
    records: tuple[Record, ...]
    dropped_records: tuple[Record, ...]
    source: bytes | None  # the peer that sent them, None for our own writes
    # Numbered in the order emitted: once every batch up to ticket t is committed,
    # the driver calls `Mesh.stored(t)` (own writes are held until then, sync.md §10).
    ticket: int = 0
    contents: tuple[Change, ...] = ()


@dataclass(frozen=True, slots=True)
class Misbehaved:
    """A peer sent something invalid: lower its score (the session may stay open)."""

    conn: ConnId
    peer: bytes | None
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class SyncFinished:
    """One anti-entropy round we started on `conn` ended."""

    conn: ConnId
    round: int
    in_sync: bool  # digests were equal at the first step
    round_trips: int
    ops_received: int


@dataclass(frozen=True, slots=True)
class ForkFound:
    """`author` signed two ops at `seq` (protocols/ops.md §9): its feed is closed from
    there. When `author` is this node, its own identity has equivocated."""

    author: bytes
    seq: int
    source: bytes | None  # the peer whose op revealed it


@dataclass(frozen=True, slots=True)
class WritesOpened:
    """Local writes are open now (sync.md §10.2): the own feed was checked with
    `checked_with` peers (0: none could be checked within the grace period), and
    `recovered` own ops that the store lacked came back from them."""

    checked_with: int
    recovered: int


@dataclass(frozen=True, slots=True)
class SignalReceived:
    """A relayed offer or answer addressed to us (sync.md §7); `conn` is where it came in."""

    conn: ConnId
    origin: bytes
    nonce: int
    payload: str


@dataclass(frozen=True, slots=True)
class Banned:
    """A peer's score fell to the ban threshold (sync.md §4.7): `key` (a node id or an
    address, core/scoring.py) is refused until `until` (ms); `reason` is the penalty that
    crossed the threshold, `count` how many times the key was banned so far. `peer` is
    the node id of the session that earned it, when known."""

    key: str
    until: int
    reason: str
    count: int
    peer: bytes | None


Event = (PeerUp | PeerDown | Changed | Misbehaved | SyncFinished | SignalReceived
         | ForkFound | WritesOpened | Banned)

