"""Every fault kind, end to end: the real core under it still converges, and the
checkers find nothing (DESIGN §6). Each test also checks the fault really
happened, so that a test cannot pass by accident of a fault that never fired."""

from __future__ import annotations

import random

import pytest

from liberation_node.core.bodies import Post, Register
from liberation_node.core.events import Changed
from liberation_node.core.identity import Identity
from liberation_node.core.mesh import MeshConfig
from liberation_node.core.peering import Dial
from liberation_node.core.scoring import id_key
from liberation_node.sim import FaultOptions, NetworkOptions, SimResult, World, simulate
from liberation_node.sim.node import SimNode
from liberation_node.store.memory import MemoryStore

from .common import small


def clean(result: SimResult) -> None:
    assert result.violations == []
    assert result.converged
    assert result.delivery_ratio == 1.0
    # Every node expected to converge (not a byzantine one, which its peers ban, sync.md
    # §4.7, nor one whose every edge leads to one) has the digest.
    assert result.digest is not None and set(result.digests) - {""} == {result.digest}


def test_no_faults_everything_arrives() -> None:
    result = simulate(small(nodes=10, ops=60))
    clean(result)
    assert result.writes == 60
    # Two nodes that dial each other at once keep one link (sync.md §4.2), and a node
    # over its high mark drops one: nothing else closes a session, nobody misbehaves.
    assert set(result.closes) <= {"duplicate_peer", "duplicate_peer (by peer)",
                                  "too_many_peers", "too_many_peers (by peer)"}
    assert result.misbehaved == {}
    assert result.last_delivery_hop >= 1 and result.rmr >= 0


def test_latency_spread_and_per_link_jitter() -> None:
    clean(simulate(small(network=NetworkOptions(latency_ms=(1, 400)))))
    clean(simulate(small(network=NetworkOptions(latency_ms=(20, 80), jitter_ms=10))))


def test_loss_costs_time_not_frames() -> None:
    """A lost frame is retransmitted (sim/network.py, as SCTP does): nothing is missing,
    no session breaks for a protocol error, and the rest is a matter of time."""
    result = simulate(small(network=NetworkOptions(loss=0.15), seed=2))
    clean(result)
    # (The count follows the frames sent: 132 of them lost when the gossip tree formed
    # later at boot and its cycles cost more frames, 86 since.)
    assert result.faults["lost"] > 50 and result.faults["retransmitted"] > 50
    assert "protocol_error" not in result.closes


def test_broken_connections_are_replaced_by_the_connection_manager() -> None:
    config = small(nodes=10, seed=3, duration_ms=15_000, faults=FaultOptions(breaks=8))
    world = World(config)
    result = world.run()
    clean(result)
    assert result.faults["breaks"] == 8 and result.faults["broken"] >= 8
    assert result.closes.get("transport_closed (by peer)", 0) >= 8
    assert all(len(n.mesh.peers()) > 0 for n in world.nodes if n.mesh is not None)


def test_peers_are_found_by_peer_exchange() -> None:
    """Each node starts knowing one other; the production connection manager finds the
    rest from presence records and keeps every node between its low and high marks."""
    world = World(small(nodes=16, degree=5, bootstrap=1, seed=4))
    result = world.run()
    clean(result)
    degrees = [len(n.mesh.peers()) for n in world.nodes if n.mesh is not None]
    assert min(degrees) >= 3 and max(degrees) <= 7
    assert result.traffic["dials"] > 16  # more than the bootstrap entries


def test_partition_times_out_links_and_they_are_redialed_after_heal() -> None:
    config = small(nodes=10, seed=6, duration_ms=20_000,
                   faults=FaultOptions(partition_at_ms=4_000, heal_at_ms=12_000))
    world = World(config)
    result = world.run()
    clean(result)
    assert result.faults["partitions"] == 1 and result.faults["cut"] > 0
    assert result.closes.get("timeout", 0) > 0  # the heartbeat noticed
    assert result.traffic["dial_failures"] > 0  # dials across the cut failed
    ups = result.traffic["sessions_up"]
    assert ups > 2 * world.config.nodes  # and links were made again after the heal
    assert all(len(n.mesh.peers()) > 0 for n in world.nodes if n.mesh is not None)


def test_crash_and_restart_rebuild_from_the_store() -> None:
    config = small(nodes=10, seed=7, ops=80, duration_ms=20_000,
                   faults=FaultOptions(crashes=4, downtime_ms=(500, 4_000)))
    world = World(config)
    result = world.run()
    clean(result)
    assert result.faults["crashes"] == result.faults["restarts"] == 4
    restarted = [n for n in world.nodes if n.starts > 1]
    assert restarted
    for node in restarted:  # the store kept what the node held, and then caught up
        assert sorted(node.stored_op_ids()) == sorted(node.replica.ops)


def test_a_restarted_node_keeps_its_own_ops() -> None:
    now = 1_767_225_600_000
    node = SimNode(0, Identity.from_seed(bytes(32)), MemoryStore(), random.Random(1),
                   MeshConfig(), "sim", byzantine=False)
    mesh = node.start(now)
    mesh.write(Register("ada"), now)
    mesh.write(Post("social", "hello", 1, None), now + 1)
    while (event := mesh.next_event()) is not None:
        if isinstance(event, Changed):
            node.persist(event)
    before = mesh.replica.digest()
    node.crash()
    assert not node.alive
    again = node.start(now + 5_000)
    assert again is not mesh and again.replica.ops_digest() == mesh.replica.ops_digest()
    assert again.replica.digest() == before
    assert node.starts == 2


