"""The sync engine end to end on a lossless in-memory net (protocols/sync.md)."""

from __future__ import annotations

from liberation_node.core.bodies import Post, Register, Retract
from liberation_node.core.events import Changed, PeerDown, PeerUp, SyncFinished
from liberation_node.core.frames import Graft, IHave, Ops, Prune, SyncOpen, SyncSame
from liberation_node.core.gossip import GossipConfig
from liberation_node.core.mesh import MeshConfig
from liberation_node.core.session import SessionConfig

from .history import identity
from .meshnet import Net

PEOPLE = [identity(i) for i in range(6)]


def digests(net: Net) -> set[bytes]:
    return {m.replica.digest() for m in net.meshes}


def test_handshake_and_first_sync() -> None:
    net = Net.of(PEOPLE[:2])
    net.meshes[0].write(Register("a"), net.now)
    net.connect(0, 1)
    ups = [e for e in net.events[1] if isinstance(e, PeerUp)]
    assert [u.peer for u in ups] == [PEOPLE[0].public_key]
    net.advance(100)  # the dialer's first round runs at once
    assert len(digests(net)) == 1
    assert len(net.meshes[1].replica.ops) == 1


def test_in_sync_round_is_one_small_round_trip() -> None:
    net = Net.of(PEOPLE[:2])
    for i in range(50):
        net.meshes[0].write(Post("social", f"m{i}", 1, None), net.now)
    net.connect(0, 1)
    net.advance(100)
    assert len(digests(net)) == 1
    net.sent.clear()
    net.advance(MeshConfig().sync_interval_ms * 2)  # periodic rounds while in sync
    rounds = [e for e in net.events[0] + net.events[1]
              if isinstance(e, SyncFinished) and e.in_sync]
    assert rounds and all(r.round_trips == 1 for r in rounds)
    sync_bytes = [size for _, _, f, size in net.sent if isinstance(f, SyncOpen | SyncSame)]
    # One SYNC_OPEN and one SYNC_SAME per round, together under 100 bytes.
    assert max(sync_bytes) < 70 and len(sync_bytes) == 2 * len(rounds)


def test_gossip_reaches_everyone_and_prunes_duplicates() -> None:
    net = Net.of(PEOPLE)
    for a in range(6):  # a ring plus chords: many redundant paths
        net.connect(a, (a + 1) % 6)
    net.connect(0, 3)
    net.connect(1, 4)
    net.advance(500)
    for i in range(30):
        net.meshes[i % 6].write(Post("social", f"hello {i}", 1, None), net.now)
        net.pump()
    assert len(digests(net)) == 1 and len(net.meshes[0].replica.ops) == 30
    prunes = [f for _, _, f, _ in net.sent if isinstance(f, Prune)]
    assert prunes, "duplicate eager pushes must prune links"
    # After pruning, later broadcasts cost about one push per node.
    net.sent.clear()
    net.meshes[2].write(Post("social", "late", 1, None), net.now)
    net.pump()
    pushes = sum(len(f.ops) for _, _, f, _ in net.sent if isinstance(f, Ops) and f.eager)
    assert pushes <= 6 + 2


def test_lost_push_is_grafted_from_an_announcer() -> None:
    # Periodic anti-entropy off: the op must come through IHAVE + GRAFT alone. The
    # author pushes to its eager peers only (plain Plumtree), so that one announces it.
    net = Net.of(PEOPLE[:3], MeshConfig(sync_interval_ms=10**9,
                                        gossip=GossipConfig(author_fanout=False)))
    net.connect(0, 1)
    net.connect(1, 2)
    net.connect(0, 2)
    net.advance(500)
    for i in range(5):  # settle the tree
        net.meshes[0].write(Post("social", f"warm {i}", 1, None), net.now)
        net.pump()
    net.advance(200)
    # Now lose every eager push to node 2: it must learn the op from an IHAVE and GRAFT it.
    net.drop = lambda a, b, f: b == 2 and isinstance(f, Ops) and f.eager
    op = net.meshes[0].write(Post("social", "lost push", 1, None), net.now)
    net.pump()
    assert op.id not in net.meshes[2].replica.ops
    net.drop = None
    net.sent.clear()
    net.advance(2_000)
    assert op.id in net.meshes[2].replica.ops
    kinds = [type(f) for _, _, f, _ in net.sent]
    assert IHave in kinds and Graft in kinds
    assert SyncOpen not in kinds


def test_anti_entropy_heals_a_partition() -> None:
    net = Net.of(PEOPLE[:4])
    net.connect(0, 1)
    net.connect(2, 3)  # two islands
    for i in range(20):
        net.meshes[i % 4].write(Post("social", f"island {i % 4}:{i}", 1, None), net.now)
    net.pump()
    assert len(digests(net)) == 2
    net.connect(1, 2)
    net.advance(1_000)
    assert len(digests(net)) == 1 and len(net.meshes[0].replica.ops) == 20


