"""Gossip on one shared tree shaped by hop counts (protocols/sync.md §5), requests for
missing past de-duplicated by range (§7.1), and anti-entropy that leaves ops in flight
alone (§6.5): each finding of issue #10 as a behaviour that could fail."""

from __future__ import annotations

from liberation_node.core import frames
from liberation_node.core.bodies import Post
from liberation_node.core.catchup import CatchUp
from liberation_node.core.frames import Graft, IHave, Ops, Prune, Records, Want
from liberation_node.core.gossip import Gossip, GossipConfig
from liberation_node.core.mesh import MeshConfig
from liberation_node.core.ops import header_of, op_id
from liberation_node.core.replica import Replica

from .history import NETWORK, T0, HistoryBuilder, identity
from .meshnet import Net

PEOPLE = [identity(i) for i in range(6)]
REF = (b"a" * 32, 1, b"i" * 32)


def test_own_ops_go_out_at_hop_0_and_each_link_adds_one() -> None:
    net = Net.of(PEOPLE[:3])
    net.connect(0, 1)
    net.connect(1, 2)
    net.advance(500)
    net.sent.clear()
    op = net.meshes[0].write(Post("social", "far", 1, None), net.now)
    net.pump()
    pushed = [(a, b, hops) for a, b, f, _ in net.sent if isinstance(f, Ops) and f.eager
              for wire, hops in f.ops if op_id(header_of(wire)) == op.id]
    assert (0, 1, 0) in pushed and (1, 2, 1) in pushed


def test_a_duplicate_on_the_tree_prunes_the_shortcut_not_the_tree() -> None:
    """A first copy over a link outside the tree and the same item again over the tree:
    the shortcut is the redundant link (the tree spans every node)."""
    gossip = Gossip(GossipConfig())
    for conn in (1, 2):
        gossip.peer_up(conn, T0)
        gossip.grafted(conn)
    gossip.parent = 2  # our way in from the beacon
    gossip.first(b"x" * 32, 1, 3, eager=True, now=T0)
    assert gossip.duplicate(b"x" * 32, 2, 3, T0) == 1
    assert gossip.eager == {2} and gossip.lazy == {1}


def test_a_duplicate_never_prunes_the_last_way_in_from_a_side() -> None:
    """Concurrent broadcasts: once the link the first copy came by was pruned (for
    another item's sake), a duplicate from the remaining link keeps that link."""
    gossip = Gossip(GossipConfig())
    for conn in (1, 2, 3):
        gossip.peer_up(conn, T0)
        gossip.grafted(conn)
    gossip.first(b"m" * 32, 1, 2, eager=True, now=T0)
    gossip.first(b"n" * 32, 2, 2, eager=True, now=T0)
    assert gossip.duplicate(b"m" * 32, 2, 2, T0) == 2  # plain Plumtree: prune the later
    # n came first by 2, now lazy: 3 is our way in from that side; it stays.
    assert gossip.duplicate(b"n" * 32, 3, 2, T0) is None
    assert 3 in gossip.eager


def test_a_new_link_starts_eager_only_for_a_node_with_none() -> None:
    """A node already in the tree takes a new link lazy: eager, it would only close a
    cycle, and the duplicates would prune some link (sync.md §5.1)."""
    gossip = Gossip(GossipConfig())
    gossip.peer_up(1, T0)
    gossip.peer_up(2, T0)
    assert gossip.eager == {1} and gossip.lazy == {2}


