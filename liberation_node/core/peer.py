"""One open connection as the mesh sees it: its session and what the mesh keeps
for it (protocols/sync.md §4-§7).

Pure state, shared by the mesh's parts: anti-entropy (antientropy.py) keeps its
round here, serving (serving.py) what the peer is owed, the relay (relay.py) its
signal budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .events import ConnId
from .serving import Owed
from .session import Session


@dataclass
class Round:
    """An anti-entropy round we started on one connection (sync.md §6)."""

    id: int
    salt: bytes
    started: int
    authors: int  # the author count we sent: what the responder sized buckets for
    stage: int = 1  # 1: sent OPEN, 2: sent HEADS
    ops_received: int = 0
    records_received: int = 0
    left_out: bool = False  # differing buckets our SYNC_HEADS could not cover
    checks_own: bool = False  # asked for our own feed first (sync.md §10.2)
    deferred: int = 0  # Mesh.deferred when the round started


@dataclass
class Peer:
    conn: ConnId
    session: Session
    initiator: bool
    round: Round | None = None
    next_sync: int = 0
    strikes: int = 0
    owed: Owed = field(default_factory=Owed)
    signal_window: tuple[int, int] = (0, 0)  # (second, signals received in it)
