"""What the parts of `Mesh` share (mesh.py): the state `Mesh.__init__` sets, and the
methods one part calls on another, declared once for the type checker.

Each part (peertable.py, intake.py, recordflow.py, meshtimers.py, outbox.py) is a mixin
of `Mesh` over this base, so a part's calls into another are checked against the real
method's signature (an override must match), and a renamed attribute shows in one place.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .events import ConnId, Event
from .peer import Peer

if TYPE_CHECKING:
    from .antientropy import AntiEntropy, Entropy, Settling
    from .bodyfetch import BodyFetch
    from .catchup import CatchUp
    from .conduct import Conduct
    from .frames import Records
    from .gossip import Gossip
    from .identity import Identity
    from .ingested import Ingested
    from .mesh import MeshConfig
    from .ownfeed import OwnFeed
    from .quotas import Quotas
    from .records import Record
    from .relay import Relay
    from .replica import Replica
    from .scoring import Scores


class MeshState:
    """Owned and set by `Mesh.__init__`."""

    identity: Identity
    network: str
    config: MeshConfig
    replica: Replica
    own: OwnFeed
    settling: Settling
    _entropy: Entropy
    _peers: dict[ConnId, Peer]
    _events: deque[Event]
    gossip: Gossip
    catchup: CatchUp
    sync: AntiEntropy
    bodies: BodyFetch
    relay: Relay
    scores: Scores
    conduct: Conduct
    quotas: Quotas
    rejected: dict[str, int]
    paused: bool
    _now: int
    _open: dict[ConnId, None]
    _dirty: dict[ConnId, None]
    _touched: set[ConnId]
    _timers: list[tuple[int, ConnId]]
    _due: dict[ConnId, int]
    _rtt: tuple[int, int]
    _next_records: int
    _next_want_sweep: int

    if TYPE_CHECKING:  # what the parts call on one another
        def _mark(self, conn: ConnId) -> None: ...
        def _opened(self, peer: Peer, now: int) -> None: ...
        def _reshape(self) -> None: ...
        def _prune(self, conn: ConnId) -> None: ...
        def _graft_timeout(self, now: int) -> int: ...
        def _on_records(self, peer: Peer, frame: Records, now: int) -> None: ...
        def _changed(self, results: Iterable[Ingested], records: tuple[Record, ...],
                     dropped: tuple[Record, ...], source: Peer | None, now: int) -> None: ...
        def _open_peers(self) -> list[Peer]: ...
        def _count_rejection(self, reason: str) -> None: ...
        def _strike(self, peer: Peer, reason: str, detail: str, now: int) -> None: ...
        def _writes_opened(self) -> None: ...
        def publish_presence(self, now: int) -> None: ...
        def _drop(self, peer: Peer, now: int) -> None: ...
        def _settle_ms(self, now: int) -> int: ...
