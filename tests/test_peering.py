"""Connection manager decisions (core/peering.py): marks, backoff with jitter, surplus."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from liberation_node.core.peering import Peering, PeeringConfig, Source

ME = b"\x00" * 32


def ids(n: int) -> list[bytes]:
    return [bytes([i + 1]) * 32 for i in range(n)]


def test_dials_up_to_the_low_mark_preferring_bootstrap() -> None:
    p = Peering(ME, PeeringConfig(low=2, high=4), rand=lambda: 0.5)
    a, b, c = ids(3)
    p.learn(a, ["http://127.0.0.1:1/v1/signal"], Source.RECORD)
    p.learn(b, ["http://127.0.0.1:2/v1/signal"], Source.BOOTSTRAP)
    p.learn(c, [], Source.RECORD)
    p.learn(ME, ["http://self"], Source.RECORD)  # never ourselves
    dials = p.due(0, peer_count=0, reachable=lambda cand: bool(cand.urls))
    assert [d.node_id for d in dials] == [b, a]
    assert p.due(0, peer_count=0, reachable=lambda cand: True) == []  # two already dialing
    p.connected(b)
    p.dial_failed(a.hex(), now=0)
    assert p.due(0, peer_count=1, reachable=lambda cand: True)[0].node_id == c  # by relay


def test_backoff_grows_with_jitter_and_caps() -> None:
    p = Peering(ME, PeeringConfig(backoff_base_ms=1000, backoff_max_ms=8000), rand=lambda: 0.5)
    (a,) = ids(1)
    p.learn(a, ["u"], Source.BOOTSTRAP)
    waits = []
    now = 0
    for _ in range(6):
        [dial] = p.due(now, 0, reachable=lambda cand: True)
        p.dial_failed(dial.key, now)
        waits.append(p.candidates[dial.key].next_attempt - now)
        assert p.due(now, 0, reachable=lambda cand: True) == []  # not before its time
        now = p.candidates[dial.key].next_attempt
    assert waits == [1000, 2000, 4000, 8000, 8000, 8000]
    jittery = Peering(ME, PeeringConfig(), rand=lambda: 0.0)
    jittery.learn(a, ["u"], Source.BOOTSTRAP)
    jittery.due(0, 0, reachable=lambda cand: True)
    jittery.dial_failed(a.hex(), 0)
    assert jittery.candidates[a.hex()].next_attempt == 500


def test_reconnects_after_a_drop_and_sheds_the_worst() -> None:
    p = Peering(ME, PeeringConfig(low=1, high=2), rand=lambda: 0.5)
    a, b, c = ids(3)
    p.learn(a, ["u"], Source.BOOTSTRAP)
    p.connected(a)
    p.disconnected(a, now=10_000)  # e.g. a partition
    assert p.due(10_000, 0, reachable=lambda cand: True) == []
    assert p.timer(10_000) == 11_000
    assert [d.node_id for d in p.due(11_000, 0, reachable=lambda cand: True)] == [a]
    p.misbehaved(c)
    assert p.surplus({a: 10, b: 300, c: 5}) == [c]
    assert p.surplus({a: 10, b: 300}) == []
    assert p.surplus({a: 10, b: 300, c: None, bytes(32): 1}) == [c, b]


def test_urls_rotate_on_failure_and_bootstrap_urls_stay_first() -> None:
    p = Peering(ME, PeeringConfig(low=1), rand=lambda: 0.5)
    (a,) = ids(1)
    p.learn(a, ["http://boot/v1/signal"], Source.BOOTSTRAP)
    p.learn(a, ["http://127.0.0.1:7411/v1/signal"], Source.RECORD)  # what it advertises
    assert p.candidates[a.hex()].urls[0] == "http://boot/v1/signal"
    first = p.due(0, 0, reachable=lambda c: True)[0]
    p.dial_failed(first.key, 0)
    second = p.due(10**6, 0, reachable=lambda c: True)[0]
    assert (first.url, second.url) == ("http://boot/v1/signal", "http://127.0.0.1:7411/v1/signal")


def test_an_id_less_bootstrap_entry_becomes_the_peer_it_reached() -> None:
    p = Peering(ME, PeeringConfig(low=1), rand=lambda: 0.5)
    (a,) = ids(1)
    p.learn(None, ["http://boot/v1/signal"], Source.BOOTSTRAP)
    (dial,) = p.due(0, 0, reachable=lambda c: True)
    p.dial_done(dial.key, 0)
    p.adopt(dial.key, a)
    p.connected(a)
    assert list(p.candidates) == [a.hex()]
    assert p.candidates[a.hex()].urls == ("http://boot/v1/signal",)
    p.disconnected(a, now=0)
    # After the link drops, it is dialed again (it used to stay "dialing" for ever).
    again = p.due(10**6, 0, reachable=lambda c: True)
    assert [d.url for d in again] == ["http://boot/v1/signal"]


def test_an_mdns_candidate_that_keeps_failing_is_forgotten() -> None:
    """Its record may be a dead node's, cached for an hour (protocols/discovery.md §6)."""
    p = Peering(ME, PeeringConfig(mdns_max_failures=3), rand=lambda: 0.5)
    lan, listed = ids(2)
    p.learn(lan, ["http://198.18.1.12:7411/v1/signal"], Source.MDNS)
    p.learn(listed, ["http://192.0.2.1:7411/v1/signal"], Source.BOOTSTRAP)
    forgotten = []
    now = 0
    for _ in range(10):
        for dial in p.due(now, 0, reachable=lambda cand: True):
            if p.dial_failed(dial.key, now):
                forgotten.append(dial.node_id)
        now += 60_000
    assert forgotten == [lan]  # after exactly three failures, and only the mDNS one
    assert lan.hex() not in p.candidates and listed.hex() in p.candidates
    p.learn(lan, ["http://198.18.1.12:7411/v1/signal"], Source.MDNS)  # announced again
    assert p.candidates[lan.hex()].failures == 0


