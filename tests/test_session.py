"""The session state machine (protocols/sync.md §4): handshake checks, close reasons, limits."""

from __future__ import annotations

import pytest

from liberation_node.core import frames
from liberation_node.core.events import PeerDown, PeerUp
from liberation_node.core.frames import Hello, Ping, Pong
from liberation_node.core.mesh import MeshConfig
from liberation_node.core.session import (
    TRANSITIONS,
    Input,
    Session,
    SessionClosed,
    SessionConfig,
    State,
)

from .history import NETWORK, T0, identity
from .meshnet import Net

A, B = identity(0), identity(1)


def downs(net: Net, node: int) -> list[PeerDown]:
    return [e for e in net.events[node] if isinstance(e, PeerDown)]


def test_table_covers_exactly_the_legal_moves() -> None:
    assert TRANSITIONS[(State.HANDSHAKE, Input.HELLO_OK)] is State.OPEN
    assert (State.HANDSHAKE, Input.FRAME) not in TRANSITIONS  # frames wait for HELLO
    assert (State.OPEN, Input.HELLO_OK) not in TRANSITIONS  # one HELLO per session
    assert all(src is not State.CLOSED for src, _ in TRANSITIONS)


def test_hello_signed_for_another_connection_is_refused() -> None:
    # A relay that re-plays a peer's HELLO on another connection: the binding differs.
    net = Net.of([A, B])
    net.connect(0, 1, binding=b"connection-one", binding_b=b"connection-two")
    assert [d.reason for d in downs(net, 0)] == ["bad_binding"]
    assert [d.reason for d in downs(net, 1)] == ["bad_binding"]
    assert not any(isinstance(e, PeerUp) for e in net.events[0] + net.events[1])


def test_wrong_network_and_version() -> None:
    net = Net.of([A, B])
    net.meshes[1].network = "othernet"  # as if B were configured for another network
    net.connect(0, 1)
    assert downs(net, 0)[0].reason == "wrong_network"
    session = Session(A, NETWORK, b"x", T0, SessionConfig(), nonce=1)
    hello = Hello(2, NETWORK, B.public_key, B.sign(b"liberation-node/hello/v1\x00x"), "future")
    with pytest.raises(SessionClosed) as info:
        session.receive(frames.encode(hello), T0)
    assert info.value.reason == "unsupported_version"


def test_frame_before_hello_and_garbage_close_with_protocol_error() -> None:
    for data in (frames.encode(Ping(1)), b"\xc1\xc1", b"\x92\x63\x00"):
        session = Session(A, NETWORK, b"x", T0, SessionConfig(), nonce=1)
        with pytest.raises(SessionClosed) as info:
            session.receive(data, T0)
        assert info.value.reason == "protocol_error" and not info.value.by_peer
        assert session.state is State.CLOSED
        # The last thing we send is a CLOSE with the reason.
        last = frames.decode(session.take_output()[-1])
        assert isinstance(last, frames.Close) and last.reason == "protocol_error"


def test_self_connection() -> None:
    net = Net.of([A, A])
    net.connect(0, 1)
    assert {d.reason for d in downs(net, 0) + downs(net, 1)} == {"self_connection"}


def test_inbound_rate_limit() -> None:
    config = SessionConfig(max_frames_per_s=10, burst_s=1.0)
    session = Session(A, NETWORK, b"x", T0, config, nonce=1)
    hello = Hello(1, NETWORK, B.public_key, B.sign(b"liberation-node/hello/v1\x00x"), "t")
    session.receive(frames.encode(hello), T0)
    with pytest.raises(SessionClosed) as info:
        for i in range(20):
            session.receive(frames.encode(Ping(i)), T0)
    assert info.value.reason == "rate_limited"
    # At the sustained rate it is fine.
    session = Session(A, NETWORK, b"x", T0, config, nonce=1)
    session.receive(frames.encode(hello), T0)
    for i in range(100):
        session.receive(frames.encode(Ping(i)), T0 + 100 * i)


