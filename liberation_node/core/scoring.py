"""Peer scores and bans (protocols/sync.md §4.7), in the spirit of GossipSub v1.1's peer
scoring: what a peer does wrong lowers its score, the score decays back towards zero
with time, and a peer whose score falls to the threshold is banned for a time that
grows with each ban.

A score belongs to a **key**: a node id (`id_key`) once its HELLO has proved it, or an
address (`address_key`, from the driver) before that or as well, so that a peer
cannot escape its record by making a new identity, nor an identity by moving.

Each kind of wrong has a weight, chosen against what honest peers do: nothing an
honest peer sends on a reliable, ordered channel is ever penalised, so an honest
peer's score stays 0. Where a penalty can come from a fault that is not the peer's
(a frame garbled by a faulty transport, a request repeated because an answer was
slow), its weight is small enough, against the decay, that only a sustained stream
of them reaches the threshold.

Pure: time comes in as `now` (ms).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass


class Penalty(enum.StrEnum):
    """What lowers a peer's score (sync.md §4.7), with its weight in `WEIGHTS`."""

    PROTOCOL_ERROR = "protocol_error"  # a frame that does not decode, a wrong answer
    OUT_OF_ORDER = "out_of_order"  # a frame out of place (before HELLO, a second HELLO)
    BAD_BINDING = "bad_binding"  # a HELLO not signed for this connection
    RATE_LIMITED = "rate_limited"  # over the inbound budget (sync.md §4.5)
    INVALID_INPUT = "invalid_input"  # a strike: an op or record no honest peer relays
    MISBEHAVING = "misbehaving"  # closed for too many strikes
    REPEATED_REQUEST = "repeated_request"  # the same ref, range or key twice in one frame
    OVER_BUDGET = "over_budget"  # asked for more than it is served; the rest dropped
    SYNC_FLOOD = "sync_flood"  # SYNC_OPEN faster than any round schedule
    SIGNAL_FLOOD = "signal_flood"  # SIGNAL frames over the per-session rate
    EQUIVOCATION = "equivocation"  # the peer's own identity signed two ops at one seq


WEIGHTS: dict[Penalty, float] = {
    Penalty.PROTOCOL_ERROR: 25.0,
    # A reliable, ordered channel never reorders or repeats a frame; a faulty transport
    # could, and an honest peer must not be banned for it (sync.md §4.7).
    Penalty.OUT_OF_ORDER: 5.0,
    Penalty.BAD_BINDING: 50.0,
    Penalty.RATE_LIMITED: 50.0,
    Penalty.INVALID_INPUT: 4.0,
    Penalty.MISBEHAVING: 50.0,
    Penalty.REPEATED_REQUEST: 10.0,
    Penalty.OVER_BUDGET: 2.0,
    Penalty.SYNC_FLOOD: 5.0,
    Penalty.SIGNAL_FLOOD: 1.0,
    # Not a ban at once: the equivocator must still learn of its fork from its peers
    # (sync.md §10.2), which they tell it over the very session.
    Penalty.EQUIVOCATION: 40.0,
}


@dataclass(frozen=True)
class ScoringConfig:
    ban_threshold: float = -100.0  # at or below: banned
    half_life_ms: int = 60_000  # a score halves towards 0 in this long
    ban_ms: int = 60_000  # the first ban; each further ban of the key lasts 4 times longer
    max_ban_ms: int = 24 * 3_600_000
    max_keys: int = 10_000  # keys remembered; the least recently penalised go first


@dataclass
class _Entry:
    score: float = 0.0
    at: int = 0  # when `score` was last brought up to date
    bans: int = 0
    banned_until: int = 0
    last: str = ""  # the penalty that banned it, for logs


@dataclass(frozen=True, slots=True)
class Ban:
    key: str
    until: int
    reason: str  # the penalty that crossed the threshold
    count: int  # bans of this key so far, this one included


TRIM_LOOKS = 16  # keys one penalty may look at to keep the table within `max_keys`


def id_key(node_id: bytes) -> str:
    return "id:" + node_id.hex()


def address_key(address: str) -> str:
    return "addr:" + address


class Scores:
    def __init__(self, config: ScoringConfig | None = None) -> None:
        self.config = config or ScoringConfig()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.penalties: dict[str, int] = {}  # penalty -> times applied (cumulative)
        self.version = 0  # counts changes: what depends on bans may keep its answer meanwhile

    def _decayed(self, entry: _Entry, now: int) -> float:
        elapsed = max(0, now - entry.at)
        return float(entry.score * 0.5 ** (elapsed / self.config.half_life_ms))

    def score(self, key: str, now: int) -> float:
        entry = self._entries.get(key)
        return self._decayed(entry, now) if entry is not None else 0.0

    def penalize(self, key: str, penalty: Penalty, now: int, times: float = 1,
                 count: bool = True) -> Ban | None:
        """Lower `key`'s score; returns the new ban when this crossed the threshold.
        `count`: add to `penalties` (once per wrong, however many keys it lowers)."""
        self.version += 1
        if count:
            self.penalties[penalty.value] = self.penalties.get(penalty.value, 0) + 1
        entry = self._entries.pop(key, None) or _Entry(at=now)
        self._entries[key] = entry  # most recently penalised last
        entry.score = self._decayed(entry, now) - WEIGHTS[penalty] * times
        entry.at = now
        ban = None
        if entry.score <= self.config.ban_threshold and entry.banned_until <= now:
            entry.bans += 1
            entry.banned_until = now + min(self.config.max_ban_ms,
                                           self.config.ban_ms * 4 ** min(entry.bans - 1, 16))
            entry.score = 0.0  # served by the ban; a later one lasts longer
            entry.last = penalty.value
            ban = Ban(key, entry.banned_until, penalty.value, entry.bans)
        self._trim(now)
        return ban

    def banned_until(self, key: str, now: int) -> int | None:
        entry = self._entries.get(key)
        if entry is None or entry.banned_until <= now:
            return None
        return entry.banned_until

    def banned(self, key: str, now: int) -> bool:
        return self.banned_until(key, now) is not None

    def bans(self, now: int) -> list[Ban]:
        """Bans in force."""
        return [Ban(k, e.banned_until, e.last, e.bans) for k, e in self._entries.items()
                if e.banned_until > now]

    def _trim(self, now: int) -> None:
        """Keep at most `max_keys`: forget the least recently penalised key not banned
        (a key banned stays until its ban ends, whatever the table's size). A call looks
        at a few keys only, from the oldest: a banned one goes to the back, so that a
        penalty never walks the whole table (which fresh identities, or bans, would make
        every penalty cost)."""
        entries = self._entries
        looks = TRIM_LOOKS
        while len(entries) > self.config.max_keys and looks > 0:
            looks -= 1
            key = next(iter(entries))
            if entries[key].banned_until > now:
                entries.move_to_end(key)
            else:
                del entries[key]
