"""Connection manager decisions (core/peering.py): marks, backoff with jitter, surplus."""

from __future__ import annotations

from liberation_node.core.candidates import Source
from liberation_node.core.peering import Dial, Peering, PeeringConfig
from liberation_node.core.scoring import Penalty, id_key

ME = b"\x00" * 32


def ids(n: int) -> list[bytes]:
    return [bytes([i + 1]) * 32 for i in range(n)]


def no_relay(node_id: bytes) -> bool:
    return False


_conns = iter(range(1, 10**9))


def connect(p: Peering, peer: bytes, dial: Dial | None = None, now: int = 0) -> int:
    """A session with `peer` opens (on a link we dialed for `dial`, or answered)."""
    conn = next(_conns)
    if dial is not None:
        p.link_opened(dial, conn, now)
    assert p.session_up(conn, peer, now) is None
    return conn


def test_dials_up_to_the_low_mark_preferring_bootstrap() -> None:
    p = Peering(ME, PeeringConfig(low=2, high=4), rand=lambda: 0.5)
    a, b, c = ids(3)
    p.learn(a, ["http://192.0.2.1:7411/v1/signal"], Source.RECORD)
    p.learn(b, ["http://192.0.2.2:7411/v1/signal"], Source.BOOTSTRAP)
    p.learn(c, [], Source.RECORD)
    p.learn(ME, ["http://self"], Source.RECORD)  # never ourselves
    dials = p.due(0, peer_count=0, relay_path=no_relay)
    assert [d.node_id for d in dials] == [b, a]
    assert p.due(0, peer_count=0, relay_path=no_relay) == []  # two already dialing
    connect(p, b, dials[0])
    p.dial_failed(a.hex(), now=0)
    (relayed,) = p.due(0, peer_count=1, relay_path=no_relay)  # c: by relay, through b
    assert (relayed.node_id, relayed.url) == (c, None)


def test_backoff_grows_with_jitter_and_caps() -> None:
    p = Peering(ME, PeeringConfig(backoff_base_ms=1000, backoff_max_ms=8000), rand=lambda: 0.5)
    (a,) = ids(1)
    p.learn(a, ["u"], Source.BOOTSTRAP)
    waits = []
    now = 0
    for _ in range(6):
        [dial] = p.due(now, 0, relay_path=no_relay)
        p.dial_failed(dial.key, now)
        waits.append(p.candidates[dial.key].next_attempt - now)
        assert p.due(now, 0, relay_path=no_relay) == []  # not before its time
        now = p.candidates[dial.key].next_attempt
    assert waits == [1000, 2000, 4000, 8000, 8000, 8000]
    jittery = Peering(ME, PeeringConfig(), rand=lambda: 0.0)
    jittery.learn(a, ["u"], Source.BOOTSTRAP)
    jittery.due(0, 0, relay_path=no_relay)
    jittery.dial_failed(a.hex(), 0)
    assert jittery.candidates[a.hex()].next_attempt == 500


def test_reconnects_after_a_drop_and_sheds_the_worst() -> None:
    p = Peering(ME, PeeringConfig(low=1, high=2), rand=lambda: 0.5)
    a, b, c = ids(3)
    p.learn(a, ["u"], Source.BOOTSTRAP)
    conn = connect(p, a)
    p.session_down(conn, now=10_000)  # e.g. a partition
    assert p.due(10_000, 0, relay_path=no_relay) == []
    assert p.timer() == 11_000
    assert [d.node_id for d in p.due(11_000, 0, relay_path=no_relay)] == [a]
    p.scores.penalize(id_key(c), Penalty.INVALID_INPUT, 11_000)
    assert p.surplus({a: 10, b: 300, c: 5}, 11_000) == [c]
    assert p.surplus({a: 10, b: 300}, 11_000) == []
    assert p.surplus({a: 10, b: 300, c: None, bytes(32): 1}, 11_000) == [c, b]


def test_an_unknown_rtt_counts_as_the_worst() -> None:
    """Issue 9, finding 6: a peer that never answers PING used to count as the fastest
    (unknown as 0 ms) and was shed last; now it is shed first (once past the newcomers'
    grace, when it has had time to answer)."""
    p = Peering(ME, PeeringConfig(high=2, newcomer_grace_ms=10_000), rand=lambda: 0.5)
    a, b, c = ids(3)
    for peer in (a, b, c):
        connect(p, peer)  # they dialed us: strangers, nothing protects them
    assert p.surplus({a: 10, b: 600_000, c: None}, 10_000) == [c]