def test_pushes_on_a_link_that_is_lazy_here_are_pruned() -> None:
    """The ends of a new link may start it differently (sync.md §5.1): the peer, with no
    eager link, pushes; we, in the tree already, take it lazy. A duplicate there used
    to prune nothing, and the peer pushed every op on it for the rest of the run: at 2 s
    of latency a third of all duplicates came over such links."""
    gossip = Gossip(GossipConfig())
    gossip.peer_up(1, T0)
    gossip.peer_up(2, T0)
    assert gossip.lazy == {2}
    gossip.first(b"x" * 32, 1, 3, eager=True, now=T0)
    assert gossip.duplicate(b"x" * 32, 2, 3, T0) == 2  # PRUNE it
    gossip.first(b"y" * 32, 1, 3, eager=True, now=T0)
    assert gossip.duplicate(b"y" * 32, 2, 3, T0) is None  # once: it is on its way
    gossip.grafted(2)  # eager again, then pruned by the peer: lazy both ways
    gossip.pruned(2, T0, by_peer=True)
    gossip.first(b"z" * 32, 1, 3, eager=True, now=T0)
    assert gossip.duplicate(b"z" * 32, 2, 3, T0) == 2


def test_the_peer_offering_fewer_hops_from_the_beacon_becomes_the_parent() -> None:
    gossip = Gossip(GossipConfig())
    for conn in (1, 2):
        gossip.peer_up(conn, T0)
        gossip.grafted(conn)
    beacon = b"\x00" * 32
    gossip.beacon = beacon
    item = (beacon, 0, b"r" * 32)
    gossip.track(item, T0)
    gossip.first(item[2], 1, 5, eager=True, now=T0)  # first copy: 6 hops via link 1
    assert gossip.parent == 1 and gossip.distance == 6
    assert gossip.reshaped().graft == {1}  # tell it: we are its child
    gossip.pruned(2)  # link 2 is lazy; its IHAVE says it is 2 hops from the beacon
    gossip.announced(2, [(*item, 2)], {item[2]}, T0, 500)
    assert gossip.parent == 2 and gossip.distance == 3
    reshape = gossip.reshaped()
    assert reshape.graft == {2} and reshape.prune == {1}
    assert gossip.eager == {2}
    # It tells its peers (Bellman-Ford): an IHAVE of the item at 3 hops to link 1.
    announce, _ = gossip.due(T0 + 1_000, 500)
    assert announce[1] == [(*item, 3)]


def test_a_shorter_way_announced_before_the_beacons_record_arrives_is_taken() -> None:
    """A lazy peer's IHAVE of the beacon's new record can come before the push that
    brings it (the push came the long way round). Its hop count is an offer all the
    same: dropped, the node keeps the longer way, and so does every node below it; at
    300 nodes 20 nodes had a neighbour offering a shorter way and 30% of nodes sat 1-4
    hops deeper than their distance from the beacon (sync.md §5.9)."""
    gossip = Gossip(GossipConfig())
    for conn in (1, 2):
        gossip.peer_up(conn, T0)
    assert gossip.eager == {1} and gossip.lazy == {2}
    beacon = b"\x00" * 32
    gossip.beacon = beacon
    item = (beacon, 0, b"r" * 32)
    gossip.announced(2, [(*item, 1)], set(), T0, 500)  # not held yet: 2 hops by link 2
    gossip.track(item, T0 + 10)  # the push arrives by link 1, 5 hops out
    gossip.first(item[2], 1, 4, eager=True, now=T0 + 10)
    assert gossip.parent == 2 and gossip.distance == 2
    assert gossip.reshaped().graft == {2} and 2 in gossip.eager


def _tracking(conns: tuple[int, ...]) -> tuple[Gossip, tuple[bytes, int, bytes]]:
    gossip = Gossip(GossipConfig())
    for conn in conns:
        gossip.peer_up(conn, T0)
    gossip.beacon = b"\x00" * 32
    item = (gossip.beacon, 0, b"r" * 32)
    gossip.track(item, T0)
    return gossip, item


