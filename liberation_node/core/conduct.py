"""How the mesh holds a peer to account (protocols/sync.md §4.7): which wrongs lower
which scores, and who is banned. The scores themselves are core/scoring.py; this
module applies them to the mesh's peers.

Pure: time comes in as `now`; what to tell the driver goes into the event queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from .events import Banned, Event
from .peer import Peer
from .scoring import Penalty, Scores, address_key, id_key
from .serving import Requested
from .session import CloseReason, State

# Our closes that say something bad about the peer (sync.md §4.3, §4.7).
CLOSE_PENALTIES: dict[str, Penalty] = {CloseReason.PROTOCOL_ERROR: Penalty.PROTOCOL_ERROR,
                                       CloseReason.BAD_BINDING: Penalty.BAD_BINDING,
                                       CloseReason.RATE_LIMITED: Penalty.RATE_LIMITED,
                                       CloseReason.MISBEHAVING: Penalty.MISBEHAVING}


class Conduct:
    def __init__(self, scores: Scores, events: deque[Event],
                 peers: Callable[[], Iterable[Peer]], count: Callable[[str], None]) -> None:
        self.scores = scores
        self._events = events
        self._peers = peers
        self._count = count  # a refusal, by reason, in the mesh's totals

    def penalize(self, peer: Peer, penalty: Penalty, now: int) -> None:
        """Lower the score of the peer's node id, once its HELLO proved it (not for a HELLO
        that failed to bind: the id is unproven), and of its address: in full while the
        id is unknown, at half weight after (several nodes may share an address: a NAT,
        one host), so that an address is banned for what comes from it in numbers.
        Close what is banned now."""
        proven = peer.session.peer is not None and penalty is not Penalty.BAD_BINDING
        keys: list[tuple[str, float]] = []
        if proven:
            assert peer.session.peer is not None
            keys.append((id_key(peer.session.peer), 1.0))
        if peer.address is not None:
            keys.append((address_key(peer.address), 0.5 if proven else 1.0))
        for i, (key, weight) in enumerate(keys):
            ban = self.scores.penalize(key, penalty, now, times=weight, count=i == 0)
            if ban is None:
                continue
            self._events.append(Banned(ban.key, ban.until, ban.reason, ban.count,
                                       peer.session.peer))
            for other in list(self._peers()):
                if self.banned(other, now, opened=other.session.state is State.OPEN):
                    other.session.close(CloseReason.BANNED, f"{penalty.value}: banned for "
                                        f"{(ban.until - now) // 1000} s")

    def banned(self, peer: Peer, now: int, opened: bool = False) -> bool:
        """Banned by its node id; or by its address, unless its session is open already
        (a peer that proved its id keeps its session while only its address is banned)."""
        if peer.session.peer is not None and self.scores.banned(id_key(peer.session.peer), now):
            return True
        return not opened and peer.address is not None and self.scores.banned(
            address_key(peer.address), now)

    def closed(self, peer: Peer, reason: str, by_peer: bool, now: int) -> None:
        """The session closed: what our close says about the peer (a frame out of place
        weighs less than one that does not decode: a transport could cause it)."""
        penalty = CLOSE_PENALTIES.get(reason)
        if penalty is Penalty.PROTOCOL_ERROR and peer.session.out_of_order:
            penalty = Penalty.OUT_OF_ORDER
        if penalty is not None and not by_peer:
            self.penalize(peer, penalty, now)

    def requested(self, peer: Peer, done: Requested, now: int) -> None:
        """What queueing a request said about its sender (sync.md §4.8)."""
        if done.repeated:
            self.penalize(peer, Penalty.REPEATED_REQUEST, now)
        if done.dropped:
            self._count("over_budget")
            self.penalize(peer, Penalty.OVER_BUDGET, now)
