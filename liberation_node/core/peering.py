"""The connection manager's decisions: whom to dial, when, and whom to drop
(DESIGN §4, "the seed's self-healing"; protocols/transport.md §7).

Pure: the node reports what happened (`connected`, `disconnected`,
`dial_failed`) with the time, and asks `due(now)` what to dial next; `rand()`
is injected for jitter. Keeps the number of peers between `low` and `high`:
below `low` it dials known candidates, never one already connected or being
dialed, backing off exponentially (with jitter) on each failure, so a
partitioned node re-dials by itself and a dead address costs less and less;
above `high` it names the worst peers to drop (most misbehaviour, then highest
RTT). Candidates come from bootstrap lists, the `node.info` records of the
replica (peer exchange), mDNS, or the operator.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass


class Source(enum.IntEnum):
    """Where we heard of a candidate; lower is preferred when choosing whom to dial."""

    OPERATOR = 0
    BOOTSTRAP = 1
    MDNS = 2
    RECORD = 3


@dataclass(frozen=True)
class PeeringConfig:
    low: int = 4
    high: int = 8
    backoff_base_ms: int = 1_000
    backoff_max_ms: int = 60_000
    max_dialing: int = 4  # dials in flight at once
    max_candidates: int = 1_000
    # An mDNS candidate that fails this many dials in a row is forgotten: its record may
    # be a dead node's, cached for an hour or more (protocols/discovery.md §6).
    mdns_max_failures: int = 5


@dataclass
class Candidate:
    key: str  # node id hex when known, else the URL
    node_id: bytes | None
    urls: tuple[str, ...]
    source: Source
    failures: int = 0
    next_attempt: int = 0
    dialing: bool = False
    connected: bool = False


@dataclass(frozen=True)
class Dial:
    """Dial `node_id` at `url`, or, when `url` is None, by relayed signaling."""

    key: str
    node_id: bytes | None
    url: str | None


class Peering:
    def __init__(self, me: bytes, config: PeeringConfig, rand: Callable[[], float]) -> None:
        self.me = me
        self.config = config
        self._rand = rand
        self.candidates: dict[str, Candidate] = {}
        self.strikes: dict[bytes, int] = {}

    @staticmethod
    def key_of(node_id: bytes | None, url: str | None) -> str:
        return node_id.hex() if node_id is not None else f"url:{url}"

    def learn(self, node_id: bytes | None, urls: Iterable[str], source: Source) -> None:
        """A candidate, from any source. Does nothing for ourselves."""
        if node_id == self.me:
            return
        urls = tuple(urls)
        key = self.key_of(node_id, urls[0] if urls else None)
        if node_id is not None:
            for url in urls:  # an id-less entry for one of its URLs is now this one
                self.candidates.pop(self.key_of(None, url), None)
        cand = self.candidates.get(key)
        if cand is None:
            if len(self.candidates) >= self.config.max_candidates:
                return
            self.candidates[key] = Candidate(key, node_id, urls, source)
            return
        # URLs we knew first (e.g. from a bootstrap list) stay first (transport.md A.2).
        cand.urls = tuple(dict.fromkeys(cand.urls + urls))[:8]
        cand.source = min(cand.source, source)

    def dial_done(self, key: str, now: int) -> None:
        """The transport connected; the session handshake decides the rest. Until then
        the candidate is not dialed again (`connected` or a failure settles it)."""
        cand = self.candidates.get(key)
        if cand is not None:
            cand.dialing = False
            cand.next_attempt = now + self._backoff(max(cand.failures, 1))

    def adopt(self, key: str, node_id: bytes) -> None:
        """A dial to an id-less URL reached `node_id`: one candidate from now on."""
        cand = self.candidates.pop(key, None) if key.startswith("url:") else None
        if cand is not None:
            self.learn(node_id, cand.urls, cand.source)

    def connected(self, node_id: bytes) -> None:
        cand = self.candidates.get(node_id.hex())
        if cand is None:
            cand = self.candidates[node_id.hex()] = Candidate(node_id.hex(), node_id, (),
                                                              Source.RECORD)
        cand.connected, cand.dialing, cand.failures = True, False, 0

    def disconnected(self, node_id: bytes, now: int) -> None:
        cand = self.candidates.get(node_id.hex())
        if cand is not None:
            cand.connected = False
            cand.dialing = False
            # Not at once: a peer that just dropped us may be restarting or overloaded.
            cand.next_attempt = now + self._backoff(max(cand.failures, 1))

    def dial_failed(self, key: str, now: int) -> bool:
        """Count a failure and back off. True when the candidate is forgotten: one known
        only from mDNS after `mdns_max_failures` failures in a row (discovery.md §6)."""
        cand = self.candidates.get(key)
        if cand is None:
            return False
        cand.dialing = False
        cand.failures += 1
        cand.next_attempt = now + self._backoff(cand.failures)
        if cand.source == Source.MDNS and cand.failures >= self.config.mdns_max_failures:
            del self.candidates[key]
            return True
        return False

    def forget(self, node_id: bytes, source: Source) -> bool:
        """`source` no longer vouches for `node_id` (its mDNS service was removed): drop
        the candidate if that source is the best we had and it is neither connected nor
        being dialed (a live connection is the node's own evidence). True if dropped."""
        cand = self.candidates.get(node_id.hex())
        if cand is None or cand.source != source or cand.connected or cand.dialing:
            return False
        del self.candidates[cand.key]
        return True

    def misbehaved(self, node_id: bytes) -> None:
        self.strikes[node_id] = self.strikes.get(node_id, 0) + 1

    def _backoff(self, failures: int) -> int:
        base = min(self.config.backoff_max_ms,
                   self.config.backoff_base_ms * 2 ** min(failures - 1, 16))
        return int(base * (0.5 + self._rand()))  # jitter: 0.5x .. 1.5x

    def due(self, now: int, peer_count: int, reachable: Callable[[Candidate], bool]
            ) -> list[Dial]:
        """Candidates to dial now. `reachable(c)` says whether we have any way to reach c
        (a URL, or a connected peer that can relay to it)."""
        dialing = sum(1 for c in self.candidates.values() if c.dialing)
        want = min(self.config.low - peer_count - dialing, self.config.max_dialing - dialing)
        if want <= 0:
            return []
        ready = [c for c in self.candidates.values()
                 if not c.connected and not c.dialing and c.next_attempt <= now
                 and self.strikes.get(c.node_id or b"", 0) < 3 and reachable(c)]
        ready.sort(key=lambda c: (c.failures, c.source, self._rank(c.key)))
        dials = []
        for cand in ready[:want]:
            cand.dialing = True
            # Each failure moves on to the candidate's next URL, round and round.
            url = cand.urls[cand.failures % len(cand.urls)] if cand.urls else None
            dials.append(Dial(cand.key, cand.node_id, url))
        return dials

    def _rank(self, key: str) -> bytes:
        """The order among equal candidates: a hash keyed by our own id, so that every
        node has its own order. Sorting by the key itself made every node of a LAN dial
        the same few peers first (mDNS finds everyone at once), which then refused the
        herd with 503 and kept more peers than the rest."""
        return hashlib.blake2b(key.encode(), key=self.me, digest_size=8).digest()

    def timer(self, now: int) -> int | None:
        """When a candidate next becomes due, for `due()` to be asked again. Only future
        times: a candidate due already was just declined by `due()` (enough peers, no
        way to reach it, too many strikes), and what changes that is an event (a peer
        lost, a peer gained, a new candidate) on which the node asks again anyway. A
        past time here would make the node wake at once, forever: a busy loop."""
        waits = [c.next_attempt for c in self.candidates.values()
                 if not c.connected and not c.dialing and c.next_attempt > now]
        return min(waits) if waits else None

    def surplus(self, peers: dict[bytes, int | None]) -> list[bytes]:
        """Above `high`: the peers to drop (most strikes, then slowest RTT)."""
        extra = len(peers) - self.config.high
        if extra <= 0:
            return []
        ranked = sorted(peers, key=lambda p: (-self.strikes.get(p, 0), -(peers[p] or 0), p))
        return ranked[:extra]