def test_a_peer_that_offers_a_longer_way_is_told_ours() -> None:
    """Our distance went out when the peer could not use it (before it held the item or
    knew the beacon) and is never sent again unless it changes: the peer's own offer
    shows it, and we tell it again. Without this, a node next to the beacon stayed 3
    hops from it for the whole run (sync.md §5.9)."""
    gossip, item = _tracking((1, 2))
    gossip.first(item[2], 1, 1, eager=True, now=T0)  # we are 2 from the beacon
    gossip.due(T0 + 1_000, 500)
    gossip.announced(2, [(*item, 4)], {item[2]}, T0 + 1_000, 500)  # it is 4 hops away
    announce, _ = gossip.due(T0 + 2_000, 500)
    assert announce.get(2) == [(*item, 2)]
    gossip.announced(2, [(*item, 3)], {item[2]}, T0 + 2_000, 500)  # one more than ours
    announce, _ = gossip.due(T0 + 3_000, 500)
    assert 2 not in announce


def test_when_the_parents_way_gets_longer_a_shorter_offer_is_taken() -> None:
    gossip, item = _tracking((1, 2))
    gossip.first(item[2], 1, 1, eager=True, now=T0)  # parent 1: we are 2 away
    gossip.announced(2, [(*item, 2)], {item[2]}, T0, 500)  # 2 offers 3: not shorter
    assert gossip.parent == 1 and gossip.reshaped().graft == {1}
    gossip.announced(1, [(*item, 4)], {item[2]}, T0, 500)  # our parent is 4 away now
    assert gossip.parent == 2 and gossip.distance == 3
    reshape = gossip.reshaped()
    assert reshape.graft == {2} and reshape.prune == {1}


def test_a_node_whose_parent_goes_never_takes_a_child_as_its_way_in() -> None:
    """A child's offer is older than its being our child: it hangs below us, and taking
    it would make a loop that counts up to MAX_HOPS."""
    gossip, item = _tracking((1, 2, 3))
    gossip.announced(2, [(*item, 3)], {item[2]}, T0, 500)  # 2 offers 4
    gossip.first(item[2], 1, 0, eager=True, now=T0)  # parent 1, next to the beacon
    gossip.grafted(2, child=True)  # 2 took us as its way in since
    gossip.announced(3, [(*item, 5)], {item[2]}, T0, 500)
    gossip.peer_down(1, T0 + 10)
    assert gossip.parent == 3 and gossip.distance == 6


def test_two_nodes_that_took_each_other_for_their_way_in_leave_the_loop() -> None:
    """Both took the other's offer while the other's GRAFT was on its way: each its
    parent's parent. Distances go to everyone but one's parent, so neither would ever
    hear of it (1000 nodes: two nodes stayed so, 4 hops from the beacon by their count,
    cut off from its tree, and they and a child were reached 1-2 hops deeper than
    that on every op). The parent's GRAFT as a child shows it: leave for another
    offer, and prune the loop's link."""
    gossip, item = _tracking((1, 2))
    gossip.announced(2, [(*item, 4)], {item[2]}, T0, 500)  # 2 offers 5
    gossip.announced(1, [(*item, 3)], {item[2]}, T0, 500)  # 1 offers 4: our parent
    assert gossip.parent == 1 and gossip.distance == 4
    gossip.reshaped()
    gossip.grafted(1, T0 + 10, child=True)  # 1 took us for its way in meanwhile
    reshape = gossip.reshaped()
    assert gossip.parent == 2 and gossip.distance == 5
    assert reshape.graft == {2} and reshape.prune == {1}
    assert 1 not in gossip.children and 1 in gossip.lazy


def test_a_loop_with_no_other_way_in_is_left_to_the_peer() -> None:
    gossip, item = _tracking((1,))
    gossip.announced(1, [(*item, 3)], {item[2]}, T0, 500)
    gossip.reshaped()
    gossip.grafted(1, T0 + 10, child=True)
    assert gossip.parent == 1 and gossip.reshaped().prune == set()
    gossip.pruned(1, T0 + 20, by_peer=True)  # the peer left: it is our way in again
    assert gossip.parent == 1 and gossip.reshaped().graft == {1} and 1 in gossip.eager