def test_byzantine_nodes_attack_in_every_way_and_fail() -> None:
    config = small(nodes=10, seed=8, ops=60, duration_ms=20_000,
                   faults=FaultOptions(byzantine=2, byzantine_interval_ms=200))
    world = World(config)
    result = world.run()
    clean(result)
    for kind in ("forged", "altered", "replayed", "equivocation", "garbage"):
        assert result.faults[f"byzantine_{kind}"] > 5, kind
    assert result.misbehaved.get("bad_signature", 0) > 0  # forged and altered ops
    assert result.closes.get("protocol_error", 0) > 0  # garbage frames
    liars = [n.identity.public_key for n in world.nodes if n.byzantine]
    assert all(a in world.registry.equivocators for a in liars)
    for node in world.nodes:  # every replica, liars' own included, knows they forked
        for liar in liars:
            feed = node.replica.feeds[liar]
            assert feed.fork_seq is not None and len(feed.proofs) == 2
            assert feed.fork_seq >= world.registry.equivocators[liar]


def test_replayed_ops_are_only_duplicates() -> None:
    config = small(nodes=6, seed=9, faults=FaultOptions(byzantine=1, byzantine_interval_ms=100))
    result = simulate(config)
    clean(result)
    assert result.faults["byzantine_replayed"] >= 5  # until its peers ban it for its other acts
    assert "duplicate" not in result.misbehaved


def test_everything_at_once() -> None:
    config = small(nodes=14, seed=10, ops=80, duration_ms=20_000,
                   network=NetworkOptions(loss=0.05),
                   faults=FaultOptions(partition_at_ms=5_000, heal_at_ms=11_000, crashes=3,
                                       breaks=5, byzantine=2, byzantine_interval_ms=400))
    result = simulate(config)
    clean(result)
    assert result.convergence_ms is not None


def test_a_crash_loses_only_what_was_not_committed_and_no_acked_write() -> None:
    """A slow disk (50 ms commits) under many writes: crashes hit uncommitted batches;
    those ops die with the node (they were never acknowledged nor published), its
    restart writes new ops at their seqs, and no node ever finds it forked."""
    lost = 0
    for seed in range(6):
        world = World(small(seed=seed, nodes=8, ops=200, commit_ms=50,
                            faults=FaultOptions(crashes=3)))
        result = world.run()
        clean(result)  # the checkers found no lost acknowledged op and no fork
        assert result.traffic["acknowledged"] > 0
        lost += result.faults["uncommitted_lost"]
        assert result.traffic.get("writes_opened", 0) >= 1  # restarts checked their feeds
    assert lost > 0  # the fault really fired


def test_clocks_apart_by_just_under_the_bound_converge() -> None:
    """ops.md §5.4, §8.4: with production record timers, clocks 14.9 minutes apart still
    converge (records included); with the old 5-minute lifetime they did not."""
    production = MeshConfig()

    def run(record_ttl_ms: int) -> SimResult:
        world = World(small(nodes=4, degree=2, ops=8, duration_ms=20_000, liveness_ms=400_000,
                            mesh=MeshConfig(record_ttl_ms=record_ttl_ms)))
        for node, skew in zip(world.nodes, (0, 894_000, 300_000, 600_000), strict=True):
            node.skew_ms = skew
        return world.run()

    clean(run(production.record_ttl_ms))
    assert not run(5 * 60_000).converged


def test_honest_nodes_are_never_banned_on_a_lossy_network() -> None:
    """sync.md §4.7: the channel is reliable and ordered (as SCTP is), so loss cannot
    duplicate or reorder frames; what it does to honest peers is stall them (frames held
    back for retransmission) and break their connections (too many retransmissions),
    which they then dial again. That costs them a little score, never a ban, while the
    liar among them is banned."""
    config = small(nodes=10, seed=21, ops=80, duration_ms=30_000,
                   network=NetworkOptions(loss=0.2, max_retransmits=2),
                   faults=FaultOptions(breaks=5, byzantine=1, byzantine_interval_ms=200))
    result = simulate(config)
    clean(result)  # the checker flags any ban of an honest node or of its address
    assert result.faults["bans"] > 0
    assert result.faults["broken"] > result.faults["breaks"]  # loss did break connections
    assert result.faults["retransmitted"] > 100


def test_a_simulated_node_does_not_dial_whom_it_bans(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator runs the connection manager as the daemon builds it (node.py): with
    the mesh's scores, so a node does not dial a peer it banned until the ban ends
    (transport.md §7.3). Built without them, honest nodes dialed the liar again and
    again, each time for a session their mesh refused at once."""
    config = small(nodes=12, seed=0, ops=80, duration_ms=30_000,
                   faults=FaultOptions(byzantine=2, byzantine_interval_ms=200))
    world = World(config)
    dial = world._dial
    dials = {"banned": 0, "other": 0}  # dials by honest and byzantine nodes alike

    def watch(node: SimNode, d: Dial) -> None:
        if node.mesh is not None and d.node_id is not None and node.mesh.scores.banned(
                id_key(d.node_id), node.now(world.clock.now)):
            dials["banned"] += 1
        else:
            dials["other"] += 1
        dial(node, d)

    monkeypatch.setattr(world, "_dial", watch)
    result = world.run()
    clean(result)
    assert result.faults["bans"] > 0 and dials["other"] > 0
    assert dials["banned"] == 0