def test_forget_drops_an_mdns_candidate_unless_connected_or_better_known() -> None:
    p = Peering(ME, PeeringConfig(), rand=lambda: 0.5)
    a, b, c = ids(3)
    for node in (a, b, c):
        p.learn(node, [f"http://198.18.1.{node[0]}:7411/v1/signal"], Source.MDNS)
    p.learn(c, ["http://192.0.2.1:7411/v1/signal"], Source.BOOTSTRAP)
    p.connected(b)
    assert p.forget(a, Source.MDNS) and a.hex() not in p.candidates
    assert not p.forget(b, Source.MDNS)  # a live connection is the better evidence
    assert not p.forget(c, Source.MDNS)  # a bootstrap list still names it
    assert not p.forget(a, Source.MDNS)  # already gone


def test_each_node_has_its_own_order_among_equal_candidates() -> None:
    """Nodes of a LAN find the same candidates at once: they must not all dial the same
    ones first (they would be refused as a herd and become hubs)."""
    lan = ids(9)
    firsts = set()
    for me in range(20):
        p = Peering(bytes([100 + me]) * 32, PeeringConfig(low=4), rand=lambda: 0.5)
        for node in lan:
            p.learn(node, [f"http://198.18.1.{node[0]}:7411/v1/signal"], Source.MDNS)
        first = [d.node_id for d in p.due(0, 0, reachable=lambda cand: True)]
        again = Peering(p.me, PeeringConfig(low=4), rand=lambda: 0.5)
        for node in reversed(lan):
            again.learn(node, [f"http://198.18.1.{node[0]}:7411/v1/signal"], Source.MDNS)
        assert [d.node_id for d in again.due(0, 0, reachable=lambda cand: True)] == first
        firsts.add(first[0])
    assert len(firsts) >= 4  # twenty nodes start with (at least four) different peers


def test_the_timer_never_asks_to_wake_for_what_due_just_declined() -> None:
    """With enough peers, candidates are due but not dialed; a timer at or before `now`
    made the node wake at once, forever (10 idle daemons burned a whole core)."""
    p = Peering(ME, PeeringConfig(low=2), rand=lambda: 0.5)
    a, b, c, d = ids(4)
    for node in (a, b, c):
        p.learn(node, [f"http://198.18.1.{node[0]}:7411/v1/signal"], Source.MDNS)
    p.learn(d, [], Source.RECORD)  # reachable only by relay
    now = 5_000
    assert p.due(now, peer_count=2, reachable=lambda cand: bool(cand.urls)) == []
    assert p.timer(now) is None  # nothing will become due by itself
    p.dial_failed(a.hex(), now)  # dialed earlier and failed: due again later
    assert p.timer(now) == p.candidates[a.hex()].next_attempt > now


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20_000), st.booleans(), st.booleans()), max_size=12),
       st.integers(0, 20_000))
def test_the_timer_is_always_in_the_future(states: list[tuple[int, bool, bool]],
                                           now: int) -> None:
    p = Peering(ME, PeeringConfig(), rand=lambda: 0.5)
    for i, (next_attempt, connected, dialing) in enumerate(states):
        node = bytes([i + 1]) * 32
        p.learn(node, ["u"], Source.MDNS)
        cand = p.candidates[node.hex()]
        cand.next_attempt, cand.connected, cand.dialing = next_attempt, connected, dialing
    wake = p.timer(now)
    assert wake is None or wake > now