def test_protected_slots_keep_vouched_and_long_lived_peers() -> None:
    """Eclipse resistance (transport.md §7.8): peers from the bootstrap list and links
    open for long are not shed for strangers, however fast those answer."""
    p = Peering(ME, PeeringConfig(high=3, protected=2, long_lived_ms=60_000),
                rand=lambda: 0.5)
    boot, old, x, y, z = ids(5)
    p.learn(boot, ["http://boot/v1/signal"], Source.BOOTSTRAP)
    [dial] = p.due(0, 0, relay_path=no_relay)
    connect(p, boot, dial, now=0)
    connect(p, old, now=0)
    for sybil in (x, y, z):
        connect(p, sybil, now=50_000)
    rtts = {boot: 900, old: 800, x: 1, y: 1, z: 1}
    assert p.protected(rtts, 59_999) == {boot}  # `old` is not long-lived yet
    assert set(p.surplus(rtts, 59_999)) == {old, x}  # the slowest, then the smaller id
    assert p.protected(rtts, 60_000) == {boot, old}
    assert set(p.surplus(rtts, 60_000)) == {x, y}


def test_a_banned_node_is_not_dialed_until_its_ban_ends() -> None:
    p = Peering(ME, PeeringConfig(low=1), rand=lambda: 0.5)
    (a,) = ids(1)
    p.learn(a, ["u"], Source.BOOTSTRAP)
    ban = p.scores.penalize(id_key(a), Penalty.MISBEHAVING, 0, times=2)
    assert ban is not None and ban.until == 60_000
    assert p.due(0, 0, relay_path=no_relay) == []
    assert p.timer() == 60_000
    assert [d.node_id for d in p.due(60_000, 0, relay_path=no_relay)] == [a]


def test_urls_rotate_on_failure_and_bootstrap_urls_stay_first() -> None:
    p = Peering(ME, PeeringConfig(low=1), rand=lambda: 0.5)
    (a,) = ids(1)
    p.learn(a, ["http://boot/v1/signal"], Source.BOOTSTRAP)
    p.learn(a, ["http://192.0.2.7:7411/v1/signal"], Source.RECORD)  # what it advertises
    assert p.candidates[a.hex()].urls[0] == "http://boot/v1/signal"
    first = p.due(0, 0, relay_path=no_relay)[0]
    p.dial_failed(first.key, 0)
    second = p.due(10**6, 0, relay_path=no_relay)[0]
    assert (first.url, second.url) == ("http://boot/v1/signal", "http://192.0.2.7:7411/v1/signal")


def test_an_id_less_bootstrap_entry_becomes_the_peer_it_reached() -> None:
    p = Peering(ME, PeeringConfig(low=1), rand=lambda: 0.5)
    (a,) = ids(1)
    p.learn(None, ["http://boot/v1/signal"], Source.BOOTSTRAP)
    (dial,) = p.due(0, 0, relay_path=no_relay)
    conn = connect(p, a, dial)
    assert list(p.candidates) == [a.hex()]
    assert p.candidates[a.hex()].urls == ("http://boot/v1/signal",)
    assert p.candidates[a.hex()].source is Source.BOOTSTRAP
    p.session_down(conn, now=0)
    # After the link drops, it is dialed again (it used to stay "dialing" for ever).
    again = p.due(10**6, 0, relay_path=no_relay)
    assert [d.url for d in again] == ["http://boot/v1/signal"]


# -- mDNS candidates (protocols/discovery.md §6) ---------------------------------------------


