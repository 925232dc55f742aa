"""What other nodes announce is not trusted (transport.md §7.4, §7.7): address scopes,
dial budgets, forgetting, relay-only peers, and a dial that reaches another node
than expected. Time is stepped by hand; `rand` is fixed (jitter 1x)."""

from __future__ import annotations

import ipaddress
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from liberation_node.core import scope
from liberation_node.core.candidates import Source
from liberation_node.core.connections import Connections
from liberation_node.core.events import PeerDown
from liberation_node.core.mesh import Mesh
from liberation_node.core.peering import Dial, Peering, PeeringConfig
from liberation_node.core.session import CloseReason

ME = b"\x00" * 32
X, Y, Z = (bytes([i]) * 32 for i in (1, 2, 3))
URL = "http://192.0.2.10:7411/v1/signal"


def relay_never(node_id: bytes) -> bool:
    return False


def relay_always(node_id: bytes) -> bool:
    return True


def peering(**config: object) -> Peering:
    return Peering(ME, PeeringConfig(**config), rand=lambda: 0.5)  # type: ignore[arg-type]


# -- scopes ---------------------------------------------------------------------------


@given(st.ip_addresses())
def test_every_ip_address_has_one_scope(ip: ipaddress.IPv4Address | ipaddress.IPv6Address
                                        ) -> None:
    got = scope.address_scope(str(ip))
    plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
    if plain.is_loopback:
        assert got == scope.LOOPBACK
    elif plain.is_link_local:
        assert got == scope.LINK_LOCAL
    elif plain.is_multicast:
        assert got == scope.MULTICAST
    elif plain.is_unspecified:
        assert got == scope.UNSPECIFIED
    # The special ones never come out as dialable unicast, whatever their spelling.
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    assert scope.url_scope(f"http://{host}:7411/v1/signal") == got


@given(st.ip_addresses(v=4, network="127.0.0.0/8") | st.ip_addresses(v=4, network="169.254.0.0/16")
       | st.ip_addresses(v=6, network="fe80::/10") | st.ip_addresses(v=6, network="ff00::/8")
       | st.ip_addresses(v=4, network="224.0.0.0/4") | st.ip_addresses(v=4, network="0.0.0.0/8"))
