"""Referrals: a node with no room names a few of its peers to the dialer it refuses
(protocols/transport.md §3.3, §7.3).

A 503 for want of room used to say only "full". A node that boots into a mesh whose
nodes are all full knows nobody but its bootstrap peers until it holds a session (peer
exchange reads the replica's records), and those peers, the first ones every newcomer
is told of, are the fullest of all: in the reference simulator (300 nodes booting
within 1.5 s, 3 bootstrap peers each), nodes stayed alone for up to 2.3 s, refused
again and again by the same three. Named peers are new candidates to try at once.

The peers named are the newest sessions: those joined last, most likely still short
of their own mark. A referral is a stranger's word, like a `node.info` record: its
URLs are announced URLs (scope rules and dial budgets, §7.7), and the dialer takes at
most `MAX_REFERRALS` of them per answer.

Pure: the peering's own candidate table is read; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .candidates import Source
from .peering import Peering
from .scoring import id_key

MAX_REFERRALS = 4  # peers named in one 503, and taken from one
URLS_PER_REFERRAL = 2  # signaling URLs given for each


class Referral(NamedTuple):
    node_id: bytes
    urls: tuple[str, ...]


def referrals(peering: Peering, dialer: bytes | None, now: int,
              limit: int = MAX_REFERRALS) -> list[Referral]:
    """The peers to name to a refused `dialer`: connected, with a signaling URL, the
    newest sessions first, never the dialer itself nor a banned node."""
    newest = sorted((c for c in peering.candidates.values()
                     if c.connected and c.node_id is not None and c.urls
                     and c.node_id != dialer
                     and not peering.scores.banned(id_key(c.node_id), now)),
                    key=lambda c: (-c.since, c.key))
    return [Referral(c.node_id, c.urls[:URLS_PER_REFERRAL])
            for c in newest[:limit] if c.node_id is not None]


def referred(peering: Peering, named: Iterable[Referral], now: int) -> int:
    """Take the peers a refusal named as candidates (as if announced by records: scope
    rules apply); returns how many were new. A candidate known already keeps its
    backoff: the referral is no news about it."""
    new = 0
    for referral in list(named)[:MAX_REFERRALS]:
        key = peering.key_of(referral.node_id, None)
        if key not in peering.candidates:
            new += 1
        peering.learn(referral.node_id, referral.urls[:URLS_PER_REFERRAL], Source.RECORD, now)
    return new