def test_an_mdns_candidate_that_keeps_failing_is_forgotten_sooner() -> None:
    """Its record may be a dead node's, cached for an hour (protocols/discovery.md §6)."""
    p = Peering(ME, PeeringConfig(mdns_max_failures=3, forget_after=8), rand=lambda: 0.5)
    lan, listed, announced = ids(3)
    p.learn(lan, ["http://198.18.1.12:7411/v1/signal"], Source.MDNS)
    p.learn(listed, ["http://192.0.2.1:7411/v1/signal"], Source.BOOTSTRAP)
    p.learn(announced, ["http://192.0.2.2:7411/v1/signal"], Source.RECORD)
    forgotten = []
    now = 0
    for _ in range(5):
        for dial in p.due(now, 0, relay_path=no_relay):
            p.dial_failed(dial.key, now)
        forgotten += p.lan_forgotten()
        now += 60_000
    assert forgotten == [lan]  # after three failures; the record's candidate after eight
    assert lan.hex() not in p.candidates
    assert listed.hex() in p.candidates and announced.hex() in p.candidates
    assert p.lan_forgotten() == []  # reported once
    # Its record (same URL) does not bring it back, but mDNS hearing it again does.
    p.learn(lan, ["http://198.18.1.12:7411/v1/signal"], Source.RECORD, now)
    assert lan.hex() not in p.candidates
    p.learn(lan, ["http://198.18.1.12:7411/v1/signal"], Source.MDNS, now)
    assert p.candidates[lan.hex()].failures == 0


def test_forget_drops_an_mdns_candidate_unless_connected_or_better_known() -> None:
    p = Peering(ME, PeeringConfig(), rand=lambda: 0.5)
    a, b, c = ids(3)
    for node in (a, b, c):
        p.learn(node, [f"http://198.18.1.{node[0]}:7411/v1/signal"], Source.MDNS)
    p.learn(c, ["http://192.0.2.1:7411/v1/signal"], Source.BOOTSTRAP)
    connect(p, b)
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
        first = [d.node_id for d in p.due(0, 0, relay_path=no_relay)]
        again = Peering(p.me, PeeringConfig(low=4), rand=lambda: 0.5)
        for node in reversed(lan):
            again.learn(node, [f"http://198.18.1.{node[0]}:7411/v1/signal"], Source.MDNS)
        assert [d.node_id for d in again.due(0, 0, relay_path=no_relay)] == first
        firsts.add(first[0])
    assert len(firsts) >= 4  # twenty nodes start with (at least four) different peers


class _CountingScans(dict[str, object]):
    scans = 0

    def values(self):  # type: ignore[override]
        self.scans += 1
        return super().values()


def test_a_full_table_with_nothing_to_drop_is_not_scanned_per_new_candidate() -> None:
    """Issue 9, finding 5: node.info records from thousands of fresh identities, each
    learned as a candidate into a full table with none that failed, cost a scan of every
    candidate each. Once nothing can be dropped, newcomers are refused without a scan,
    until a dial ends (which can make one droppable); then eviction works as before."""
    p = Peering(ME, PeeringConfig(max_candidates=50), rand=lambda: 0.5)
    known = [bytes([1, i]) + bytes(30) for i in range(50)]
    for node_id in known:
        p.learn(node_id, [], Source.RECORD)
    p.candidates = table = _CountingScans(p.candidates)  # type: ignore[assignment]
    for i in range(200):
        p.learn(bytes([2, i]) + bytes(30), [], Source.RECORD)
    assert len(p.candidates) == 50 and table.scans <= 1
    p.dial_failed(known[7].hex(), now=0)  # now one may go: the one that failed
    newcomer = bytes([3]) + bytes(31)
    p.learn(newcomer, [], Source.RECORD)
    assert newcomer.hex() in p.candidates and known[7].hex() not in p.candidates