def test_special_addresses_are_never_dialed_for_a_plain_node(
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    p = peering()
    refused = p.learn(X, [f"http://{host}:7411/v1/signal"], Source.RECORD)
    assert len(refused) == 1
    assert p.candidates[X.hex()].urls == ()
    assert p.due(0, 0, relay_never) == []


def test_scopes_of_hosts_and_names() -> None:
    cases = {
        "127.0.0.1": scope.LOOPBACK, "[::1]": scope.LOOPBACK, "::ffff:127.0.0.2": scope.LOOPBACK,
        "localhost": scope.LOOPBACK, "a.localhost.": scope.LOOPBACK,
        "169.254.1.2": scope.LINK_LOCAL, "fe80::1%eth0": scope.LINK_LOCAL,
        "0.0.0.0": scope.UNSPECIFIED, "::": scope.UNSPECIFIED, "0.1.2.3": scope.UNSPECIFIED,
        "224.0.0.251": scope.MULTICAST, "ff02::fb": scope.MULTICAST,
        "255.255.255.255": scope.MULTICAST, "240.0.0.1": scope.RESERVED,
        "printer.local": scope.MDNS, "127.1": scope.NUMERIC, "0x7f.1": scope.NUMERIC,
        "2130706433": scope.NUMERIC, "example.0x10": scope.NUMERIC,
        "node.example.org": scope.NAME, "cafe.de": scope.NAME, "1.2.3.example": scope.NAME,
        "192.168.1.20": scope.UNICAST, "10.0.0.1": scope.UNICAST, "2001:db8::1": scope.UNICAST,
        "198.51.100.7": scope.UNICAST,
    }
    assert {host: scope.host_scope(host) for host in cases} == cases
    assert scope.url_scope("ftp://192.0.2.1/") is None
    assert scope.url_scope("http://192.0.2.1:99999/") is None


def test_a_node_that_uses_loopback_may_dial_loopback() -> None:
    assert scope.allowed_scopes(["0.0.0.0", "10.0.0.5"]) == scope.ALWAYS
    assert scope.allowed_scopes(["127.0.0.1"]) == scope.ALWAYS | {scope.LOOPBACK}
    assert scope.allowed_scopes(["http://[fe80::1]:7411/v1/signal", "::1"]) == \
        scope.ALWAYS | {scope.LOOPBACK, scope.LINK_LOCAL}
    # Never the scopes that are no destination at all.
    assert scope.allowed_scopes(["0.0.0.0", "224.0.0.1", "::"]) == scope.ALWAYS
    p = peering(scopes=scope.allowed_scopes(["127.0.0.1"]))
    assert p.learn(X, ["http://127.0.0.1:7411/v1/signal", "http://169.254.0.9:7411/v1/signal"],
                   Source.RECORD) == [("http://169.254.0.9:7411/v1/signal", scope.LINK_LOCAL)]
    assert p.candidates[X.hex()].urls == ("http://127.0.0.1:7411/v1/signal",)


def test_an_out_of_scope_url_is_reported_once() -> None:
    p = peering()
    bad = "http://127.0.0.1:7411/v1/signal"
    assert p.learn(X, [bad, URL], Source.RECORD) == [(bad, scope.LOOPBACK)]
    assert p.learn(X, [bad, URL], Source.RECORD) == []
    assert p.candidates[X.hex()].urls == (URL,)


def test_the_operator_s_own_urls_are_not_scoped() -> None:
    p = peering()
    assert p.learn(X, ["http://127.0.0.1:7411/v1/signal"], Source.BOOTSTRAP) == []
    (dial,) = p.due(0, 0, relay_never)
    assert dial.url == "http://127.0.0.1:7411/v1/signal" and not dial.announced


def test_announced_urls_are_marked_and_the_operator_s_are_not() -> None:
    p = peering()
    p.learn(None, [URL], Source.BOOTSTRAP)
    p.learn(X, [URL, "http://192.0.2.11:7411/v1/signal"], Source.RECORD)
    cand = p.candidates[X.hex()]
    # The id-less bootstrap entry became X's, and its URL stays the operator's.
    assert list(p.candidates) == [X.hex()] and cand.source is Source.BOOTSTRAP
    assert cand.announced == {"http://192.0.2.11:7411/v1/signal"}
    (dial,) = p.due(0, 0, relay_never)
    assert (dial.url, dial.announced) == (URL, False)
    p.dial_failed(dial.key, 0)
    (dial,) = p.due(10**6, 0, relay_never)
    assert (dial.url, dial.announced) == ("http://192.0.2.11:7411/v1/signal", True)


# -- dial budgets ---------------------------------------------------------------------


def fail_everything(p: Peering, until: int, step: int = 100) -> list[tuple[int, Dial]]:
    """Step time by `step` ms, failing every dial at once; return (time, dial)."""
    made = []
    for now in range(0, until, step):
        for dial in p.due(now, 0, relay_never):
            made.append((now, dial))
            p.dial_failed(dial.key, now)
    return made


def test_a_hostile_record_gets_a_few_dials_a_minute() -> None:
    p = peering(backoff_base_ms=1, backoff_max_ms=1, forget_after=10**6)  # no backoff help
    p.learn(X, [f"http://192.0.2.{i}:7411/v1/signal" for i in range(1, 9)], Source.RECORD)
    made = fail_everything(p, 10 * 60_000)
    # 3 at once, then one every 20 s: 32 in ten minutes, not thousands.
    assert len(made) == 3 + (10 * 60_000 - 1) // 20_000
    assert [t for t, _ in made[:4]] == [0, 100, 200, 20_000]


def test_many_announcers_of_one_destination_share_its_budget() -> None:
    p = peering(backoff_base_ms=1, backoff_max_ms=1, forget_after=10**6, low=64,
                max_dialing=64)
    for i in range(1, 50):
        p.learn(bytes([i]) * 32, ["http://192.0.2.99:8080/v1/signal"], Source.RECORD)
    made = fail_everything(p, 60_000)
    assert len(made) == 6 + (60_000 - 1) // 10_000


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 30_000)), min_size=1, max_size=60))
def test_announced_dials_stay_within_the_budget(
        plan: list[tuple[int, int]]) -> None:
    """Whatever fails when: per announcer at most 3 + elapsed / 20 s dials, and per
    destination at most 6 + elapsed / 10 s."""
    p = peering(low=16, max_dialing=16, forget_after=10**6)
    for i in range(6):
        p.learn(bytes([i + 1]) * 32, [f"http://192.0.2.{i % 2}:7411/v1/signal",
                                      "http://192.0.2.50:7411/v1/signal"], Source.RECORD)
    now = 0
    made: list[tuple[int, Dial]] = []
    for who, step in plan:
        now += step
        for dial in p.due(now, 0, relay_never):
            made.append((now, dial))
            if dial.key != (bytes([who + 1]) * 32).hex():
                p.dial_failed(dial.key, now)
            else:  # this one connects, then drops at once
                conn = now * 100 + who
                p.link_opened(dial, conn, now)
                p.session_up(conn, bytes([who + 1]) * 32, now)
                p.session_down(conn, now)
    for key in {d.key for _, d in made}:
        assert sum(d.key == key for _, d in made) <= 3 + now // 20_000
    for url in {d.url for _, d in made}:
        assert sum(d.url == url for _, d in made) <= 6 + now // 10_000


