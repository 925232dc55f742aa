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
    address: str | None = None  # where the connection comes from, as the driver says
    round: Round | None = None
    next_sync: int = 0
    strikes: int = 0
    owed: Owed = field(default_factory=Owed)
    signal_window: tuple[int, int] = (0, 0)  # (second, signals received in it)
    # Anti-entropy requests answered (SYNC_OPEN, SYNC_HEADS): a token bucket (sync.md §4.8)
    sync_tokens: float | None = None
    sync_at: int = 0

    def take_sync(self, now: int, per_s: float, burst: int) -> bool:
        """May the peer have one more round answered now? No peer's rounds come faster
        than one per 0.75 s (sync.md §6.6): a burst above that is not honest."""
        tokens = float(burst) if self.sync_tokens is None else self.sync_tokens
        tokens = min(float(burst), tokens + max(0, now - self.sync_at) * per_s / 1000)
        self.sync_at = now
        if tokens < 1:
            self.sync_tokens = tokens
            return False
        self.sync_tokens = tokens - 1
        return True