def test_a_child_that_sends_the_beacons_item_back_is_not_a_child() -> None:
    gossip = Gossip(GossipConfig())
    gossip.peer_up(1, T0)
    gossip.beacon = b"\x00" * 32
    item = (gossip.beacon, 0, b"r" * 32)
    gossip.track(item, T0)
    gossip.grafted(1, child=True)
    assert gossip.children == {1}
    gossip.first(item[2], 1, 2, eager=True, now=T0)
    assert gossip.children == set() and gossip.parent == 1


def test_the_beacons_record_by_repair_is_an_offer_and_goes_out_with_our_distance() -> None:
    """At boot the beacon's record mostly comes by the round each new session starts
    (a repair). Its hop count (the server's distance) is an offer like a push's: taken
    for nothing, a node had no distance until a neighbour happened to announce it again
    (median 300 ms later at 300 nodes, sync.md §5.9). And what we send it with, served
    or pushed, is our distance, not the hop count of the copy we first took."""
    gossip, item = _tracking((1, 2))
    gossip.first(item[2], 1, 3, eager=False, now=T0)  # served in a round, 3 hops out
    assert gossip.parent == 1 and gossip.distance == 4
    gossip.announced(2, [(*item, 1)], {item[2]}, T0, 500)
    assert gossip.distance == 2 and gossip.hops(item[2]) == 2


def test_a_round_serves_the_beacons_record_with_the_servers_distance() -> None:
    net = Net.of(PEOPLE[:3])
    net.connect(0, 1)
    net.advance(1_000)
    beacon = net.meshes[1].gossip.beacon
    assert beacon is not None and net.meshes[1].gossip.distance is not None
    net.sent.clear()
    net.connect(1, 2)
    net.advance(1_000)
    record = net.meshes[1].replica.records[(beacon, "node.info")]
    served = [hops for a, b, f, _ in net.sent if (a, b) == (1, 2) and isinstance(f, Records)
              and not f.eager for wire, hops in f.records if wire == record.wire]
    assert served and all(h == net.meshes[1].gossip.distance for h in served)


def test_an_offer_for_a_lower_ids_record_not_held_yet_counts() -> None:
    """An IHAVE of the record of a node with a lower id than our beacon comes before the
    record: that node is our next beacon, and the offer must count once the record is
    held (it was dropped: only the current beacon's records were kept)."""
    gossip = Gossip(GossipConfig())
    for conn in (1, 2):
        gossip.peer_up(conn, T0)
    gossip.beacon = b"\x05" * 32
    lower = (b"\x01" * 32, 0, b"r" * 32)
    gossip.announced(2, [(*lower, 1)], set(), T0, 500)  # 2 hops by link 2
    gossip.beacon = lower[0]  # its record arrives, by link 1, far out
    gossip.track(lower, T0 + 10)
    gossip.first(lower[2], 1, 6, eager=True, now=T0 + 10)
    assert gossip.parent == 2 and gossip.distance == 2


def _parent_then_a_new_beacon() -> tuple[Gossip, bytes]:
    """Link 1 is our parent; then a lower id becomes the beacon. Returns the id of the
    new beacon's record, now tracked."""
    gossip, item = _tracking((1, 2))
    gossip.first(item[2], 1, 0, eager=True, now=T0)
    assert gossip.parent == 1 and gossip.reshaped().graft == {1}
    gossip.beacon = b"\x00" * 31 + b"\x01"  # new beacon: distances start over
    new = (gossip.beacon, 0, b"s" * 32)
    gossip.track(new, T0 + 10)
    return gossip, new[2]


def test_a_parent_taken_for_a_former_beacon_is_pruned_when_another_is_taken() -> None:
    """While the overlay forms, the beacon changes as lower ids become known; the parent
    taken for the former one was forgotten, and its link stayed eager outside the
    tree, making a cycle (7 copies of an op where 5 reach six nodes)."""
    gossip, new = _parent_then_a_new_beacon()
    gossip.first(new, 2, 1, eager=True, now=T0 + 10)
    reshape = gossip.reshaped()
    assert gossip.parent == 2 and reshape.graft == {2} and reshape.prune == {1}
    assert 1 in gossip.lazy