# -- forgetting -----------------------------------------------------------------------


def test_a_candidate_only_records_vouch_for_is_forgotten_after_repeated_failures() -> None:
    p = peering(forget_after=4, forget_for_ms=3_600_000)
    p.learn(X, [URL], Source.RECORD)
    p.learn(Y, ["http://192.0.2.20:7411/v1/signal"], Source.BOOTSTRAP)
    now, failures = 0, 0
    waits = []
    while X.hex() in p.candidates:
        dials = [d for d in p.due(now, 0, relay_never) if d.node_id == X]
        for dial in dials:
            p.dial_failed(dial.key, now)
            failures += 1
            if X.hex() in p.candidates:
                waits.append(p.candidates[X.hex()].next_attempt - now)
        for dial in p.due(now, 0, relay_never):
            p.dial_failed(dial.key, now)  # Y fails as often
        now += 500
    assert failures == 4 and waits == [1_000, 2_000, 4_000]  # exponential, then gone
    p.learn(X, [URL], Source.RECORD, now)  # the same record again: still forgotten
    assert X.hex() not in p.candidates
    p.learn(X, [URL, "http://192.0.2.30:7411/v1/signal"], Source.RECORD, now)  # news
    assert X.hex() in p.candidates
    assert Y.hex() in p.candidates  # the operator's entries are never forgotten


def test_a_forgotten_record_comes_back_after_the_forget_time() -> None:
    p = peering(forget_after=1, forget_for_ms=1_000)
    p.learn(X, [URL], Source.RECORD)
    (dial,) = p.due(0, 0, relay_never)
    p.dial_failed(dial.key, 0)
    p.learn(X, [URL], Source.RECORD, 999)
    assert X.hex() not in p.candidates
    p.learn(X, [URL], Source.RECORD, 1_000)
    assert X.hex() in p.candidates


def test_a_relay_only_peer_that_left_is_not_redialed_without_a_relay_path() -> None:
    p = peering(forget_after=3)
    p.learn(Y, [URL], Source.BOOTSTRAP)
    (dial,) = p.due(0, 0, relay_never)
    p.link_opened(dial, 1, 0)
    p.session_up(1, Y, 0)  # a peer we can relay through
    p.session_up(2, X, 0)  # a browser tab: it dialed us, it has no URL
    p.session_down(2, 0)  # and left
    now, dialed = 0, []
    while X.hex() in p.candidates and now < 10**6:
        now += 500
        dialed += p.due(now, 1, relay_never)
    assert dialed == [] and X.hex() not in p.candidates  # looked at less and less, gone
    # While a peer still links to it, it is redialed by relay.
    p.session_up(3, Z, now)
    p.session_down(3, now)
    (dial,) = p.due(now + 2_000, 1, relay_always)
    assert (dial.node_id, dial.url) == (Z, None)


