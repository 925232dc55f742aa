"""What one input did to the replica: its `Outcome`, and an `Ingested` result that says
what a store writes and removes and what the mesh tells peers (protocols/ops.md §7:
rejections; §9: forks; §12.5: contents; sync.md §9.2: inputs deferred by local policy).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .contents import Change
from .errors import Rejection
from .ops import Dep, Op
from .records import Record


class Outcome(enum.StrEnum):
    APPLIED = "applied"  # held now (and maybe released waiters)
    DUPLICATE = "duplicate"  # already held or already waiting
    PENDING = "pending"  # valid so far, waiting for its causal past
    FORK = "fork"  # held as proof that its author equivocated
    STALE = "stale"  # a record older than the one held
    REJECTED = "rejected"  # refused; `rejection` says why
    DEFERRED = "deferred"  # not taken in for now by local policy (a quota, the disk): no
    # verdict, not held or remembered; offered again later (sync.md §9.2)


@dataclass(slots=True)
class Ingested:
    """What one input did. `applied`/`excluded` tell a store what to write/remove."""

    outcome: Outcome
    id: bytes | None = None
    rejection: Rejection | None = None
    missing: Dep | None = None
    applied: list[Op] = field(default_factory=list)
    excluded: list[Op] = field(default_factory=list)
    forked: list[bytes] = field(default_factory=list)  # authors newly flagged
    rejected_waiters: list[tuple[Op, Rejection]] = field(default_factory=list)
    record: Record | None = None  # a record now held
    replaced: Record | None = None  # the record it replaced
    deferred: str = ""  # why the input was deferred (outcome DEFERRED)
    # Post contents taken and dropped, in order (ops.md §12.5): a store writes them
    # after `applied` and `excluded`.
    contents: list[Change] = field(default_factory=list)
    content_rejection: Rejection | None = None  # a content that came with the op, refused
