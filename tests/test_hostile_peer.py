"""A hostile peer against one real Mesh engine, frame by frame (issue 9; sync.md §4.7, §4.8,
§7.3, §9.2). The same attacks run over real WebRTC in tests/daemon/test_hostile_peers.py;
here each is a fast, exact check of what the engine answers and how much it costs."""

from __future__ import annotations

import random
import time

from liberation_node.core import frames
from liberation_node.core.bodies import Post, Register
from liberation_node.core.buckets import BucketIndex
from liberation_node.core.events import Banned, Event, PeerDown, PeerUp
from liberation_node.core.frames import (
    Frame,
    Graft,
    Hello,
    Ops,
    Records,
    Signal,
    SyncBuckets,
    SyncOpen,
    Want,
)
from liberation_node.core.identity import Identity
from liberation_node.core.mesh import Mesh, MeshConfig
from liberation_node.core.ownfeed import OwnFeedConfig
from liberation_node.core.quotas import QuotaConfig
from liberation_node.core.reconcile import bucket_hashes
from liberation_node.core.records import NodeInfo, NodeLinks, create_record
from liberation_node.core.replica import Replica
from liberation_node.core.session import HELLO_DOMAIN

from .daemon.hostile import ops as ops_frame
from .daemon.hostile import records as records_frame
from .history import NETWORK, T0, identity
from .history import HistoryBuilder as History

VICTIM = identity(1)


def victim(replica: Replica | None = None, **config: object) -> Mesh:
    cfg = MeshConfig(own_feed=OwnFeedConfig(check=False), **config)  # type: ignore[arg-type]
    return Mesh(VICTIM, replica or Replica(NETWORK), cfg, random.Random(1).randbytes, T0)


_ROUTES: dict[int, dict[int, Hostile]] = {}  # id(mesh) -> conn -> the session's far end


class Hostile:
    """One session into `mesh`, driven frame by frame; what the mesh sends back is kept
    (by whichever session drains the mesh)."""

    def __init__(self, mesh: Mesh, conn: int = 1, who: Identity | None = None,
                 address: str | None = "192.0.2.66", now: int = T0) -> None:
        self.mesh, self.conn, self.now = mesh, conn, now
        self.who = who or identity(66)
        self.binding = bytes([conn]) * 32
        self.got: list[Frame] = []
        self.bytes = 0
        self.events: list[Event] = []
        _ROUTES.setdefault(id(mesh), {})[conn] = self
        mesh.connection_made(conn, self.binding, now, initiator=False, address=address)
        self.send(Hello(1, NETWORK, self.who.public_key,
                        self.who.sign(HELLO_DOMAIN + self.binding), "hostile/1"))

    def send(self, frame: Frame | bytes) -> None:
        data = frame if isinstance(frame, bytes) else frames.encode(frame)
        self.mesh.data_received(self.conn, data, self.now)
        self.drain()

    def drain(self, budget: int | None = None) -> int:
        out = self.mesh.datagrams_to_send(self.now, (lambda c: budget) if budget else None)
        routes = _ROUTES[id(self.mesh)]
        sent = 0
        for conn, data in out:
            if conn in routes:
                routes[conn].got.append(frames.decode(data))
                routes[conn].bytes += len(data)
            sent += len(data) if conn == self.conn else 0
        while (event := self.mesh.next_event()) is not None:
            for far in routes.values():
                far.events.append(event)
        return sent

    def closed(self) -> str | None:
        return next((e.reason for e in self.events
                     if isinstance(e, PeerDown) and e.conn == self.conn), None)


def populated(ops: int = 20, size: int = 4000) -> Replica:
    history = History()
    replica = Replica(NETWORK)
    for i in range(ops):
        who = identity(10 + i % 5)
        if who.public_key not in replica.feeds:
            replica.ingest(history.write(who, Register(f"n{i}")).wire)
        post = history.write(who, Post("social", "x" * size, 1, None))
        replica.ingest(history.carried(post))  # with its text (ops.md §12.3)
    return replica


def test_a_graft_naming_one_op_880_times_is_answered_once() -> None:
    """Finding 1: each ref used to append the op to the peer's queue: 880 copies of a
    4 KB op (3.5 MB) for one 64 KB frame."""
    replica = populated()
    mesh = victim(replica)
    peer = Hostile(mesh)
    op = max(replica.ops.values(), key=lambda o: len(replica.carried(o)))
    wire = replica.carried(op)
    before = peer.bytes
    peer.send(Graft(((op.author, op.seq, op.id),) * 880))
    answers = [f for f in peer.got if isinstance(f, Ops) and not f.eager]
    assert [w for f in answers for w, _ in f.ops] == [wire]  # once
    assert peer.bytes - before < 2 * len(wire) + 2048  # no amplification
    assert mesh.scores.penalties == {"repeated_request": 1}