def test_a_parent_kept_for_a_new_beacon_is_told_again() -> None:
    """When the beacon changes, both ends start over: the parent forgets its children.
    A node whose first offer for the new beacon comes from the same parent must say
    again that it hangs below it, or the parent counts the link outside the tree and
    prunes it for the next duplicate (a ring of six at 2 s: PRUNE on an author's op)."""
    gossip, new = _parent_then_a_new_beacon()
    gossip.first(new, 1, 1, eager=True, now=T0 + 10)
    reshape = gossip.reshaped()
    assert gossip.parent == 1 and gossip.distance == 2
    assert reshape.graft == {1} and not reshape.prune


def test_the_beacons_record_goes_to_every_peer() -> None:
    """The tracked item is pushed on lazy links too (one record a minute): each copy is
    an offer, and the tree is breadth-first as soon as the record has gone round, not
    after a graft timeout per hop (at 300 nodes the tree formed 1-2 s after boot, and
    ops written meanwhile crossed up to 15 links). Such a push on a link lazy at the
    receiver is no reason to PRUNE."""
    gossip, item = _tracking((1, 2, 3))
    assert gossip.eager == {1} and gossip.lazy == {2, 3}
    gossip.first(item[2], 2, 1, eager=False, now=T0)
    push = gossip.delivered([(item[2], item)], 2, T0)
    assert push == {1: [(item[2], 2)], 3: [(item[2], 2)]}
    assert gossip.duplicate(item[2], 3, 1, T0) is None and 3 in gossip.lazy


def _ring_of_six(config: MeshConfig | None = None) -> Net:
    """A ring of six plus two chords, 2 s on: presence records have gone round."""
    net = Net.of(PEOPLE, config)
    for a in range(6):
        net.connect(a, (a + 1) % 6)
    net.connect(0, 3)
    net.connect(1, 4)
    net.advance(2_000)
    return net


def test_a_tree_forms_around_the_beacon_and_carries_every_op_once() -> None:
    """A ring of six plus chords; after presence records went round, every op crosses
    each node once (five pushes), whoever writes it. (Authors push to the tree only
    here: plain Plumtree; `author_fanout` below.)"""
    net = _ring_of_six(MeshConfig(gossip=GossipConfig(author_fanout=False)))
    for writer in (2, 5, 0):
        net.advance(300)
        net.sent.clear()
        op = net.meshes[writer].write(Post("social", f"from {writer}", 1, None), net.now)
        net.pump()
        copies = sum(1 for _, _, f, _ in net.sent if isinstance(f, Ops)
                     for wire, _ in f.ops if op_id(header_of(wire)) == op.id)
        assert copies == 5, writer
    beacon = {m.gossip.beacon for m in net.meshes}
    assert len(beacon) == 1 and beacon.pop() == min(p.public_key for p in PEOPLE)


def test_an_author_pushes_its_own_op_to_every_peer_and_announces_none() -> None:
    """Our own op enters the tree at every peer (sync.md §5.2); a relayed one goes to
    the eager peers and is announced to the lazy ones, as before."""
    gossip = Gossip(GossipConfig())
    for conn in (1, 2, 3):
        gossip.peer_up(conn, T0)
    assert gossip.eager == {1} and gossip.lazy == {2, 3}
    mine = (b"m" * 32, 1, b"o" * 32)
    gossip.own(mine[2])
    assert gossip.delivered([(mine[2], mine)], None, T0) == {
        1: [(mine[2], 0)], 2: [(mine[2], 0)], 3: [(mine[2], 0)]}
    assert gossip.announcements.timer() is None
    gossip.first(REF[2], 1, 0, eager=True, now=T0)
    assert gossip.delivered([(REF[2], REF)], 1, T0) == {}  # no other eager peer
    assert gossip.announcements.due(T0 + 10_000, None) == {2: [(*REF, 1)], 3: [(*REF, 1)]}


