"""The connection manager's decisions composed with real Mesh engines, no I/O (as the
simulator runs them): a dial whose expected id is stale reaches a node we are already
connected to, and sync.md §4.2 replaces the old link with the new one. The session must
survive as that node's link (transport.md §7.4): it used to be closed for its
unexpected id, leaving no link at all."""

from __future__ import annotations

from liberation_node.core.candidates import Source
from liberation_node.core.connections import Connections
from liberation_node.core.identity import Identity
from liberation_node.core.peering import Peering, PeeringConfig

from .history import identity
from .meshnet import Net

URL = "http://192.0.2.10:7411/v1/signal"  # where the bootstrap list says STALE is
STALE = Identity.from_seed(b"\x09" * 32).public_key


def feed(net: Net, n: int, peering: Peering) -> list[object]:
    """Hand node n's new mesh events to its connection manager (core/connections.py), as
    node.py and the simulator do."""
    conns = Connections(net.meshes[n], peering)
    events, net.events[n] = net.events[n], []
    verdicts = [conns.on_event(event, net.now) for event in events]
    return [v for v in verdicts if v is not None]


def test_a_stale_expected_id_keeps_the_replacing_link() -> None:
    low, high = sorted([identity(0), identity(1)], key=lambda i: i.public_key)
    net = Net.of([low, high])  # node 0 has the lower id: its new dials win (sync.md §4.2)
    a = Peering(low.public_key, PeeringConfig(), rand=lambda: 0.5)
    a.learn(STALE, [URL], Source.BOOTSTRAP)
    old_a, _ = net.connect(1, 0)[::-1]  # the other node dialed us: a good link
    assert feed(net, 0, a) == [] and a.is_connected(high.public_key)
    # Our stale entry is dialed before we know that URL leads to that node.
    (dial,) = a.due(net.now, 1, relay_path=lambda node: False)
    assert (dial.url, dial.node_id) == (URL, STALE)
    new_a, _ = net.connect(0, 1)  # the transport reached... the node we already have
    a.link_opened(dial, new_a, net.now)
    (verdict,) = feed(net, 0, a)
    assert (verdict.expected, verdict.actual, verdict.first) == (  # type: ignore[attr-defined]
        STALE, high.public_key, True)
    net.advance(100)
    feed(net, 0, a)
    # One link, the new one, and it is the peer's: nothing closed it for its id.
    assert net.meshes[0].peers() == {new_a: high.public_key}
    assert a.is_connected(high.public_key) and old_a not in net.meshes[0].peers()
    # The URL leads to a connected peer now: not dialed again for the stale id.
    for step in range(1, 600):
        assert a.due(net.now + step * 1_000, 1, relay_path=lambda node: False) == []


def test_a_full_node_takes_a_newcomer_in_place_of_an_established_peer() -> None:
    """transport.md §7.6. A full node took a newcomer beyond `high` and then shed the
    newcomer itself (its RTT was still unknown, which counted as the worst): with 20
    daemons, a node whose bootstrap peers were full was taken and shed every second for
    the whole run and never got an op. Now it replaces the worst established peer, and
    while every peer is a newcomer the offer is refused (no handshake to shed)."""
    who = [identity(i) for i in range(6)]
    net = Net.of(who)
    hub = Connections(net.meshes[0], Peering(who[0].public_key, PeeringConfig(low=1, high=3),
                                             rand=lambda: 0.5))

    def drain() -> None:
        events, net.events[0] = net.events[0], []
        for event in events:
            hub.on_event(event, net.now)
        hub.step(net.now)
        net.pump()
        events, net.events[0] = net.events[0], []
        for event in events:
            hub.on_event(event, net.now)

    for i in (1, 2, 3):
        net.connect(i, 0)  # strangers dialed the hub: nothing protects them
    drain()
    assert not hub.accepts(0, net.now)  # full of newcomers: one more would be shed
    net.advance(20_000)  # every peer answered PINGs: established
    drain()
    assert hub.accepts(0, net.now) and hub.accepts(1, net.now)
    assert not hub.accepts(2, net.now)  # the spare slots are taken
    net.connect(4, 0)
    drain()
    peers = set(net.meshes[0].peers().values())
    assert who[4].public_key in peers and len(peers) == 3
    # The newcomer stays while its RTT is unknown; a second one replaces another.
    net.connect(5, 0)
    drain()
    assert {who[4].public_key, who[5].public_key} <= set(net.meshes[0].peers().values())