def test_a_node_known_from_its_record_alone_is_dialed_by_relay() -> None:
    p = peering()
    p.learn(X, [], Source.RECORD)
    assert p.due(0, 1, relay_never) == [Dial(X.hex(), X, None)]


# -- expected ids ---------------------------------------------------------------------


def test_a_dial_that_reaches_another_node_keeps_it_and_backs_off() -> None:
    p = peering(low=2)
    p.learn(X, [URL], Source.BOOTSTRAP)  # the list says X; Y answers there now
    (dial,) = p.due(0, 0, relay_never)
    p.link_opened(dial, 1, 0)
    verdict = p.session_up(1, Y, 0)
    assert verdict is not None and (verdict.url, verdict.expected, verdict.actual,
                                    verdict.first) == (URL, X, Y, True)
    assert p.is_connected(Y) and p.candidates[Y.hex()].connected
    cand = p.candidates[X.hex()]
    assert (cand.failures, cand.next_attempt, cand.connected) == (1, 1_000, False)
    # While Y is connected, that URL leads to Y: X is not dialed there, and no timer spins.
    for now in range(0, 200_000, 250):
        assert p.due(now, 1, relay_never) == []
        timer = p.timer()
        assert timer is None or timer > now
    # Y leaves: X's URL is tried again, and it is Y again: said quietly this time.
    p.session_down(1, 200_000)
    (dial,) = p.due(300_000, 0, relay_never)
    assert dial.url == URL
    p.link_opened(dial, 2, 300_000)
    again = p.session_up(2, Y, 300_000)
    assert again is not None and not again.first
    assert p.candidates[X.hex()].failures == 2  # backoff keeps growing
    assert X.hex() in p.candidates  # the operator's entry is never forgotten


def test_the_expected_node_clears_the_url() -> None:
    p = peering()
    p.learn(X, [URL], Source.BOOTSTRAP)
    (dial,) = p.due(0, 0, relay_never)
    p.link_opened(dial, 1, 0)
    assert p.session_up(1, Y, 0) is not None
    p.session_down(1, 10)
    (dial,) = p.due(10_000, 0, relay_never)
    p.link_opened(dial, 2, 10_000)
    assert p.session_up(2, X, 10_000) is None  # X is back at its URL
    assert p.candidates[X.hex()].failures == 0


def test_a_link_that_closes_before_its_session_opens_is_a_failure() -> None:
    p = peering()
    p.learn(X, [URL], Source.BOOTSTRAP)
    for n in range(1, 5):
        (dial,) = p.due(10**7 * n, 0, relay_never)
        p.link_opened(dial, n, 10**7 * n)
        p.session_down(n, 10**7 * n)  # e.g. HELLO refused: wrong network
        assert p.candidates[X.hex()].failures == n  # it used to redial every second


def test_a_duplicate_session_does_not_mark_the_peer_gone() -> None:
    p = peering()
    p.session_up(1, X, 0)
    p.session_up(2, X, 0)  # a crossing dial (sync.md §4.2 closes one of them)
    p.session_down(1, 0)
    assert p.is_connected(X) and p.candidates[X.hex()].connected
    p.session_down(2, 0)
    assert not p.candidates[X.hex()].connected


def one_peer_of_two() -> tuple[Peering, Dial]:
    """A node with `low` = 1 that knows two candidates and is connected to one."""
    p = peering(low=1)
    p.learn(X, [URL], Source.BOOTSTRAP)
    p.learn(Y, ["http://192.0.2.20:7411/v1/signal"], Source.BOOTSTRAP)
    (dial,) = p.due(0, 0, relay_never)
    p.link_opened(dial, 1, 0)
    p.session_up(1, dial.node_id or b"", 0)
    return p, dial


