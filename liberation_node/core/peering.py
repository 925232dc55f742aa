"""The connection manager's decisions: whom to dial, when, and whom to drop
(DESIGN §4, "the seed's self-healing"; protocols/transport.md §7).

Pure: the node reports what happened (`link_opened`, `session_up`,
`session_down`, `dial_failed`) with the time, and asks `due(now)` what to dial
next; `rand()` is injected for jitter. Keeps the number of peers between `low`
and `high`: below `low` it dials known candidates, never one already connected
or being dialed, backing off exponentially (with jitter) on each failure, so a
partitioned node re-dials by itself and a dead address costs less and less;
above `high` it names the worst peers to drop (newcomers last, then lowest score,
then highest RTT, an unknown RTT counting as the highest), never one of the
`protected` slots kept for peers the operator, the bootstrap lists or mDNS named
and for long-lived links (eclipse resistance, transport.md §7.8). A peer that
closes our session as `too_many_peers` is backed off from like one that refused
the offer (transport.md §7.3). A banned node (core/scoring.py)
is not dialed. Candidates come from bootstrap lists, the `node.info` records of
the replica (peer exchange), mDNS, or the operator. Between the low and the
high mark a node still dials one random candidate every `explore_ms` (jittered):
that mixes the topology, and it is what joins two halves of a mesh again after a
partition healed, when every node has found enough peers on its own side; sooner
after a session was lost, the wait doubling from `explore_first_ms` (§7.2).

What other nodes announce is not trusted (§7.7): an announced URL is dialed
only when its host is in scope (core/scope.py), at most a few times a minute
per announcing node and per destination, and a candidate that only strangers
vouch for is forgotten after repeated failures. A dial that reaches another
node than the one it expected keeps that node as an ordinary peer and backs off
from the URL (§7.4).

`Peering` is assembled from parts: the candidate table, what it learns and forgets
(candidates.py), and which peers to shed (shedding.py); this module keeps the record
of dials and sessions and decides whom to dial when.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from .candidates import MAX_REMEMBERED, TRUSTED, Candidate, CandidateTable, Source, remember
from .scope import ALWAYS, url_destination
from .scoring import Scores, id_key
from .shedding import Shedding

__all__ = ["Dial", "Misdirected", "Peering", "PeeringConfig"]


@dataclass(frozen=True)
class PeeringConfig:
    low: int = 4
    high: int = 8
    backoff_base_ms: int = 1_000
    backoff_max_ms: int = 60_000
    max_dialing: int = 4  # dials in flight at once
    max_candidates: int = 1_000
    scopes: frozenset[str] = ALWAYS  # scopes announced URLs may be in (core/scope.py)
    announced_dials: int = 3  # dials to announced URLs per announcing node ...
    destination_dials: int = 6  # ... and per destination host:port ...
    dial_window_ms: int = 60_000  # ... in this window (transport.md §7.7)
    forget_after: int = 8  # failures before a candidate only strangers vouch for is dropped
    forget_for_ms: int = 3_600_000  # and ignored while its record names the same URLs
    explore_ms: int = 30_000  # one dial beyond the low mark this often (0: never)
    # ... but this soon after a session was lost, the wait doubling after each exploring
    # dial back to `explore_ms` (transport.md §7.2)
    explore_first_ms: int = 2_000
    # Sooner for one the LAN's mDNS caches vouch for: a dead node's record stays cached
    # for an hour or more (protocols/discovery.md §6).
    mdns_max_failures: int = 5
    # Slots never shed for surplus (transport.md §7.8): peers found by the operator, the
    # bootstrap lists or mDNS first, then links open for `long_lived_ms`, oldest first.
    protected: int = 4
    long_lived_ms: int = 600_000
    # A session younger than this is a newcomer: not shed while another peer can be
    # (§7.5, §7.6). As long as its first PONG could take before (`measure_every_ms`);
    # 10 s kept a booting mesh refusing offers for longer than it needed (§7.5).
    newcomer_grace_ms: int = 5_000


@dataclass(frozen=True)
class Dial:
    """Dial `node_id` at `url`, or, when `url` is None, by relayed signaling. `announced`:
    the URL came from a record, so the addresses its host resolves to must be in scope."""

    key: str
    node_id: bytes | None
    url: str | None
    announced: bool = False


@dataclass(frozen=True)
class Misdirected:
    """A dial that expected `expected` reached `actual` (transport.md §7.4). The session
    stays, as an ordinary peer; `first` is true the first time this URL, expected id and
    actual id come together (say it loudly once)."""

    url: str | None
    expected: bytes
    actual: bytes
    first: bool


@dataclass(frozen=True)
class _Pending:
    key: str
    expected: bytes | None
    url: str | None


@dataclass
class _Rate:
    """GCRA buckets by key: `count` events per `window_ms`, bounded table."""

    count: int
    window_ms: int
    tat: OrderedDict[str, int] = field(default_factory=OrderedDict)

    def wait(self, key: str, now: int) -> int:
        """ms until `key` may have another event; 0 if it may now."""
        interval = self.window_ms // max(1, self.count)
        tat = max(self.tat.get(key, now), now)
        return max(0, tat - (self.window_ms - interval) - now)

    def take(self, key: str, now: int) -> None:
        interval = self.window_ms // max(1, self.count)
        self.tat[key] = max(self.tat.pop(key, now), now) + interval
        while len(self.tat) > MAX_REMEMBERED:
            self.tat.popitem(last=False)


class Peering(CandidateTable, Shedding):
    """The connection manager's state and decisions; see the module docstring."""

    def __init__(self, me: bytes, config: PeeringConfig, rand: Callable[[], float],
                 scores: Scores | None = None) -> None:
        self.me = me
        self.config = config
        self._rand = rand
        self.scores = scores or Scores()  # the mesh's: who is banned, who scores low
        self.candidates: dict[str, Candidate] = {}
        self._pending: dict[int, _Pending] = {}  # dialed links whose session is not up yet
        self._sessions: dict[int, bytes] = {}  # open sessions: link -> peer
        self._answered_by: OrderedDict[str, bytes] = OrderedDict()  # URL -> the id there
        self._warned: OrderedDict[str, None] = OrderedDict()  # Misdirected already said
        # key -> (its URLs, until when): forgotten candidates (transport.md §7.7)
        self._forgotten: OrderedDict[str, tuple[frozenset[str], int]] = OrderedDict()
        self._refused: OrderedDict[str, None] = OrderedDict()  # out-of-scope URLs seen
        self._by_announcer = _Rate(config.announced_dials, config.dial_window_ms)
        self._by_destination = _Rate(config.destination_dials, config.dial_window_ms)
        self._wanted = True  # did the last `due` want more dials? (else no timer)
        self._next_explore: int | None = None  # when to dial beyond the low mark
        self._explore_every = config.explore_ms  # the exploring period now (doubling)
        self._lan_forgotten: list[bytes] = []  # mDNS candidates dropped, for the node to see
        self._none_to_evict = False  # no candidate may be dropped (until a dial ends)
        # `due` and `timer` are asked after every input; most inputs change nothing they
        # depend on. `_version` counts the changes that may (every call that reports
        # something); while it stands, `due` knows it has nothing to dial before
        # `_quiet`'s time, and `timer` keeps its last answer (bans only ever lengthen,
        # and the mesh's Scores count their own changes).
        self._version = 0
        self._quiet: tuple[int, int, int | None] | None = None  # (version, peers, until)
        self._timer: tuple[int, int, int | None] | None = None  # (version, scores, timer)

    # -- learning -------------------------------------------------------------------------

    # -- what happened --------------------------------------------------------------------

    def link_opened(self, dial: Dial, conn: int, now: int) -> None:
        """The transport connected for `dial`; the session handshake decides the rest
        (`session_up` or `session_down`). Until then the candidate is not dialed again."""
        self._version += 1
        self._pending[conn] = _Pending(dial.key, dial.node_id, dial.url)
        cand = self.candidates.get(dial.key)
        if cand is not None:
            cand.dialing = False
            cand.next_attempt = now + self._backoff(max(cand.failures, 1))
            self._none_to_evict = False

    def session_up(self, conn: int, peer: bytes, now: int) -> Misdirected | None:
        """A session is OPEN with `peer` on link `conn` (dialed or answered)."""
        self._version += 1
        pending = self._pending.pop(conn, None)
        self._sessions[conn] = peer
        verdict = None
        if pending is not None:
            if pending.expected is None:
                self._adopt(pending.key, peer)
            elif pending.expected != peer:
                verdict = self._misdirected(pending, peer, now)
            elif pending.url is not None:
                self._answered_by.pop(pending.url, None)
        cand = self.candidates.get(peer.hex())
        if cand is None:  # it dialed us, or answered for another: an ordinary peer
            cand = self.candidates[peer.hex()] = Candidate(peer.hex(), peer, (), Source.RECORD)
        if not cand.connected:
            cand.since = now
        cand.connected, cand.dialing, cand.failures, cand.was_peer = True, False, 0, True
        self._forgotten.pop(cand.key, None)
        return verdict

    def session_down(self, conn: int, now: int, shed: bool = False,
                     surplus: bool = False) -> None:
        """Link `conn` is gone, whether its session had opened or not. `shed`: the peer
        closed it as `too_many_peers`: it is full, which a dialer takes as it takes a 503
        (backoff growing with each shed in a row, and other candidates first, §7.3).
        `surplus`: either end closed it as `too_many_peers` (`shed` implies it). A
        session lost otherwise (a peer gone, broken, cut off) brings the next exploring
        dial forward to `explore_first_ms` (§7.2): the mesh around the node changed, and
        a node that keeps `low` peers on its own side of a healed partition has no
        other way back to the rest."""
        self._version += 1
        pending = self._pending.pop(conn, None)
        if pending is not None:  # closed before HELLO went through: the dial failed
            cand = self.candidates.get(pending.key)
            if cand is not None and not cand.connected:
                self._failed(cand, now)
            return
        peer = self._sessions.pop(conn, None)
        if peer is None or peer in self._sessions.values():
            return  # another session to it remains (sync.md §4.2)
        if not (shed or surplus) and self.config.explore_first_ms:
            self._explore_every = min(self.config.explore_first_ms, self.config.explore_ms)
            self._next_explore = None  # drawn again from the shorter period
        cand = self.candidates.get(peer.hex())
        if cand is not None:
            cand.connected = False
            cand.dialing = False
            self._none_to_evict = False
            cand.shed = cand.shed + 1 if shed else 0
            # Not at once: a peer that just dropped us may be restarting or overloaded.
            cand.next_attempt = now + self._backoff(max(cand.failures, cand.shed, 1))

    def dial_failed(self, key: str, now: int, full: bool = False) -> None:
        """A dial to `key` failed. `full`: the peer answered that it has no room (503): it
        is alive, so this is no failure that leads to forgetting it; it counts as a shed
        (other candidates first) and backs off as one, except while this node has no
        session at all: then it retries after the first step (0.5-1.5 s). A lone node
        has nothing to lose, a refusal costs the full peer one round trip, and its
        newcomers become replaceable within about a second (§7.5), while a growing
        backoff left nodes alone for seconds at boot (transport.md §7.3)."""
        cand = self.candidates.get(key)
        if cand is None:
            return
        if not full:
            self._failed(cand, now)
            return
        self._version += 1
        cand.dialing = False
        cand.shed += 1
        self._none_to_evict = False
        steps = 1 if not self._sessions else max(cand.failures, cand.shed, 1)
        cand.next_attempt = now + self._backoff(steps)

    def _failed(self, cand: Candidate, now: int) -> None:
        self._version += 1
        cand.dialing = False
        cand.failures += 1
        self._none_to_evict = False
        cand.next_attempt = now + self._backoff(cand.failures)
        limit = (self.config.mdns_max_failures if cand.source is Source.MDNS
                 else self.config.forget_after)
        if cand.source not in TRUSTED and cand.failures >= limit:
            del self.candidates[cand.key]
            remember(self._forgotten, cand.key,
                      (frozenset(cand.urls), now + self.config.forget_for_ms))
            if cand.source is Source.MDNS and cand.node_id is not None:
                self._lan_forgotten.append(cand.node_id)

    def _misdirected(self, pending: _Pending, actual: bytes, now: int) -> Misdirected:
        assert pending.expected is not None
        cand = self.candidates.get(pending.key)
        if cand is not None:
            self._failed(cand, now)
        if pending.url is not None:
            remember(self._answered_by, pending.url, actual)
        note = f"{pending.url} {pending.expected.hex()} {actual.hex()}"
        first = note not in self._warned
        remember(self._warned, note, None)
        return Misdirected(pending.url, pending.expected, actual, first)

    def _backoff(self, failures: int) -> int:
        base = min(self.config.backoff_max_ms,
                   self.config.backoff_base_ms * 2 ** min(failures - 1, 16))
        return int(base * (0.5 + self._rand()))  # jitter: 0.5x .. 1.5x

    # -- decisions ------------------------------------------------------------------------

    def dialing(self) -> int:
        """Our dials under way that have no link yet."""
        return sum(1 for c in self.candidates.values() if c.dialing)

    def is_connected(self, node_id: bytes) -> bool:
        return node_id in self._sessions.values()

    def due(self, now: int, peer_count: int, relay_path: Callable[[bytes], bool]
            ) -> list[Dial]:
        """Candidates to dial now. `relay_path(id)` says whether one of our peers links to
        that node (its node.links record), for candidates without a URL."""
        quiet = self._quiet
        if quiet is not None and quiet[0] == self._version and quiet[1] == peer_count \
                and (quiet[2] is None or now < quiet[2]):
            return []  # nothing changed since a call that found nothing due before then
        self._version += 1
        cfg = self.config
        explore = peer_count >= cfg.low
        if explore:
            # Enough peers: only the exploring dial may be due. (This is asked after every
            # input; it must not cost a pass over every candidate.)
            if not cfg.explore_ms or peer_count >= cfg.high:
                self._next_explore = None  # the clock starts again when it may
            elif self._next_explore is None:
                self._next_explore = now + self._explore_wait()
            if self._next_explore is None or now < self._next_explore:
                self._wanted = False
                self._quiet = (self._version, peer_count, self._next_explore)
                return []
            self._next_explore = now + self._explore_wait()
        else:
            self._next_explore = None
        dialing = self.dialing()
        if explore:  # one dial, and none while another is in flight
            want = 0 if dialing else 1
        else:
            want = min(cfg.low - peer_count - dialing, cfg.max_dialing - dialing)
        self._wanted = want > 0 and not explore
        if want <= 0:  # until a dial ends, or the next exploring dial
            self._quiet = (self._version, peer_count, self._next_explore if explore else None)
            return []
        ready = [c for c in self.candidates.values()
                 if not c.connected and not c.dialing and c.next_attempt <= now
                 and not self._banned(c, now)]
        if not ready:  # none before the first may be dialed (as `timer` says)
            self._quiet = (self._version, peer_count,
                           self._next_explore if explore else self._first_ready())
            return []
        ready.sort(key=lambda c: (c.failures, c.shed, c.source, self._rank(c.key)))
        if explore and ready:  # anyone, by chance: the known best are mostly connected
            start = int(self._rand() * len(ready)) % len(ready)
            ready = ready[start:] + ready[:start]
        # URLs where a dial reached a node we are connected to: not a way to any other
        # candidate right now. (Only a dial is evidence: a peer that merely announced
        # another's URL must not stop us from dialing it.)
        taken = {url: who for url, who in self._answered_by.items() if self.is_connected(who)}
        dials: list[Dial] = []
        for cand in ready:
            if len(dials) >= want:
                break
            dial = self._route(cand, now, taken, peer_count > 0, relay_path)
            if dial is not None:
                cand.dialing = True
                dials.append(dial)
        return dials

    def _route(self, cand: Candidate, now: int, taken: dict[str, bytes], relays: bool,
               relay_path: Callable[[bytes], bool]) -> Dial | None:
        """How to dial `cand` now, or None (and when to look again)."""
        if cand.urls:
            wait = 0
            count = len(cand.urls)
            for i in range(count):  # each failure moves on to the next URL, round and round
                url = cand.urls[(cand.failures + i) % count]
                if taken.get(url, cand.node_id) != cand.node_id:
                    continue  # that URL leads to a peer we have: not to this candidate
                if url in cand.announced:
                    blocked = self._take_budget(cand.key, url, now)
                    if blocked:
                        wait = min(wait or blocked, blocked)
                        continue
                return Dial(cand.key, cand.node_id, url, url in cand.announced)
            cand.next_attempt = now + (wait or self._backoff(max(cand.failures, 1)))
            return None
        # By relay: through any peer for a node we only know from its record; a former
        # peer (a browser tab, a node behind NAT) only while a peer still links to it.
        if cand.node_id is not None and relays and (
                not cand.was_peer or relay_path(cand.node_id)):
            return Dial(cand.key, cand.node_id, None)
        # No way to it (a browser tab that left): this counts as a failure, so it is
        # looked at less and less, then forgotten.
        self._failed(cand, now)
        return None

    def _rank(self, key: str) -> bytes:
        """The order among equal candidates: a hash keyed by our own id, so that every
        node has its own order. Sorting by the key itself made every node of a LAN dial
        the same few peers first (mDNS finds everyone at once), which then refused the
        herd with 503 and kept more peers than the rest."""
        return hashlib.blake2b(key.encode(), key=self.me, digest_size=8).digest()

    def _take_budget(self, key: str, url: str, now: int) -> int:
        """0 and a dial counted against `key` and the URL's destination, or ms to wait."""
        destination = url_destination(url)
        wait = max(self._by_announcer.wait(key, now), self._by_destination.wait(destination, now))
        if wait == 0:
            self._by_announcer.take(key, now)
            self._by_destination.take(destination, now)
        return wait

    def _explore_wait(self) -> int:
        """The wait for the next exploring dial, jittered; the period doubles each time,
        from `explore_first_ms` after a lost session up to `explore_ms`."""
        every = self._explore_every
        self._explore_every = min(every * 2, self.config.explore_ms)
        return int(every * (0.5 + self._rand()))

    def timer(self) -> int | None:
        """When `due` may have something new to say; None while no dial is wanted (a
        session ending or a dial failing brings the node back to `due` anyway), except
        for the next exploring dial."""
        if not self._wanted:
            return self._next_explore
        cached = self._timer
        if cached is None or cached[0] != self._version or cached[1] != self.scores.version:
            cached = self._timer = (self._version, self.scores.version, self._first_ready())
        return cached[2]

    def _first_ready(self) -> int | None:
        """When the first candidate neither connected nor being dialed may be dialed."""
        waits = [max(c.next_attempt, self._ban_ends(c)) for c in self.candidates.values()
                 if not c.connected and not c.dialing]
        return min(waits) if waits else None

    def _ban_ends(self, cand: Candidate) -> int:
        if cand.node_id is None:
            return 0
        return self.scores.banned_until(id_key(cand.node_id), 0) or 0

    def _banned(self, cand: Candidate, now: int) -> bool:
        return cand.node_id is not None and self.scores.banned(id_key(cand.node_id), now)