def test_wants_naming_one_thing_thousands_of_times_cost_one_answer() -> None:
    history = History()
    replica = populated()
    author = identity(20)
    record = history.record(author, NodeInfo("x" * 60, "s", (), (), ()))
    replica.add_record(record)
    mesh = victim(replica)
    peer = Hostile(mesh)
    peer.got.clear()
    before = peer.bytes
    peer.send(Want(0, (), (), ((author.public_key, "node.info"),) * 1400))  # ~63 KB
    peer.send(Want(0, (), (identity(10).public_key,) * 1850, ()))
    assert peer.closed() is None
    sent_records = [w for f in peer.got if isinstance(f, Records) for w, _ in f.records]
    assert sent_records.count(record.wire) == 1
    assert peer.bytes - before < 4096


def test_answers_are_paced_by_the_link_and_the_serve_budget() -> None:
    """A WANT of a few bytes may ask for the whole replica: it is answered, but only as
    fast as the link drains and the peer's serve budget allows."""
    replica = populated(ops=400, size=4000)  # ~1.6 MB of ops
    from liberation_node.core.serving import ServeConfig

    serve = ServeConfig(bytes_per_s=200_000, burst_bytes=400_000)
    mesh = victim(replica, serve=serve)
    peer = Hostile(mesh)
    wants = tuple((a, 1, 2**53 - 1) for a in replica.feeds)
    start = peer.bytes
    for _ in range(50):  # asked again and again: what is owed is not queued again
        peer.send(Want(0, wants, (), ()))
    assert mesh.backlog(peer.conn) <= 3 * len(wants)  # a range, and the part sent already
    assert peer.bytes - start < 400_000 + 80_000  # the burst, about
    assert mesh.get_timer() is not None  # when the budget allows more
    peer.now += 1000
    assert 100_000 < peer.drain(budget=10**9) < 200_000 + 40_000  # then the rate
    peer.now += 1000
    assert 0 < peer.drain(budget=20_000) <= 20_000 + 9_000  # and never past the link's


def test_sync_open_costs_the_difference_and_is_rate_limited() -> None:
    """Finding 2: 47-byte SYNC_OPENs at 150/s cost the responder 40 ms each at 8,000
    feeds. Now they are answered from the bucket index, at most a burst of 8 then 4/s."""
    history = History()
    replica = Replica(NETWORK)
    for i in range(8_000):
        replica.ingest(history.raw(Identity.from_seed(i.to_bytes(32, "big")),
                                   Register(f"{i}")).wire)
    mesh = victim(replica)
    peer = Hostile(mesh)
    started = time.perf_counter()
    for i in range(150):
        peer.send(SyncOpen(i + 1, bytes(32), 10, i.to_bytes(8, "big")))
    elapsed = time.perf_counter() - started
    answered = [f for f in peer.got if isinstance(f, SyncBuckets)]
    assert len(answered) == MeshConfig().sync_burst
    assert elapsed < 1.0  # was 150 x 40 ms = 6 s; the first answer builds the index
    assert peer.closed() == "banned"  # 20 over the rate, 5 points each
    assert mesh.rejected["sync_flood"] == 20
    # Another peer's rounds: each answer costs a hash per bucket, nothing per feed.
    other = Hostile(mesh, conn=2, who=identity(67), address="203.0.113.7")
    started = time.perf_counter()
    for i in range(4):
        other.send(SyncOpen(200 + i, bytes(32), 10, bytes([i]) * 8))
    assert time.perf_counter() - started < 0.2
    assert len([f for f in other.got if isinstance(f, SyncBuckets)]) == 4


def test_the_bucket_index_hashes_like_the_definition() -> None:
    history = History()
    replica = Replica(NETWORK)
    index = BucketIndex(replica)
    rng = random.Random(5)
    for step in range(300):
        who = identity(rng.randrange(40))
        if rng.random() < 0.8:
            replica.ingest(history.write(who, Post("social", f"{step}", 1, None)).wire)
        else:
            replica.add_record(history.record(who, NodeLinks(())))
        if step % 37 == 0:
            replica.prune_records(history.now + 10**9 if step % 74 == 0 else 0)
        bits = rng.randrange(0, 13)
        salt = rng.randbytes(8)
        assert index.hashes(bits, salt) == bucket_hashes(replica, bits, salt), step


def test_a_misbehaving_peer_is_banned_and_refused_when_it_comes_back() -> None:
    """Finding 6: a peer closed for 16 strikes used to reconnect at once."""
    mesh = victim()
    history = History()
    forged = bytearray(history.raw(identity(30), Register("x")).wire)
    forged[-1] ^= 1  # bad signature: a strike each

    def lie(peer: Hostile) -> None:
        for _ in range(20):
            peer.send(ops_frame((bytes(forged),)))

    peer = Hostile(mesh)
    lie(peer)
    assert peer.closed() in ("misbehaving", "banned")
    assert any(isinstance(e, Banned) and e.key.startswith("id:") for e in peer.events)
    again = Hostile(mesh, conn=2, who=peer.who, address="198.51.100.9")  # a new address
    assert again.closed() == "banned"  # its node id is banned
    # Its address weighs half per proven identity: a second liar from it bans it too,
    # and then new identities from there are refused (rotating ids does not help).
    second = Hostile(mesh, conn=3, who=identity(67))
    assert second.closed() is None
    lie(second)
    assert mesh.banned("192.0.2.66", T0)
    third = Hostile(mesh, conn=4, who=identity(68))
    assert third.closed() == "banned"
    fresh = Hostile(mesh, conn=5, who=identity(69), address="203.0.113.1")
    assert fresh.closed() is None and any(isinstance(e, PeerUp) and e.conn == 5
                                          for e in fresh.events)