def test_no_timer_due_while_enough_peers() -> None:
    """With `low` peers, a due candidate must not make the node's timer fire at once,
    again and again (a daemon spun at 100% CPU)."""
    p, _ = one_peer_of_two()
    assert p.due(0, 1, relay_never) == []
    # Only the next exploring dial (peering.py), half a period away at the soonest.
    assert (p.timer() or 0) >= p.config.explore_ms // 2
    assert p.due(1_000, 1, relay_never) == []
    p.session_down(1, 5)
    p.due(5, 0, relay_never)
    assert p.timer() is not None


def test_a_peer_announcing_another_node_s_url_does_not_block_it() -> None:
    """Only a dial that reached a node is evidence of where it is: Y announcing X's URL
    (the bootstrap node's) must not keep us from dialing X there."""
    p = peering()
    p.learn(X, [URL], Source.BOOTSTRAP)
    p.session_up(1, Y, 0)
    p.learn(Y, [URL], Source.RECORD)
    (dial,) = p.due(0, 1, relay_never)
    assert (dial.node_id, dial.url) == (X, URL)


def test_between_the_marks_a_random_candidate_is_dialed_now_and_then() -> None:
    """Exploring dials join the halves of a healed partition: with `low` peers and room
    below `high`, one random candidate is dialed every `explore_ms` (jittered)."""
    p, dial = one_peer_of_two()
    assert p.due(0, 1, relay_never) == []
    when = p.timer()
    assert when is not None
    (explore,) = p.due(when, 1, relay_never)
    assert explore.node_id != dial.node_id
    # Not at the high mark.
    q = peering(low=1, high=1)
    q.learn(X, [URL], Source.BOOTSTRAP)
    assert q.due(0, 1, relay_never) == [] and q.due(10**9, 1, relay_never) == []


def two_peers_of_three() -> Peering:
    """A node with `low` = 1 connected to X and Y, that knows Z too."""
    p = peering(low=1)
    for i, node in enumerate((X, Y, Z)):
        p.learn(node, [f"http://192.0.2.{10 + i}:7411/v1/signal"], Source.BOOTSTRAP)
    p.session_up(1, X, 0)
    p.session_up(2, Y, 0)
    return p


def exploring_waits(p: Peering, peers: int, now: int, count: int) -> list[int]:
    """The waits between the next `count` exploring dials of a node with `peers` open
    sessions (each dial failing), from `now`."""
    waits = []
    for _ in range(count):
        assert p.due(now, peers, relay_never) == []
        when = p.timer()
        assert when is not None
        dials = p.due(when, peers, relay_never)
        assert len(dials) == 1
        p.dial_failed(dials[0].key, when)
        waits.append(when - now)
        now = when
    return waits


def test_a_lost_session_brings_the_next_exploring_dial_forward() -> None:
    """A node that keeps `low` peers on its own side of a healed partition has no way
    back to the rest but its exploring dials: 15-45 s away, it sat in an island of three
    for 19 s in the seed sweep (seed 472). A session lost (not closed as surplus) brings
    the next exploring dial to `explore_first_ms`, and each wait then doubles back to
    `explore_ms` (transport.md §7.2)."""
    p = two_peers_of_three()
    first, every = p.config.explore_first_ms, p.config.explore_ms
    assert p.due(1_000, 2, relay_never) == []
    assert p.timer() == 1_000 + every  # rand 0.5: no jitter
    connections = Connections(cast(Mesh, None), p)  # a close touches no mesh
    connections.on_event(PeerDown(2, Y, CloseReason.TIMEOUT, "", True), 1_000)  # Y gone
    assert exploring_waits(p, 1, 1_000, 6) == [first, 2 * first, 4 * first, 8 * first,
                                               every, every]


def test_a_session_closed_as_surplus_changes_no_exploring_wait() -> None:
    """Either end closing a session as `too_many_peers` is the mesh's own churn: were it
    to hasten exploring, a shed node's dial could make another node shed, and so on."""
    for shed in (True, False):
        p = two_peers_of_three()
        assert p.due(1_000, 2, relay_never) == []
        connections = Connections(cast(Mesh, None), p)  # a close touches no mesh
        connections.on_event(PeerDown(2, Y, CloseReason.TOO_MANY_PEERS, "", shed), 1_000)
        assert p.due(1_000, 1, relay_never) == []
        assert p.timer() == 1_000 + p.config.explore_ms
