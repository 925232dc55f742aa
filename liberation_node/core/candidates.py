"""The connection manager's candidates: the nodes it may dial, where it heard of each
(the source decides how far it is trusted), and how it learns and forgets them
(protocols/transport.md §7.1: candidates; §7.7: announced URLs and forgetting;
discovery.md §6.1: mDNS candidates).

`CandidateTable` is a mixin of `Peering` (peering.py), which owns every attribute
named below.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .scope import url_allowed, url_scope

if TYPE_CHECKING:
    from .peering import PeeringConfig

V = TypeVar("V")


class Source(enum.IntEnum):
    """Where we heard of a candidate; lower is preferred when choosing whom to dial."""

    OPERATOR = 0
    BOOTSTRAP = 1
    MDNS = 2
    RECORD = 3


TRUSTED = (Source.OPERATOR, Source.BOOTSTRAP)  # the operator's own word: never forgotten
VOUCHED = (Source.OPERATOR, Source.BOOTSTRAP, Source.MDNS)  # found without a stranger's word
MAX_URLS = 8  # per candidate, as in node.info (ops.md §8.2)
MAX_REMEMBERED = 1_000  # entries in each of the bounded side tables


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
    announced: frozenset[str] = frozenset()  # URLs only node.info records named
    was_peer: bool = False  # a session with it was open once
    since: int = 0  # when its current session came up
    shed: int = 0  # its sessions it closed as `too_many_peers`, in a row: it is full


def remember(table: OrderedDict[str, V], key: str, value: V) -> None:
    """Put `key` last in a bounded side table, dropping the oldest beyond `MAX_REMEMBERED`."""
    table.pop(key, None)
    table[key] = value
    while len(table) > MAX_REMEMBERED:
        table.popitem(last=False)


class CandidateTable:
    """Candidates learned from every source, merged by node id, bounded, forgotten."""

    # Owned and set by Peering (peering.py).
    me: bytes
    config: PeeringConfig
    candidates: dict[str, Candidate]
    _forgotten: OrderedDict[str, tuple[frozenset[str], int]]
    _refused: OrderedDict[str, None]
    _lan_forgotten: list[bytes]
    _none_to_evict: bool
    _version: int

    @staticmethod
    def key_of(node_id: bytes | None, url: str | None) -> str:
        return node_id.hex() if node_id is not None else f"url:{url}"

    def learn(self, node_id: bytes | None, urls: Iterable[str], source: Source,
              now: int = 0) -> list[tuple[str, str]]:
        """A candidate, from any source. Does nothing for ourselves. URLs from records
        out of scope are dropped; returns those not reported before, as (url, scope)."""
        if node_id == self.me:
            return []
        self._version += 1
        urls = tuple(dict.fromkeys(urls))
        refused: list[tuple[str, str]] = []
        if source is Source.RECORD:
            kept = tuple(u for u in urls if url_allowed(u, self.config.scopes))
            for url in urls:
                if url not in kept and url not in self._refused:
                    remember(self._refused, url, None)
                    refused.append((url, url_scope(url) or "not an http(s) URL"))
            urls = kept
        key = self.key_of(node_id, urls[0] if urls else None)
        if source is Source.MDNS:  # fresh evidence of a live responder (discovery.md §6.1)
            self._forgotten.pop(key, None)
        elif self._still_forgotten(key, urls, now):
            return refused
        fresh = set(urls) if source is Source.RECORD else set()  # announced by a stranger
        if node_id is not None:
            for url in urls:  # an id-less entry for one of its URLs is now this one
                old = self.candidates.pop(self.key_of(None, url), None)
                if old is not None:
                    source = min(source, old.source)
                    fresh -= set(old.urls) - old.announced
        cand = self.candidates.get(key)
        if cand is None:
            if len(self.candidates) >= self.config.max_candidates and not self._evict():
                return refused
            self.candidates[key] = Candidate(key, node_id, urls[:MAX_URLS], source,
                                             announced=frozenset(fresh) & set(urls[:MAX_URLS]))
            return refused
        # URLs we knew first (e.g. from a bootstrap list) stay first (transport.md A.2).
        merged = tuple(dict.fromkeys(cand.urls + urls))[:MAX_URLS]
        trusted = set(cand.urls) - cand.announced
        cand.announced = frozenset(((cand.announced | fresh) - trusted - (set(urls) - fresh))
                                   & set(merged))
        cand.urls = merged
        cand.source = min(cand.source, source)
        return refused

    def _still_forgotten(self, key: str, urls: tuple[str, ...], now: int) -> bool:
        entry = self._forgotten.get(key)
        if entry is None:
            return False
        known, until = entry
        if now < until and set(urls) <= known:
            return True
        del self._forgotten[key]
        return False

    def _evict(self) -> bool:
        """Room for a new candidate: drop the most failed untrusted one that failed. A
        full table with none to drop is not scanned again until a dial ends or a session
        closes (what can make one droppable): a stream of new identities' records would
        otherwise cost a scan of every candidate each."""
        if self._none_to_evict:
            return False
        worst = max((c for c in self.candidates.values()
                     if c.source not in TRUSTED and not c.connected and not c.dialing
                     and c.failures > 0), key=lambda c: c.failures, default=None)
        if worst is None:
            self._none_to_evict = True
            return False
        del self.candidates[worst.key]
        return True

    def forget(self, node_id: bytes, source: Source) -> bool:
        """`source` no longer vouches for `node_id` (its mDNS service was removed): drop
        the candidate if that source is the best we had and it is neither connected nor
        being dialed (a live connection is the node's own evidence). True if dropped."""
        self._version += 1
        cand = self.candidates.get(node_id.hex())
        if cand is None or cand.source != source or cand.connected or cand.dialing:
            return False
        del self.candidates[cand.key]
        return True

    def lan_forgotten(self) -> list[bytes]:
        """The mDNS candidates forgotten for failing since the last call: the node asks
        the LAN about them again later (discovery.md §6.1)."""
        dropped, self._lan_forgotten = self._lan_forgotten, []
        return dropped

    def _adopt(self, key: str, node_id: bytes) -> None:
        """A dial to an id-less URL reached `node_id`: one candidate from now on."""
        cand = self.candidates.pop(key, None) if key.startswith("url:") else None
        if cand is not None:
            self.learn(node_id, cand.urls, cand.source)