def test_an_authors_push_on_a_lazy_link_is_no_reason_to_prune() -> None:
    gossip = Gossip(GossipConfig())
    gossip.peer_up(1, T0)
    gossip.peer_up(2, T0)
    gossip.first(b"x" * 32, 1, 3, eager=True, now=T0)
    assert gossip.duplicate(b"x" * 32, 2, 0, T0, by_author=True) is None
    assert gossip.lazy == {2}
    assert gossip.duplicate(b"x" * 32, 2, 0, T0) == 2  # anyone else's: PRUNE


def test_an_authors_op_reaches_each_of_its_peers_at_one_hop_and_draws_no_prune() -> None:
    """In the mesh: the ring of six again, once the tree has formed. Each op reaches
    every peer of its author straight from it (hop count 0 on the way in), and the
    author's pushes on links outside the tree draw no PRUNE: the tree stays as it was."""
    net = _ring_of_six()
    eager = [set(m.gossip.eager) for m in net.meshes]
    for writer in (2, 5, 0):
        net.advance(300)
        net.sent.clear()
        op = net.meshes[writer].write(Post("social", f"from {writer}", 1, None), net.now)
        net.pump()
        from_author = {b for a, b, f, _ in net.sent if a == writer and isinstance(f, Ops)
                       for wire, hops in f.ops if op_id(header_of(wire)) == op.id and hops == 0}
        peers = {b for (a, _), (b, _) in net.links.items() if a == writer}
        assert from_author == peers and len(peers) >= 2, writer
        assert not any(isinstance(f, Prune) for _, _, f, _ in net.sent)
        assert all(op.id in m.replica.ops for m in net.meshes)
    assert [set(m.gossip.eager) for m in net.meshes] == eager


def test_an_authors_late_push_on_a_lazy_link_draws_no_prune() -> None:
    """The author's push to a peer outside the tree may come after the tree brought the
    op: the peer knows it from the author, so it does not PRUNE (it would for anyone
    else's push on that link, sync.md §5.3)."""
    net = _ring_of_six()
    writer = 2
    peer, conn = next((p, c) for (a, _), (p, c) in net.links.items()
                      if a == writer and c in net.meshes[p].gossip.lazy)
    # The link was made lazy by the peer's PRUNE long ago. Let the writer take it eager
    # and prune it again: the peer has sent no PRUNE on it since, so a push from anyone
    # else would draw one.
    for frame in (Graft(()), Prune()):
        net.meshes[peer].data_received(conn, frames.encode(frame), net.now)
    net.pump()
    assert conn in net.meshes[peer].gossip.lazy
    held: list[Ops] = []
    net.drop = lambda a, b, f: a == writer and b == peer and isinstance(f, Ops) \
        and not held.append(f)
    op = net.meshes[writer].write(Post("social", "late", 1, None), net.now)
    net.pump()
    assert held and op.id in net.meshes[peer].replica.ops  # by the tree
    net.drop = None
    net.sent.clear()
    net.meshes[peer].data_received(conn, frames.encode(held[0]), net.now)
    net.pump()
    assert not any(isinstance(f, Prune) for _, _, f, _ in net.sent)
    assert conn in net.meshes[peer].gossip.lazy


def test_records_follow_the_tree_and_are_not_sent_in_bulk_on_open() -> None:
    net = Net.of(PEOPLE[:3])
    net.connect(0, 1)
    net.advance(500)
    net.sent.clear()
    net.connect(1, 2)  # a newcomer: the dialer's round brings it the records it lacks
    net.advance(100)
    records = [f for _, to, f, _ in net.sent if isinstance(f, Records) and to == 2]
    assert records and not any(f.eager for f in records)
    net.advance(500)
    assert len({m.replica.digest() for m in net.meshes}) == 1
    # A new record version goes out as a push along eager links and an IHAVE with
    # seq 0 over lazy ones.
    net.sent.clear()
    net.meshes[0].publish_presence(net.now)
    net.pump()
    net.advance(200)
    pushes = [f for _, _, f, _ in net.sent if isinstance(f, Records) and f.eager]
    assert pushes and all(hops <= 1 for f in pushes for _, hops in f.records)
    assert len({m.replica.digest() for m in net.meshes}) == 1


