"""Connection manager decisions (core/peering.py): marks, backoff with jitter, surplus."""

from __future__ import annotations

from liberation_node.core.peering import Dial, Peering, PeeringConfig, Source

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
    p.misbehaved(c)
    assert p.surplus({a: 10, b: 300, c: 5}) == [c]
    assert p.surplus({a: 10, b: 300}) == []
    assert p.surplus({a: 10, b: 300, c: None, bytes(32): 1}) == [c, b]


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
