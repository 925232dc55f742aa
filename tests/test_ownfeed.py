"""A node's own feed (protocols/sync.md §10, core/ownfeed.py): durable before seen,
and checked with peers before writing, so that no crash or restored backup ever
makes a node sign two ops at one position of its own feed."""

from __future__ import annotations

import dataclasses

import pytest

from liberation_node.core import frames
from liberation_node.core.bodies import Post
from liberation_node.core.errors import LocalError, NotWritable
from liberation_node.core.events import ForkFound, WritesOpened
from liberation_node.core.frames import IHave, Ops, Want
from liberation_node.core.mesh import Mesh
from liberation_node.core.ops import create_op
from liberation_node.core.ownfeed import CHECKING_REASON, FORKED_REASON, OwnFeedConfig
from liberation_node.core.replica import Replica

from .history import NETWORK, identity
from .meshnet import Net

A, B, C = identity(0), identity(1), identity(2)


def carried(net: Net, op_id: bytes) -> list[tuple[int, int]]:
    """(from, to) of every OPS frame that carried op `op_id`."""
    from liberation_node.core.ops import op_id as id_of
    from liberation_node.core.ops import split_carried

    def header(wire: bytes) -> bytes:  # a carried form's header (ops.md §12.3)
        return split_carried(wire)[0] if wire[:1] == b"\x9b" else wire

    return [(f, t) for f, t, frame, _ in net.sent if isinstance(frame, Ops)
            and any(id_of(header(w)) == op_id for w in frame.wires)]


def test_an_own_write_is_neither_pushed_nor_served_before_it_is_stored() -> None:
    net = Net.of([A, B])
    net.auto_commit = False
    net.connect(0, 1)
    net.advance(100)
    op = net.meshes[0].write(Post("social", "not yet on disk", 1, None), net.now)
    ticket = net.meshes[0].ticket
    net.pump()
    assert carried(net, op.id) == []
    # Asked for by range (anti-entropy, or a peer that saw our head), it is held back too.
    conn_of_a = next(c for (n, c), _ in net.links.items() if n == 0)
    net.meshes[0].data_received(conn_of_a, frames.encode(Want(0, ((A.public_key, 1, 9),), (),
                                                              ())), net.now)
    net.pump()
    assert carried(net, op.id) == []
    net.meshes[0].stored(ticket, net.now)  # the store committed it: now it goes out
    net.pump()
    assert (0, 1) in carried(net, op.id)
    assert op.id in net.meshes[1].replica.ops


def test_announcements_of_own_ops_wait_for_the_commit_too() -> None:
    net = Net.of([A, B, C])
    net.auto_commit = False
    for a, b in ((0, 1), (0, 2), (1, 2)):
        net.connect(a, b)
    net.advance(100)
    op = net.meshes[0].write(Post("social", "x", 1, None), net.now)
    net.advance(2_000)  # lazy announcements are due by now
    refs = [r for _, _, frame, _ in net.sent if isinstance(frame, IHave) for r in frame.refs]
    assert all(r[2] != op.id for r in refs)


def _history(n: int) -> list:
    """n posts by A, as its node wrote them."""
    net = Net.of([A])
    return [net.meshes[0].write(Post("social", f"post {i}", 1, None), net.now + i)
            for i in range(n)]


def _replica(ops: list) -> Replica:
    replica = Replica(NETWORK)
    for op in ops:
        replica.add(op)
    return replica


def test_a_restored_backup_catches_up_with_its_own_feed_before_writing() -> None:
    ops = _history(5)
    backup = _replica(ops[:2])  # restored from before the last three writes
    net = Net.of([A, B], replicas=[backup, _replica(ops)], check_own=True)
    with pytest.raises(NotWritable, match="checking this node's own feed"):
        net.meshes[0].write(Post("social", "too early", 1, None), net.now)
    net.connect(0, 1)
    net.advance(100)
    assert net.meshes[0].writable() is None
    assert [e for e in net.events[0] if isinstance(e, WritesOpened)] == [WritesOpened(1, 3)]
    new = net.meshes[0].write(Post("social", "after the restore", 1, None), net.now)
    assert new.seq == 6  # after the three that came back, not at seq 3
    net.advance(100)
    assert not [e for m in net.events for e in m if isinstance(e, ForkFound)]
    assert new.id in net.meshes[1].replica.ops


def test_without_the_check_a_restored_backup_forks_its_identity() -> None:
    """The danger the check prevents, shown on the same history."""
    ops = _history(5)
    net = Net.of([A, B], replicas=[_replica(ops[:2]), _replica(ops)], check_own=False)
    new = net.meshes[0].write(Post("social", "after the restore", 1, None), net.now)
    assert new.seq == 3
    net.connect(0, 1)
    net.advance(100)
    forks = [e for m in net.events for e in m if isinstance(e, ForkFound)]
    assert {(f.author, f.seq) for f in forks} == {(A.public_key, 3)}
    assert net.meshes[0].writable() == FORKED_REASON


def test_with_no_peer_writes_open_after_the_grace_period() -> None:
    net = Net.of([A], replicas=[_replica(_history(2))], check_own=True)
    assert net.meshes[0].writable() == CHECKING_REASON
    net.advance(9_000)
    assert net.meshes[0].writable() == CHECKING_REASON
    net.advance(1_001)
    assert net.meshes[0].writable() is None
    assert [e for e in net.events[0] if isinstance(e, WritesOpened)] == [WritesOpened(0, 0)]


def test_recover_waits_for_a_peer_however_long() -> None:
    net = Net.of([A, B], replicas=[Replica(NETWORK), _replica(_history(3))], check_own=True)
    recover = dataclasses.replace(net.meshes[0].config,
                                  own_feed=OwnFeedConfig(check=True, grace_ms=None))
    net.meshes[0] = Mesh(A, Replica(NETWORK), recover, lambda n: bytes(n), net.now)
    net.advance(3_600_000)
    assert net.meshes[0].writable() == CHECKING_REASON
    net.connect(0, 1)
    net.advance(100)
    assert net.meshes[0].writable() is None
    assert net.meshes[0].replica.feeds[A.public_key].head_seq == 3


def test_a_fork_is_reported_and_an_own_fork_closes_writes() -> None:
    ops = _history(2)
    net = Net.of([A, B], replicas=[_replica(ops), _replica(ops)])
    other = create_op(A, network=NETWORK, seq=2, prev=ops[0].id, timestamp=ops[1].timestamp,
                      body=Post("social", "a second op at seq 2", 1, None))
    net.connect(0, 1)
    conn_of_b = next(c for (n, c), _ in net.links.items() if n == 1)
    net.meshes[1].data_received(conn_of_b, frames.encode(Ops(False, ((other.wire, 255),))), net.now)
    net.pump()
    assert [(e.author, e.seq) for e in net.events[1] if isinstance(e, ForkFound)] == [
        (A.public_key, 2)]
    net.advance(100)  # B trades both versions back to A: A learns its identity forked
    assert (A.public_key, 2) in {(e.author, e.seq) for e in net.events[0]
                                 if isinstance(e, ForkFound)}
    assert net.meshes[0].writable() == FORKED_REASON
    with pytest.raises(LocalError) as refused:  # for good: not a pause (API 409, not 503)
        net.meshes[0].write(Post("social", "after the fork", 1, None), net.now)
    assert not isinstance(refused.value, NotWritable)