def test_dead_peer_is_noticed_by_heartbeat() -> None:
    config = MeshConfig(session=SessionConfig(ping_interval_ms=1_000, dead_after_ms=4_000))
    net = Net.of(PEOPLE[:2], config)
    net.connect(0, 1)
    net.advance(3_000)
    assert net.meshes[0].peers()
    net.drop = lambda a, b, f: a == 1  # node 1 goes silent (crashed, cable pulled)
    start = net.now
    net.advance(6_000)
    downs = [e for e in net.events[0] if isinstance(e, PeerDown)]
    assert len(downs) == 1 and downs[0].reason == "timeout"
    assert not net.meshes[0].peers()
    # Noticed within dead_after_ms of the last frame heard (plus one timer step).
    assert net.now - start <= 6_000


def test_changed_events_carry_everything_to_persist() -> None:
    net = Net.of(PEOPLE[:2])
    net.connect(0, 1)
    for i in range(10):
        net.meshes[0].write(Post("social", f"p{i}", 1, None), net.now)
    net.advance(200)
    applied = [op.id for e in net.events[1] if isinstance(e, Changed) for op in e.applied]
    assert sorted(applied) == sorted(net.meshes[1].replica.ops)
    assert len(applied) == len(set(applied)) == 10


def test_relayed_signal_reaches_a_peer_of_a_peer_and_back() -> None:
    from liberation_node.core.events import SignalReceived

    net = Net.of(PEOPLE[:4])
    net.connect(0, 1)
    net.connect(1, 2)
    net.connect(2, 3)
    net.advance(2_000)  # node.links records spread, so relays can route
    assert net.meshes[0].send_signal(PEOPLE[3].public_key, '{"type": "offer"}', nonce=7)
    net.pump()
    got = [e for e in net.events[3] if isinstance(e, SignalReceived)]
    assert [(g.origin, g.nonce, g.payload) for g in got] == [
        (PEOPLE[0].public_key, 7, '{"type": "offer"}')]
    net.meshes[3].send_signal(PEOPLE[0].public_key, '{"type": "answer"}', nonce=8)
    net.pump()
    back = [e for e in net.events[0] if isinstance(e, SignalReceived)]
    assert [b.payload for b in back] == ['{"type": "answer"}']
    # Nobody else saw a SignalReceived, and a replayed frame is dropped.
    assert not any(isinstance(e, SignalReceived) for e in net.events[1] + net.events[2])


def test_signal_ttl_bounds_the_relay() -> None:
    from liberation_node.core.events import SignalReceived

    net = Net.of(PEOPLE[:6], MeshConfig(signal_ttl=1))
    for a in range(5):
        net.connect(a, a + 1)
    net.advance(500)
    net.meshes[0].send_signal(PEOPLE[5].public_key, "x", nonce=1)
    net.pump()
    assert not any(isinstance(e, SignalReceived) for e in net.events[5])


def _hello_pair() -> tuple[Net, int, int]:
    net = Net.of(PEOPLE[:2], MeshConfig(sync_interval_ms=10**9))
    ca, cb = net.connect(0, 1)
    return net, ca, cb


def test_frames_stay_under_the_limit_when_a_lot_is_announced() -> None:
    from liberation_node.core.frames import MAX_FRAME_BYTES

    net = Net.of(PEOPLE[:3], MeshConfig(sync_interval_ms=10**9))
    net.connect(0, 1)
    net.connect(1, 2)
    net.connect(0, 2)
    for i in range(3):
        net.meshes[0].write(Post("social", f"warm {i}", 1, None), net.now)
        net.pump()
    for i in range(1200):  # a burst: lazy links get one long list of announcements
        net.meshes[0].write(Post("social", f"burst {i}", 1, None), net.now)
    net.pump()
    net.advance(3_000)
    assert max(size for *_, size in net.sent) <= MAX_FRAME_BYTES
    assert len(digests(net)) == 1


def test_buckets_too_coarse_for_our_feeds_are_refused() -> None:
    from liberation_node.core import frames as fr
    from liberation_node.core.frames import SyncBuckets

    net, ca, _ = _hello_pair()
    for who in PEOPLE[2:6]:  # enough feeds for choose_bits > 0
        for i in range(3):
            net.meshes[0].replica.append(who, Post("social", f"{i}", 1, None), net.now)
    for i in range(30):
        net.meshes[0].replica.append(identity(10 + i), Post("social", "x", 1, None), net.now)
    assert net.meshes[0].start_sync(ca, net.now)
    net.drop = lambda a, b, f: True  # keep the real answer away
    net.pump()
    net.drop = None
    round_id = next(f.round for _, _, f, _ in net.sent if isinstance(f, SyncOpen))
    net.meshes[0].data_received(ca, fr.encode(SyncBuckets(round_id, 0, b"\0" * 4)), net.now)
    net.pump()
    downs = [e for e in net.events[0] if isinstance(e, PeerDown)]
    assert [(d.reason, d.detail) for d in downs] == [
        ("protocol_error", "SYNC_BUCKETS of the wrong size")]