def test_duplicate_connections_keep_the_same_one_on_both_ends() -> None:
    net = Net.of([A, B], MeshConfig())
    net.connect(0, 1)
    net.connect(1, 0)  # both dialed each other
    assert len(net.meshes[0].peers()) == 1 and len(net.meshes[1].peers()) == 1
    kept_a = next(iter(net.meshes[0].peers()))
    kept_b = next(iter(net.meshes[1].peers()))
    assert net.links[(0, kept_a)] == (1, kept_b)
    assert {d.reason for d in downs(net, 0) + downs(net, 1)} == {"duplicate_peer"}


def test_a_pong_carries_the_clock_and_gives_the_offset() -> None:
    """sync.md §4.4: offset = the peer's clock minus the midpoint of our ping's round trip."""
    a = Session(A, NETWORK, b"bind", T0, SessionConfig(), nonce=1)
    b = Session(B, NETWORK, b"bind", T0, SessionConfig(), nonce=2)
    for data in a.take_output():
        b.receive(data, T0)
    for data in b.take_output():
        a.receive(data, T0)
    a.handle_timer(T0 + 1_000)  # silent for a second: a pings
    [ping] = a.take_output()
    b.receive(ping, T0 + 1_000 + 300_000)  # b's clock runs five minutes ahead
    [pong] = b.take_output()
    assert frames.decode(pong) == Pong(frames.decode(ping).nonce, T0 + 301_000)
    a.receive(pong, T0 + 1_040)
    assert a.rtt_ms == 40
    assert a.clock_offset_ms == 300_000 - 20


def test_a_session_that_knows_no_round_trip_pings_as_it_opens() -> None:
    """sync.md §4.4: the answerer of a connection (and a dial made by relay) has no
    round-trip estimate; it used to wait for its first silence, up to `measure_every_ms`
    on a busy link, with the timers that scale with the RTT at their floors. It pings as
    it opens and knows the round trip one later; a dialer that timed its offer does not."""
    hello = Hello(1, NETWORK, B.public_key, B.sign(b"liberation-node/hello/v1\x00x"), "t")
    for hint in (None, 80):
        session = Session(A, NETWORK, b"x", T0, SessionConfig(), nonce=1, rtt_hint=hint)
        session.take_output()  # our HELLO
        session.receive(frames.encode(hello), T0 + 10)
        session.handle_timer(T0 + 10)
        sent = [frames.decode(data) for data in session.take_output()]
        if hint is not None:
            assert sent == [] and session.rtt_estimate_ms == 80
            continue
        [ping] = sent
        assert isinstance(ping, Ping) and session.rtt_estimate_ms is None
        session.receive(frames.encode(Pong(ping.nonce, T0 + 40)), T0 + 70)
        assert session.rtt_ms == 60


def test_both_ends_measure_the_link_though_one_pings_more_often() -> None:
    """sync.md §4.4: a PING goes out after a little silence, and a PONG breaks silence.
    The end with the shorter silence pings; the other answered each PING and so never
    fell silent long enough to ping: it never learnt the round-trip time or the clock
    offset (seen between two daemons whose offsets stayed unknown). Each end pings at
    least every `measure_every_ms`, busy or not."""
    a = Session(A, NETWORK, b"bind", T0, SessionConfig(), nonce=1)  # waits 1,000 ms
    b = Session(B, NETWORK, b"bind", T0, SessionConfig(), nonce=1023)  # 751-1,000 ms
    now = T0

    def exchange() -> None:
        while True:
            moved = False
            for src, dst in ((a, b), (b, a)):
                out = src.take_output()
                if out:
                    src.note_sent(now)  # as the mesh does for whatever goes out
                for data in out:
                    dst.receive(data, now)
                    moved = True
            if not moved:
                return

    exchange()
    while now < T0 + 20_000:
        now = min(t for t in (a.timer(), b.timer()) if t is not None)
        for s in (a, b):
            timer = s.timer()
            if timer is not None and timer <= now:
                s.handle_timer(now)
        exchange()
    assert a.state is State.OPEN and b.state is State.OPEN
    assert b.rtt_ms is not None and b.clock_offset_ms == 0
    assert a.rtt_ms is not None and a.clock_offset_ms == 0
