"""What a run measures (sim/metrics.py): hops, copies, delivery, redundancy."""

from __future__ import annotations

from liberation_node.core import frames
from liberation_node.core.bodies import Post
from liberation_node.core.gossip import GossipConfig
from liberation_node.core.identity import Identity
from liberation_node.core.mesh import MeshConfig
from liberation_node.core.ops import create_op
from liberation_node.core.replica import Replica
from liberation_node.sim import NetworkOptions, World, simulate
from liberation_node.sim.checkers import Registry
from liberation_node.sim.metrics import Metrics

from .common import small

T = 1_767_225_600_000


def test_hops_and_copies_follow_ops_frames() -> None:
    registry = Registry()
    who = Identity.from_seed(b"w" * 32)
    op = create_op(who, network="sim", seq=1, prev=None, timestamp=T,
                   body=Post("social", "x", 1, None))
    registry.add(op)
    metrics = Metrics(4, registry)
    metrics.wrote(0, op)
    frame = frames.encode(frames.Ops(True, ((op.wire, 0),)))
    metrics.delivered(0, 1, frame)  # hop 1
    metrics.delivered(1, 2, frame)  # hop 2
    metrics.delivered(0, 2, frame)  # a second copy: still hop 2 (first arrival counts)
    junk = frames.Ops(False, ((op.wire, 255), (b"junk", 0)))
    metrics.delivered(2, 3, frames.encode(junk))  # hop 3
    metrics.delivered(3, 0, frames.encode(frames.Ping(1)))  # not an OPS frame
    assert [h.get(op.id) for h in metrics.hops] == [0, 1, 2, 3]
    assert metrics.copies == {op.id: 4}
    replicas = [Replica("sim") for _ in range(4)]
    for r in replicas[:3]:
        r.add(op)
    result = metrics.dissemination(replicas)
    assert result.delivery_ratio == 0.75
    assert result.last_delivery_hop == 3 and result.mean_hop == 2.0
    assert abs(result.rmr - (4 / 3 - 1)) < 1e-9


def test_two_nodes_one_hop_no_redundancy_to_speak_of() -> None:
    result = simulate(small(nodes=2, degree=1, ops=10))
    assert result.violations == [] and result.delivery_ratio == 1.0
    assert result.last_delivery_hop == 1 and result.mean_hop == 1.0
    assert 0 <= result.rmr < 0.5


def test_report_fields() -> None:
    world = World(small(seed=3))
    result = world.run()
    data = result.to_json()
    for key in ("seed", "nodes", "converged", "delivery_ratio", "convergence_ms",
                "last_delivery_hop", "rmr", "bytes_per_node", "violations"):
        assert key in data
    assert "digests" not in data  # per node: in the object, not in the JSON
    assert data["bytes_per_node"] == world.network.counts["bytes"] // 8
    assert result.summary()[0].startswith("seed 3: 8 nodes, 40 ops written")
    assert result.command.startswith("liberation-node simulate --nodes 8 --seed 3 ")


def _spaced(author_fanout: bool, seed: int = 1) -> World:
    gossip = GossipConfig(author_fanout=author_fanout)
    return World(small(nodes=12, degree=4, ops=12, duration_ms=30_000, write_interval_ms=2_000,
                       network=NetworkOptions(latency_ms=(20, 80), jitter_ms=0), seed=seed,
                       mesh=MeshConfig(gossip=gossip)))


def test_evenly_spaced_writes_build_a_spanning_tree() -> None:
    """One broadcast at a time over stable links: Plumtree pushes each op along a tree
    (DESIGN §3). The beacon's record, pushed to every peer, prunes most redundant links
    before the first op (sync.md §5.9; the first op used to flood, 18 copies), the first
    one or two ops the rest: from the third op on, an op crosses each of 12 nodes once
    (11 copies) in 9 of 10 at least, over 8 seeds, and the eager links end as a spanning
    tree. (One seed used to be pinned, where the first op already crossed each node
    once; any change of timing, as the answerer's PING at open, moved that to another.)
    Anti-entropy leaves ops in flight alone, and what a round does fetch is announced,
    not pushed, so it cannot add copies (sync.md §5.2, §6.5). Authors push to the tree
    only here (plain Plumtree): the next test is about their pushes to every peer."""
    once = later = 0
    for seed in range(1, 9):
        world = _spaced(author_fanout=False, seed=seed)
        result = world.run()
        assert result.violations == [] and result.delivery_ratio == 1.0
        ops = sorted(world.registry.ops.values(), key=lambda op: op.timestamp)
        copies = [world.metrics.copies.get(op.id, 0) for op in ops]
        assert min(copies) >= 11 and max(copies[2:]) < 18, (seed, copies)
        once += sum(1 for c in copies[2:] if c == 11)
        later += len(copies[2:])
        assert _eager_links(world) == 11, seed  # a spanning tree of 12 nodes
    assert once >= 0.9 * later, (once, later)


def test_an_authors_push_to_every_peer_shortens_the_ways_and_keeps_the_tree() -> None:
    """An author pushes its own op to every peer (sync.md §5.2): the op enters the tree
    at each of them, so it crosses fewer links on its way, for a few duplicates where the
    entries meet; those prune nothing the tree needs, so the next op costs no more."""
    plain, fanout = _spaced(author_fanout=False), _spaced(author_fanout=True)
    plain_result, fanout_result = plain.run(), fanout.run()
    assert fanout_result.violations == [] and fanout_result.delivery_ratio == 1.0
    assert fanout_result.mean_hop < plain_result.mean_hop
    ops = sorted(fanout.registry.ops.values(), key=lambda op: op.timestamp)
    copies = [fanout.metrics.copies.get(op.id, 0) for op in ops]
    assert all(11 <= c <= 11 + 2 * 5 for c in copies), copies  # 5: most peers of a node
    assert _eager_links(fanout) == 11 == _eager_links(plain)  # still a spanning tree


def _eager_links(world: World) -> int:
    """The eager links at the end of a run, checked to connect every node."""
    ends = world.network.endpoints
    links = {frozenset((n.index, ends[ends[c].peer].node))
             for n in world.nodes if n.mesh is not None for c in n.mesh.gossip.eager}
    reached, frontier = {0}, [0]
    while frontier:
        a = frontier.pop()
        for link in links:
            if a in link and not link <= reached:
                (b,) = link - {a}
                reached.add(b)
                frontier.append(b)
    assert reached == {n.index for n in world.nodes}
    return len(links)