def test_want_from_seq_zero_serves_from_seq_one() -> None:
    from liberation_node.core import frames as fr
    from liberation_node.core.frames import Want

    net, ca, _ = _hello_pair()
    # A third author's feed: the node's own ops are served only once stored (sync.md §10.1).
    ops = [net.meshes[0].replica.append(PEOPLE[2], Post("social", f"{i}", 1, None),
                                        net.now).applied[0] for i in range(5)]
    net.sent.clear()
    net.meshes[0].data_received(ca, fr.encode(Want(0, ((PEOPLE[2].public_key, 0, 2),), (),
                                                   ())), net.now)
    net.pump()
    served = [w for _, to, f, _ in net.sent if to == 1 and isinstance(f, Ops) for w in f.wires]
    replica = net.meshes[0].replica
    assert served == [replica.carried(ops[0]), replica.carried(ops[1])]
    assert served[0][0] == 0x9B  # with their contents (ops.md §12.3)


def test_round_stats_count_the_ops_received() -> None:
    net, ca, _ = _hello_pair()
    for i in range(40):  # a third author: a node serves its own ops only once stored
        net.meshes[1].replica.append(PEOPLE[2], Post("social", f"{i}", 1, None), net.now)
    assert net.meshes[0].start_sync(ca, net.now)
    net.pump()
    finished = [e for e in net.events[0] if isinstance(e, SyncFinished)]
    assert [(f.in_sync, f.ops_received) for f in finished] == [(False, 40)]


def test_wants_split_into_frames_under_the_limit() -> None:
    from liberation_node.core import frames as fr
    from liberation_node.core.serving import want_frames

    ranges = [(bytes([i % 256]) * 32, 1, 2**40) for i in range(1500)]
    forks = [bytes([i % 256]) * 32 for i in range(300)]
    records = [(bytes([i % 256]) * 32, "node.links") for i in range(1500)]
    wants = want_frames(7, ranges, forks, records)
    assert all(len(fr.encode(w)) <= fr.MAX_FRAME_BYTES for w in wants)
    assert [w.round for w in wants] == [0] * (len(wants) - 1) + [7]
    assert sum(len(w.ranges) for w in wants) == 1500
    assert sum(len(w.records) for w in wants) == 1500


def test_a_content_a_peer_dropped_is_fetched_from_one_that_keeps_it() -> None:
    """sync.md §7.4: B dropped the contents (its retention) and sends C bare headers; C
    asks its peers in turn and takes the contents from A, which still holds them."""
    net = Net.of(PEOPLE[:3])
    posts = [net.meshes[0].write(Post("social", f"kept by A {i}", 1, None), net.now)
             for i in range(3)]
    net.connect(0, 1)
    net.advance(200)
    b = net.meshes[1].replica
    assert all(p.id in b.contents for p in posts)
    b.drop_contents([p.id for p in posts])
    net.lose(0, 1)
    net.connect(1, 2)  # C meets B only: headers without contents
    net.advance(200)
    c = net.meshes[2]
    assert all(p.id in c.replica.ops and p.id not in c.replica.contents for p in posts)
    assert len(c.bodies) == 3  # wanted, and asked of B, which has nothing to give
    net.connect(0, 2)
    net.advance(5_000)  # the next sweep asks the next peer: A
    assert all(c.replica.contents.get(p.id) == f"kept by A {i}".encode()
               for i, p in enumerate(posts))
    assert len(c.bodies) == 0 and c.bodies.asked >= 6
    stored = [ch for e in net.events[2] if isinstance(e, Changed) for ch in e.contents]
    assert {i for _, _, i, content in stored if content} == {p.id for p in posts}


def test_retracted_contents_are_neither_fetched_nor_kept() -> None:
    net = Net.of(PEOPLE[:2])
    post = net.meshes[0].write(Post("social", "regret", 1, None), net.now)
    net.connect(0, 1)
    net.advance(200)
    assert post.id in net.meshes[1].replica.contents
    net.meshes[0].write(Retract(post.id), net.now)
    net.advance(200)
    for mesh in net.meshes:
        assert post.id not in mesh.replica.contents and post.id in mesh.replica.ops
        assert not mesh.replica.contents.wants(mesh.replica.ops[post.id], net.now)
    purged = [ch for e in net.events[1] if isinstance(e, Changed) for ch in e.contents]
    assert (post.author, post.seq, post.id, None) in purged
