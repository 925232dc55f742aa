"""A node with no room names a few of its peers to the dialer it refuses, and the
dialer tries them (core/referrals.py; protocols/transport.md §3.3, §7.3)."""

from __future__ import annotations

from liberation_node.core.candidates import Source
from liberation_node.core.peering import Peering, PeeringConfig
from liberation_node.core.referrals import MAX_REFERRALS, Referral, referrals, referred
from liberation_node.core.scoring import Penalty, id_key

from .test_peering import ME, connect, ids, no_relay

URL = "http://10.0.0.{}:7000/v1/signal"


def test_a_full_node_names_its_newest_peers_with_their_urls() -> None:
    p = Peering(ME, PeeringConfig(), rand=lambda: 0.5)
    peers = ids(7)
    for i, peer in enumerate(peers):
        p.learn(peer, [URL.format(i), URL.format(100 + i), URL.format(200 + i)], Source.RECORD)
        connect(p, peer, now=1_000 * i)
    dialer, banned = peers[6], peers[5]
    p.scores.penalize(id_key(banned), Penalty.MISBEHAVING, 6_000, times=2)
    named = referrals(p, dialer, 6_000)
    assert [r.node_id for r in named] == [peers[4], peers[3], peers[2], peers[1]]
    assert named[0].urls == (URL.format(4), URL.format(104))  # two URLs each


def test_peers_without_a_url_are_not_named() -> None:
    p = Peering(ME, PeeringConfig(), rand=lambda: 0.5)
    a, b = ids(2)
    connect(p, a)  # it dialed us: we know no URL of it
    p.learn(b, [URL.format(2)], Source.RECORD)
    connect(p, b)
    assert referrals(p, None, 0) == [Referral(b, (URL.format(2),))]


def test_a_lone_node_refused_by_its_bootstrap_peer_dials_whom_it_named_at_once() -> None:
    """Before, a node whose bootstrap peers were full knew nobody else until it held a
    session, and retried the same full peers every 0.5-1.5 s (300 simulated nodes: one
    was alone for 2.3 s)."""
    p = Peering(ME, PeeringConfig(low=4, max_dialing=1), rand=lambda: 0.5)
    boot, *others = ids(1 + MAX_REFERRALS + 2)
    p.learn(boot, [URL.format(0)], Source.BOOTSTRAP)
    (dial,) = p.due(0, 0, relay_path=no_relay)
    named = [Referral(peer, (URL.format(i + 1),)) for i, peer in enumerate(others)]
    assert referred(p, named, 100) == MAX_REFERRALS  # the rest ignored: bounded
    p.dial_failed(dial.key, 100, full=True)
    (nxt,) = p.due(100, 0, relay_path=no_relay)
    assert nxt.node_id in others[:MAX_REFERRALS] and nxt.announced  # a stranger's word
    assert others[-1].hex() not in p.candidates


def test_a_referral_of_a_known_candidate_leaves_its_backoff() -> None:
    p = Peering(ME, PeeringConfig(low=1), rand=lambda: 0.5)
    (a,) = ids(1)
    p.learn(a, [URL.format(1)], Source.RECORD)
    (dial,) = p.due(0, 0, relay_path=no_relay)
    p.dial_failed(dial.key, 0)  # a real failure: backed off
    waits = p.candidates[a.hex()].next_attempt
    assert referred(p, [Referral(a, (URL.format(1),))], 10) == 0
    assert p.candidates[a.hex()].next_attempt == waits > 10


def test_a_referral_out_of_scope_is_not_dialed() -> None:
    p = Peering(ME, PeeringConfig(low=1, scopes=frozenset({"private"})), rand=lambda: 0.5)
    (a,) = ids(1)
    referred(p, [Referral(a, ("http://127.0.0.1:7000/v1/signal",))], 0)
    assert p.due(0, 0, relay_path=no_relay) == []