def test_a_newcomer_is_kept_and_the_worst_established_peer_shed() -> None:
    """transport.md §7.6: a full node takes a newcomer and sheds its worst *other* peer.
    The newcomer is younger than its grace; its unknown RTT used to make it the worst,
    so a mesh of full nodes shed every node that dialed it, and a node whose bootstrap
    peers were full stayed cut off for the whole run (20 daemons, issue 10)."""
    p = Peering(ME, PeeringConfig(high=3, newcomer_grace_ms=10_000), rand=lambda: 0.5)
    a, b, c, new = ids(4)
    for peer in (a, b, c):
        connect(p, peer, now=0)
    connect(p, new, now=60_000)
    rtts: dict[bytes, int | None] = {a: 10, b: 300, c: 20, new: None}
    assert p.surplus(rtts, 60_000) == [b]  # the slowest established one
    assert p.surplus(rtts, 69_999) == [b]
    # Past the grace, a peer that still never answered a PING is the worst (§7.5).
    assert p.surplus(rtts, 70_000) == [new]
    # A newcomer that answered a PING is still one until its grace ends: a session that
    # knows no round trip measures one as it opens (sync.md §4.4), and a newcomer judged
    # by that first sample was shed one round trip after it came.
    assert p.surplus({**rtts, new: 900}, 60_000) == [b]
    assert p.surplus({**rtts, new: 900}, 70_000) == [new]
    assert p.replaceable(rtts, 60_000) == 3 and p.replaceable({**rtts, new: 900}, 60_000) == 3
    assert p.replaceable({**rtts, new: 900}, 70_000) == 4
    # Only newcomers: they are ranked among themselves.
    q = Peering(ME, PeeringConfig(high=1, newcomer_grace_ms=10_000), rand=lambda: 0.5)
    for peer in (a, b):
        connect(q, peer, now=0)
    assert q.surplus({a: None, b: None}, 1_000) == [a]
    assert q.replaceable({a: None, b: None}, 1_000) == 0


def test_a_peer_that_sheds_us_is_backed_off_like_a_refusal() -> None:
    """A `too_many_peers` close from the peer says what a 503 says: it is full. The
    dialer used to redial it after 0.5-1.5 s, be shed again, and so on for minutes,
    rather than try its other candidates."""
    p = Peering(ME, PeeringConfig(low=2, high=4, max_dialing=1), rand=lambda: 0.5)
    full, other = ids(2)
    p.learn(full, ["http://full/v1/signal"], Source.BOOTSTRAP)
    p.learn(other, ["http://192.0.2.2:7411/v1/signal"], Source.MDNS)
    later = p.candidates[other.hex()]
    later.next_attempt = 10**9  # not due: `full` (bootstrap) is the one dialed
    now, waits = 0, []
    for _ in range(4):
        [dial] = p.due(now, 0, relay_path=no_relay)
        assert dial.node_id == full
        conn = connect(p, full, dial, now)
        p.session_down(conn, now, shed=True)
        waits.append(p.candidates[full.hex()].next_attempt - now)
        now = p.candidates[full.hex()].next_attempt
        assert p.timer() == now  # with no peer left, it is dialed again then
        # With `other` due too, the node that shed us comes after it.
        later.next_attempt = now
        [dial] = p.due(now, 0, relay_path=no_relay)
        assert dial.node_id == other
        p.dial_failed(dial.key, now)
        later.failures, later.next_attempt = 0, 10**9
    assert waits == [1_000, 2_000, 4_000, 8_000]
    # A session it ends for another reason (or we end) forgets the sheds.
    [dial] = p.due(now, 0, relay_path=no_relay)
    conn = connect(p, full, dial, now)
    p.session_down(conn, now)
    assert p.candidates[full.hex()].shed == 0


def test_a_lone_node_refused_for_want_of_room_retries_at_the_first_step() -> None:
    """A full peer's 503 is no failure: the peer is alive. A node with no session at all
    retries it after the first backoff step every time (at boot, 2 of 300 simulated nodes
    were still alone after 4 s, backing off 1, 2, 4 s from refusals), is never made to
    forget it, and a node that has peers backs off from it as from a shed."""
    p = Peering(ME, PeeringConfig(low=2, high=4, max_dialing=1, mdns_max_failures=3),
                rand=lambda: 0.5)
    full, friend = ids(2)
    p.learn(full, ["http://192.0.2.1:7411/v1/signal"], Source.MDNS)
    now = 0
    for _ in range(6):  # more refusals than `forget_after` failures
        [dial] = p.due(now, 0, relay_path=no_relay)
        assert dial.node_id == full
        p.dial_failed(dial.key, now, full=True)
        cand = p.candidates[full.hex()]
        assert cand.next_attempt - now == 1_000 and cand.failures == 0
        now = cand.next_attempt
    assert full.hex() in p.candidates  # an mDNS candidate, not forgotten: it answered
    # With a peer, the refusals in a row count as sheds do: the 7th, 64 s, capped at 60 s.
    connect(p, friend)
    [dial] = p.due(now, 1, relay_path=no_relay)
    p.dial_failed(dial.key, now, full=True)
    assert p.candidates[full.hex()].next_attempt - now == 60_000
