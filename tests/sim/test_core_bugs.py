"""Core bugs found by the simulator, each reduced to a minimal reproduction on the
Mesh alone. Each was first committed as xfail(strict); once core was fixed the
mark came off, and the test stays as a regression test.

- SYNC_BUCKETS bits were checked against the initiator's feed count at reply
  time, not the count it sent in SYNC_OPEN (sync.md A.17, fixed in 7ad71e1).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from liberation_node.core import frames
from liberation_node.core.bodies import Post, Register
from liberation_node.core.events import PeerDown
from liberation_node.core.identity import Identity
from liberation_node.core.mesh import Mesh, MeshConfig
from liberation_node.core.ops import create_op
from liberation_node.core.ownfeed import OwnFeedConfig
from liberation_node.core.replica import Replica

T = 1_767_225_600_000
FRESH = MeshConfig(own_feed=OwnFeedConfig(check=False))  # identities made just now


def counter(start: int) -> Callable[[int], bytes]:
    state = [start]

    def entropy(n: int) -> bytes:
        state[0] += 1
        return state[0].to_bytes(8, "big")[:n].rjust(n, b"\0")

    return entropy


def test_feeds_learnt_during_a_round_do_not_kill_the_session() -> None:
    a = Mesh(Identity.from_seed(b"a" * 32), Replica("sim"), FRESH, counter(0), T)
    b = Mesh(Identity.from_seed(b"b" * 32), Replica("sim"), FRESH, counter(100), T)
    b.write(Register("bob"), T)  # so that the digests differ and B answers with buckets
    a.connection_made(1, b"binding", T, initiator=True)  # A reconciles as soon as it is open
    b.connection_made(2, b"binding", T, initiator=False)
    to: dict[Mesh, tuple[Mesh, int]] = {a: (b, 2), b: (a, 1)}
    wire: deque[tuple[Mesh, int, bytes]] = deque()
    held: list[tuple[Mesh, int, bytes]] = []

    def pump() -> None:
        for mesh in (a, b):
            timer = mesh.get_timer()
            if timer is not None and timer <= T:
                mesh.handle_timer(T)
            for _, data in mesh.datagrams_to_send(T):
                wire.append((*to[mesh], data))

    pump()
    while wire:
        dest, conn, data = wire.popleft()
        if isinstance(frames.decode(data), frames.SyncBuckets):
            held.append((dest, conn, data))  # in flight...
            continue
        dest.data_received(conn, data, T)
        pump()
    assert len(held) == 1 and held[0][0] is a
    # ...while it travels, A learns ops of five authors from another peer (the
    # responder sized its buckets for at most four: FEEDS_PER_BUCKET).
    for i in range(5):
        author = Identity.from_seed(bytes([i + 1]) * 32)
        op = create_op(author, network="sim", seq=1, prev=None, timestamp=T,
                       body=Post("social", f"hello {i}", 1, None))
        a.replica.add(op)
    dest, conn, data = held[0]
    dest.data_received(conn, data, T)
    pump()
    closes = []
    while (event := a.next_event()) is not None:
        if isinstance(event, PeerDown):
            closes.append((event.reason, event.detail))
    assert closes == []
    assert a.peers() == {1: b.identity.public_key}
