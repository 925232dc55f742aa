"""Work per input in proportion to what the input touched (issue 10, Build item 4).

The daemon and the simulator ask the engine and the connection manager the same
questions after every input: how many peers are open, which links have a backlog,
what is due to be dialed, when the next timer is. These tests check the answers
against a from-scratch computation and check that asking again, when nothing
changed, does not walk every peer or every candidate.
"""

from __future__ import annotations

from collections.abc import ValuesView

from liberation_node.core import frames
from liberation_node.core.bodies import Post
from liberation_node.core.candidates import Candidate, Source
from liberation_node.core.connections import Connections
from liberation_node.core.frames import Want
from liberation_node.core.mesh import Mesh
from liberation_node.core.peering import Peering, PeeringConfig
from liberation_node.core.scoring import Penalty, id_key
from liberation_node.core.session import CloseReason

from .history import identity
from .meshnet import Net

ME = b"\x00" * 32


def _open(mesh: Mesh) -> int:
    return len(mesh.peers())


def test_the_open_count_follows_every_session_change() -> None:
    net = Net.of([identity(i) for i in range(4)])
    hub = net.meshes[0]
    assert hub.peer_count() == 0
    c1, _ = net.connect(0, 1)
    c2, _ = net.connect(0, 2)
    assert hub.peer_count() == _open(hub) == 2
    hub.close(c1, CloseReason.TOO_MANY_PEERS)  # closed by us: counted out at once
    assert hub.peer_count() == _open(hub) == 1
    net.pump()
    assert hub.peer_count() == _open(hub) == 1
    c30, _ = net.connect(3, 0)
    assert hub.peer_count() == _open(hub) == 2
    net.meshes[3].close(c30, CloseReason.SHUTDOWN)  # closed by the peer
    net.pump()
    assert hub.peer_count() == _open(hub) == 1
    net.lose(0, 2)  # the transport went
    assert hub.peer_count() == _open(hub) == 0
    assert c2 not in hub.peers()


def test_a_duplicate_session_is_not_counted_twice() -> None:
    net = Net.of([identity(0), identity(1)])
    net.connect(0, 1)
    net.connect(1, 0)  # both dialed: one of the two is closed (sync.md §4.2)
    net.pump()
    for mesh in net.meshes:
        assert mesh.peer_count() == _open(mesh) == 1


def test_a_handshake_is_not_counted_until_hello() -> None:
    net = Net.of([identity(0), identity(1)])
    net.meshes[0].connection_made(99, b"x" * 16, net.now, initiator=True)
    assert net.meshes[0].peer_count() == 0


def test_backlogged_is_every_link_with_answers_owed() -> None:
    net = Net.of([identity(i) for i in range(3)])
    server = net.meshes[1]
    writer = identity(5)  # a third author's feed: served at once (not an own feed)
    for n in range(30):
        server.replica.append(writer, Post("social", f"post {n}", 1, None), net.now)
    _, c10 = net.connect(0, 1)
    _, c12 = net.connect(2, 1)
    for conn in (c10, c12):
        server.data_received(conn, frames.encode(Want(0, ((writer.public_key, 1, 30),), (),
                                                      ())), net.now)
    server.datagrams_to_send(net.now, budget=lambda c: 0)  # no room: all still owed
    owed = [c for c in (c10, c12) if server.backlog(c)]
    assert owed == [c10, c12]
    assert sorted(server.backlogged()) == owed
    server.datagrams_to_send(net.now)  # room now
    assert server.backlogged() == [c for c in (c10, c12) if server.backlog(c)] == []


class _Watched(dict[str, Candidate]):
    """The candidate table, counting the walks over it."""

    walks = 0

    def values(self) -> ValuesView[Candidate]:  # type: ignore[override]
        type(self).walks += 1
        return super().values()


def _watched(p: Peering) -> type[_Watched]:
    table = _Watched(p.candidates)
    p.candidates = table
    _Watched.walks = 0
    return _Watched


def test_due_and_timer_do_not_walk_the_candidates_when_nothing_changed() -> None:
    p = Peering(ME, PeeringConfig(low=4, high=8), rand=lambda: 0.5)
    for i in range(8):
        p.learn(bytes([i + 1]) * 32, [f"http://192.0.2.{i + 1}:7411/v1/signal"], Source.RECORD)
    dials = p.due(0, 0, relay_path=lambda node: False)
    assert len(dials) == 4
    for dial in dials:
        p.dial_failed(dial.key, 0)  # each backs off a while
    dials = p.due(0, 0, relay_path=lambda node: False)
    for dial in dials:
        p.dial_failed(dial.key, 0)
    assert p.due(1, 0, relay_path=lambda node: False) == []  # all back off now
    first = p.timer()
    assert first is not None
    watched = _watched(p)
    walks = watched.walks
    for now in range(1, 200, 7):  # asked after every input: nothing changed meanwhile
        if now >= first:
            break
        assert p.due(now, 0, relay_path=lambda node: False) == []
        assert p.timer() == first
    assert watched.walks == walks  # ... and nothing walked the table again
    p.learn(b"\xee" * 32, ["http://192.0.2.200:7411/v1/signal"], Source.RECORD)
    assert [d.node_id for d in p.due(5, 0, relay_path=lambda node: False)] == [b"\xee" * 32]


def test_due_answers_as_without_the_memo() -> None:
    """Two connection managers told the same things, one of which forgets its memo
    before every question, dial the same candidates at the same times."""
    def fresh(p: Peering) -> None:
        p._quiet = None  # the memo under test
        p._timer = None

    a = Peering(ME, PeeringConfig(low=3, high=6, explore_ms=5_000), rand=_rng(1))
    b = Peering(ME, PeeringConfig(low=3, high=6, explore_ms=5_000), rand=_rng(1))
    conns = iter(range(1, 10**6))
    peers = 0
    for now in range(0, 120_000, 250):
        if now % 10_000 == 0:
            for p in (a, b):
                p.learn(bytes([now // 10_000 + 1]) * 32, [f"http://192.0.2.{now // 10_000 + 1}"
                                                          ":7411/v1/signal"], Source.RECORD)
        fresh(b)
        da, db = (p.due(now, peers, relay_path=lambda node: False) for p in (a, b))
        assert da == db
        fresh(b)
        assert a.timer() == b.timer()
        for i, dial in enumerate(da):
            if i % 2:
                for p in (a, b):
                    p.dial_failed(dial.key, now)
            else:
                conn = next(conns)
                for p in (a, b):
                    p.link_opened(dial, conn, now)
                    assert dial.node_id is not None
                    p.session_up(conn, dial.node_id, now)
                peers += 1
        if now % 7_000 == 0:
            a.scores.penalize(id_key(bytes([3]) * 32), Penalty.INVALID_INPUT, now, times=100)
            b.scores.penalize(id_key(bytes([3]) * 32), Penalty.INVALID_INPUT, now, times=100)


def _rng(seed: int):  # type: ignore[no-untyped-def]
    import random
    return random.Random(seed).random


def test_step_does_not_list_the_peers_while_under_the_high_mark() -> None:
    net = Net.of([identity(i) for i in range(3)])
    net.connect(0, 1)
    net.connect(0, 2)
    mesh = net.meshes[0]
    listed = []
    real = mesh.peers
    mesh.peers = lambda: listed.append(1) or real()  # type: ignore[method-assign]
    conns = Connections(mesh, Peering(identity(0).public_key, PeeringConfig(low=1, high=4),
                                      rand=lambda: 0.5))
    for now in range(net.now, net.now + 100):
        conns.step(now)
    assert listed == []