def test_a_missing_record_announced_by_ihave_is_grafted() -> None:
    net = Net.of(PEOPLE[:2], MeshConfig(sync_interval_ms=10**9))
    net.connect(0, 1)
    net.advance(500)
    net.drop = lambda a, b, f: isinstance(f, Records) and f.eager
    net.meshes[0].gossip.pruned(next(iter(net.meshes[0].peers())))  # make the link lazy
    record = net.meshes[0].publish(net.meshes[0].replica.records[
        (PEOPLE[0].public_key, "node.links")].body, net.now + 1)
    net.pump()
    net.drop = None
    net.advance(1_500)
    assert net.meshes[1].replica.record(record.id) is not None
    refs = [r for _, _, f, _ in net.sent if isinstance(f, IHave | Graft) for r in f.refs]
    assert any(r[1] == 0 and r[2] == record.id for r in refs)


def test_the_answer_to_a_graft_of_the_last_announcer_is_gossip() -> None:
    """An item announced by one peer only is grafted from it; the answer is gossip
    (§5.1), pushed along our eager links. It was taken for a repair (announced to every
    peer, pushed to none) because the timer forgot the item the moment its last
    announcer was grafted: an op one node fetched by anti-entropy then crawled a graft
    timeout per hop (issue 10: an op 1.6 s old held by 15 of 300 nodes)."""
    gossip = Gossip(GossipConfig())
    gossip.peer_up(2, T0)  # eager: our way in
    gossip.peer_up(1, T0)  # lazy
    gossip.peer_up(3, T0)
    gossip.announced(1, [(*REF, 255)], set(), T0, 500)
    assert gossip.timer() == T0 + 500
    _, graft = gossip.due(T0 + 500, 500)
    assert graft == {1: [REF]}
    assert gossip.timer() == T0 + 1_000  # still awaited: the answer is on its way
    gossip.first(REF[2], 1, 255, eager=False, now=T0 + 600)
    push = gossip.delivered([(REF[2], REF)], 1, T0 + 600)
    assert set(push) == {2}  # pushed on the tree; announced only to the lazy link 3
    announce, _ = gossip.due(T0 + 700, 500)
    assert set(announce) == {3}


def test_an_item_announced_by_our_only_eager_link_is_grafted_at_once() -> None:
    """A peer pushes over its eager links whatever it has by gossip; when the only one
    we have announces an item instead, it got it by repair and nothing is on its way:
    waiting a graft timeout only delays it. A node whose one link was its way out of
    an island of two at boot got what the island missed 0.5 s later each time (300
    nodes, seed 2: 35 ops at least 1 s old missing at one node when writes ended)."""
    gossip = Gossip(GossipConfig())
    gossip.peer_up(1, T0)  # eager: our only way in
    gossip.peer_up(2, T0)  # lazy
    gossip.announced(1, [(*REF, 255)], set(), T0, 500)
    assert gossip.timer() == T0
    _, graft = gossip.due(T0, 500)
    assert graft == {1: [REF]}
    other = (REF[0], 2, b"j" * 32)
    gossip.announced(2, [(*other, 255)], set(), T0, 500)  # a lazy link's: wait for a push
    assert gossip.timer() == T0 + 500


