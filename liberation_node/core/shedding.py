"""Which peers the connection manager keeps when it has too many: the protected slots
(eclipse resistance, protocols/transport.md §7.8), newcomers not yet judged (§7.6), and
the worst of the rest named for dropping (§7.5).

A mixin of `Peering` (peering.py), which owns every attribute named below.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .candidates import VOUCHED
from .scoring import id_key

if TYPE_CHECKING:
    from .candidates import Candidate
    from .peering import PeeringConfig
    from .scoring import Scores


class Shedding:
    """Surplus peers, worst first, and the slots never shed."""

    # Owned and set by Peering (peering.py).
    config: PeeringConfig
    scores: Scores
    candidates: dict[str, Candidate]

    def surplus(self, peers: dict[bytes, int | None], now: int = 0) -> list[bytes]:
        """Above `high`: the peers to drop, worst first: not protected, then not a
        newcomer (§7.6: the node took it to replace its worst peer, not to shed it before
        it could answer a PING), then the lowest score, then the highest RTT, an unknown
        RTT counting as the highest (a peer that never answered a PING is not the best
        one), then the smaller id."""
        extra = len(peers) - self.config.high
        if extra <= 0:
            return []
        protected = self.protected(peers, now)

        def worst_first(peer: bytes) -> tuple[bool, bool, float, float, bytes]:
            rtt = peers[peer]
            return (peer in protected, self._newcomer(peer, now),
                    self.scores.score(id_key(peer), now),
                    -(float("inf") if rtt is None else rtt), peer)

        return sorted(peers, key=worst_first)[:extra]

    def _newcomer(self, peer: bytes, now: int) -> bool:
        """A session not yet judged: younger than the grace. (Not "no RTT measured
        yet" as it was: a session that knows no round trip measures one as it opens,
        sync.md §4.4, and a newcomer judged after one round trip was shed at once.)"""
        cand = self.candidates.get(peer.hex())
        return cand is not None and cand.connected \
            and now - cand.since < self.config.newcomer_grace_ms

    def replaceable(self, peers: dict[bytes, int | None], now: int) -> int:
        """How many of `peers` (with their RTTs) a newcomer may replace (§7.6): neither
        protected nor newcomers themselves."""
        protected = self.protected(peers, now)
        return sum(1 for peer in peers
                   if peer not in protected and not self._newcomer(peer, now))

    def protected(self, peers: Iterable[bytes], now: int) -> set[bytes]:
        """The peers in the protected slots (transport.md §7.8): up to `protected` of them,
        those the operator, bootstrap lists or mDNS named first, then links open for at
        least `long_lived_ms`, the oldest link first in each group."""
        vouched: list[tuple[int, bytes]] = []
        lived: list[tuple[int, bytes]] = []
        for peer in peers:
            cand = self.candidates.get(peer.hex())
            if cand is None or not cand.connected:
                continue
            if cand.source in VOUCHED:
                vouched.append((cand.since, peer))
            elif now - cand.since >= self.config.long_lived_ms:
                lived.append((cand.since, peer))
        ordered = [p for _, p in sorted(vouched)] + [p for _, p in sorted(lived)]
        return set(ordered[:self.config.protected])