def test_signals_go_only_towards_known_routes_within_limits() -> None:
    """Finding 7: SIGNAL frames with ttl 8 and 32 KB payloads for an unknown node were
    forwarded to every other peer."""
    mesh = victim()
    a = Hostile(mesh, conn=1, who=identity(40), address="192.0.2.1")
    b = Hostile(mesh, conn=2, who=identity(41), address="192.0.2.2")
    b.got.clear()
    unknown = identity(99).public_key
    for i in range(10):
        a.send(Signal(unknown, identity(50 + i).public_key, i, 8, "x" * 32_000))
    b.drain()
    assert not [f for f in b.got if isinstance(f, Signal)]  # no route: nothing relayed
    a.now = b.now = T0 + 1000  # (20 SIGNAL frames a second per session)
    for i in range(10):  # a route (b itself), but too big
        a.send(Signal(identity(41).public_key, identity(60).public_key, 100 + i, 8,
                      "x" * 32_000))
    a.send(Signal(identity(41).public_key, identity(61).public_key, 200, 8, '{"type": "x"}'))
    b.drain()
    relayed = [f for f in b.got if isinstance(f, Signal)]
    assert [(s.nonce, s.ttl) for s in relayed] == [(200, MeshConfig().signal_ttl - 1)]
    a.now = b.now = T0 + 2000
    for i in range(10):  # one claimed origin, many signals: a few pass
        a.send(Signal(identity(41).public_key, identity(62).public_key, 300 + i, 3, "{}"))
    b.drain()
    assert len([f for f in b.got if isinstance(f, Signal)]) == 1 + 2  # its burst
    assert mesh.relay.dropped == {"payload": 20, "origin_rate": 8}
    a.send(Signal(unknown, identity(63).public_key, 400, 3, "{}"))  # small, but no route
    assert mesh.relay.dropped["no_route"] == 1
    assert a.closed() is None and mesh.scores.penalties == {}


def test_op_spam_of_one_author_is_held_to_its_quota() -> None:
    """Finding 5: ops of one author are taken in at `author_ops_per_s` after a burst; the
    rest are deferred (not held, not blamed) and fetched again later."""
    mesh = victim(quotas=QuotaConfig(author_ops_per_s=10, author_ops_burst=20))
    peer = Hostile(mesh)
    history = History()
    spammer = identity(70)
    wires = [history.write(spammer, Post("social", f"{i}", 1, None)).wire for i in range(50)]
    peer.send(ops_frame(wires))
    assert len(mesh.replica.feeds[spammer.public_key].ops) == 20
    assert mesh.rejected["over_quota"] == 30
    assert peer.closed() is None and mesh.scores.penalties == {}
    peer.now += 1000
    peer.send(ops_frame(wires[20:]))
    assert len(mesh.replica.feeds[spammer.public_key].ops) == 30


def test_records_kept_are_capped_and_never_ours_or_a_peers() -> None:
    """Finding 5: 3,000 node.info records of fresh identities were all kept (and
    flooded). Now at most `max_records`; the oldest versions of strangers go first."""
    mesh = victim(quotas=QuotaConfig(max_records=50))
    mesh.publish_presence(T0)
    peer = Hostile(mesh)
    records = [create_record(Identity.from_seed(i.to_bytes(32, "big")), network=NETWORK,
                             version=T0 + i, ttl_ms=3_600_000,
                             body=NodeInfo(f"spam{i}", "", (), (), ())).wire
               for i in range(300)]
    for i in range(0, 300, 30):
        peer.send(records_frame(records[i:i + 30]))
    assert len(mesh.replica.records) == 50
    assert (VICTIM.public_key, "node.info") in mesh.replica.records
    kept = {r.body.name for r in mesh.replica.records.values()  # type: ignore[union-attr]
            if r.author != VICTIM.public_key}
    assert kept == {f"spam{i}" for i in range(300 - 48, 300)}  # the newest


def test_no_data_from_peers_while_the_disk_is_low() -> None:
    mesh = victim()
    peer = Hostile(mesh)
    history = History()
    mesh.quotas.no_room = "12 MiB free"
    peer.send(ops_frame((history.write(identity(71), Register("x")).wire,)))
    peer.send(records_frame((history.record(identity(72), NodeLinks(())).wire,)))
    assert not mesh.replica.ops and not mesh.replica.records
    assert mesh.rejected["no_room"] == 2
    mesh.write(Post("social", "mine", 1, None), T0)  # our own writes go on
    assert len(mesh.replica.ops) == 1