def test_a_round_leaves_ops_in_flight_to_gossip() -> None:
    """sync.md §6.5: an op applied just now is on its way along the tree: a round that
    meets it does not send it; once it has settled, one does."""
    net = Net.of(PEOPLE[:2], MeshConfig(sync_interval_ms=10**9))
    net.connect(0, 1)
    net.advance(500)
    net.drop = lambda a, b, f: isinstance(f, Ops | IHave)  # the op is "still in flight"
    op = net.meshes[0].write(Post("social", "in flight", 1, None), net.now)
    net.pump()
    net.drop = None
    conn = next(iter(net.meshes[1].peers()))
    assert net.meshes[1].start_sync(conn, net.now)
    net.pump()
    assert op.id not in net.meshes[1].replica.ops
    net.advance(MeshConfig().settle_ms + 1)
    assert net.meshes[1].start_sync(conn, net.now)
    net.pump()
    assert op.id in net.meshes[1].replica.ops


def test_what_a_round_fetches_is_announced_not_pushed() -> None:
    """A repair must not make a tree link look redundant: ops fetched by a round go
    out as IHAVE to every peer, never as eager pushes."""
    history = HistoryBuilder()
    ops = [history.write(PEOPLE[5], Post("social", f"old {i}", 1, None)) for i in range(3)]
    replica = Replica(NETWORK)
    for op in ops:
        replica.add(op)
    net = Net.of(PEOPLE[:3], replicas=[replica, Replica(NETWORK), Replica(NETWORK)])
    net.connect(1, 2)
    net.advance(500)
    net.sent.clear()
    net.connect(1, 0)  # node 1 dials the holder: its round fetches the three ops
    net.advance(300)
    pushed = [w for _, to, f, _ in net.sent if isinstance(f, Ops) and f.eager and to == 2
              for w, _ in f.ops]
    announced = [r[2] for a, to, f, _ in net.sent
                 if isinstance(f, IHave) and a == 1 and to == 2 for r in f.refs]
    assert not pushed and {op.id for op in ops} <= set(announced)


def test_catch_up_requests_do_not_overlap() -> None:
    """One fast writer whose ops arrive ahead of their past: one request per gap, not
    one per op (sync.md §7.1)."""
    catchup = CatchUp(Replica(NETWORK), retry_ms=2_000)
    author = PEOPLE[1].public_key
    first = catchup.ask(1, author, 100, T0)
    assert first == Want(0, ((author, 1, 100),), (), ())
    assert catchup.ask(2, author, 60, T0 + 10) is None  # covered already
    assert catchup.ask(2, author, 150, T0 + 20) == Want(0, ((author, 101, 150),), (), ())
    # Once the request aged out, the whole gap is asked again.
    assert catchup.ask(1, author, 150, T0 + 2_500) == Want(0, ((author, 1, 150),), (), ())
    # A request to a peer that went away does not hold back the next waiter.
    catchup.peer_gone(1)
    assert catchup.ask(3, author, 150, T0 + 2_600) is not None


def test_graft_timeout_and_dead_peer_timer_scale_with_the_round_trip() -> None:
    """At 2 s of latency a session is slow, not dead, and a push is not late after
    500 ms (sync.md §4.4, §5.5)."""
    config = MeshConfig(sync_interval_ms=10**9)
    net = Net.of(PEOPLE[:2], config)
    net.connect(0, 1)
    session = net.meshes[0].session(next(iter(net.meshes[0].peers())))
    assert session is not None
    session.rtt_ms = 4_000
    assert session.dead_after_ms >= 3 * 4_000
    net.meshes[0]._rtt = (-1, 0)  # recompute now
    assert net.meshes[0]._graft_timeout(net.now) >= 0.75 * 3 * 4_000


def test_frames_carry_hop_counts() -> None:
    op_frame = frames.Ops(True, ((b"w", 4),))
    assert frames.decode(frames.encode(op_frame)) == op_frame
    ihave = frames.IHave(((*REF, 7),))
    assert frames.decode(frames.encode(ihave)) == ihave
    assert frames.decode(frames.encode(Graft(()))) == Graft(())
    assert frames.decode(frames.encode(Prune())) == Prune()
