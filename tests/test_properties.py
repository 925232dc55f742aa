"""Merge properties (DESIGN §2, protocols/ops.md §9-§10), checked with hypothesis.

Histories mix honest writers with misbehaviour (void ledger ops, equivocation,
retractions, records). For any delivery order, with any duplicates, every
replica ends with the same digest and the same views; merging replicas is
commutative, associative and idempotent.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liberation_node.core.bodies import Claim, Post, Register, Retract, Transfer, is_post
from liberation_node.core.errors import LocalError
from liberation_node.core.ledger import fold, iso_week
from liberation_node.core.records import NodeInfo, NodeLinks
from liberation_node.core.replica import Replica
from liberation_node.core.views import build_views
from liberation_node.sim.checkers import fingerprint, ledger_fingerprint

from .history import NETWORK, T0, HistoryBuilder, identity, replay

WRITERS = [identity(i) for i in range(4)]

action = st.one_of(
    st.tuples(st.just("register"), st.integers(0, 3)),
    st.tuples(st.just("claim"), st.integers(0, 3), st.integers(-1, 2)),
    *[st.tuples(st.just("transfer"), st.integers(0, 3), st.integers(0, 3),
                st.integers(1, 120_000))] * 3,
    st.tuples(st.just("post"), st.integers(0, 3), st.sampled_from(["social", "billboard"])),
    st.tuples(st.just("retract"), st.integers(0, 3)),
    st.tuples(st.just("fork"), st.integers(0, 3)),
    st.tuples(st.just("info"), st.integers(0, 3)),
    st.tuples(st.just("links"), st.integers(0, 3), st.integers(0, 3), st.integers(1, 500)),
)


def build(actions: list[tuple[Any, ...]]) -> HistoryBuilder:
    h = HistoryBuilder()
    for act in actions:
        who = WRITERS[act[1]]
        feed = h.world.feeds.get(who.public_key)
        if feed is not None and feed.fork_seq is not None and act[0] not in ("info", "links"):
            continue  # an equivocator's later ops would only be refused
        kind = act[0]
        if kind == "register":
            h.raw(who, Register(f"w{act[1]}"))
        elif kind == "claim":
            h.raw(who, Claim(iso_week(h.now) - act[2]))
        elif kind == "transfer":
            to = WRITERS[act[2]]
            if to == who:
                continue
            body = Transfer(to.public_key, act[3], "")
            try:
                h.write(who, body)  # honest: acknowledges incoming credits first
            except LocalError:
                h.raw(who, body)  # an overdraft, signed anyway: stored but void
        elif kind == "post":
            h.write(who, Post(act[2], f"hello from {act[1]} at {h.now}", 1, None))
        elif kind == "retract":
            posts = [o for o in (feed.ops if feed else []) if is_post(o.body)]
            if posts:
                h.write(who, Retract(posts[-1].id))
        elif kind == "fork" and feed is not None and feed.ops:
            head = feed.ops[-1]
            h.raw(who, Post("media", f"equivocation {h.now}", 2, None), seq=head.seq,
                  prev=head.prev, timestamp=head.timestamp)
        elif kind == "info":
            frontier = tuple(sorted(h.world.frontier().items()))
            h.record(who, NodeInfo(f"n{act[1]}", "test", ("http://127.0.0.1:1/",), (), frontier))
        elif kind == "links":
            peer = WRITERS[act[2]]
            if peer != who:
                h.record(who, NodeLinks(((peer.public_key, act[3]),)))
    return h


def summary(replica: Replica) -> tuple[bytes, Any]:
    return replica.digest(), build_views(replica, WRITERS[0].public_key, T0)


# Most histories start with writers 0-2 registered and paid, so that transfers,
# acknowledgements (deps) and cascades after a fork actually happen.
SETUP = [("register", i) for i in range(3)] + [("claim", i, 0) for i in range(3)]
histories = st.tuples(st.booleans(), st.lists(action, min_size=5, max_size=40)).map(
    lambda t: build(SETUP + t[1] if t[0] else t[1]))
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(histories, st.randoms(use_true_random=False), st.data())
def test_any_order_with_duplicates_gives_same_state(h: HistoryBuilder, rnd: Any,
                                                    data: st.DataObject) -> None:
    wires = [op.wire for op in h.ops]
    records = [r.wire for r in h.records]
    reference = summary(replay(wires, records))
    assert reference[0] == h.world.digest()
    shuffled = wires + data.draw(st.lists(st.sampled_from(wires), max_size=10)) if wires else []
    rnd.shuffle(shuffled)
    shuffled_records = list(records)
    rnd.shuffle(shuffled_records)
    assert summary(replay(shuffled, shuffled_records)) == reference


def held(replica: Replica) -> list[bytes]:
    return [op.wire for op in replica.order]


def held_records(replica: Replica) -> list[bytes]:
    return [r.wire for r in replica.records.values()]


def merge(*replicas: Replica) -> Replica:
    return replay([w for r in replicas for w in held(r)],
                  [w for r in replicas for w in held_records(r)])


def split(h: HistoryBuilder, picks: list[int]) -> Replica:
    """A replica holding a causally closed part of the history (as a real peer would)."""
    chosen = [op.wire for op, pick in zip(h.ops, picks, strict=False) if pick]
    recs = [r.wire for r, pick in zip(h.records, picks, strict=False) if pick]
    return replay(chosen, recs)


parts = st.lists(st.booleans(), min_size=40, max_size=40)


@FAST
@given(histories, parts, parts, parts)
def test_merge_is_commutative_associative_idempotent(
    h: HistoryBuilder, pa: list[int], pb: list[int], pc: list[int]
) -> None:
    a, b, c = split(h, pa), split(h, pb), split(h, pc)
    assert summary(merge(a, b)) == summary(merge(b, a))
    assert summary(merge(merge(a, b), c)) == summary(merge(a, merge(b, c)))
    assert summary(merge(a, a)) == summary(a)
    assert merge(a, b, c).digest() == merge(c, b, a).digest()


@FAST
@given(histories)
def test_digest_differs_when_held_sets_differ(h: HistoryBuilder) -> None:
    everything = replay([op.wire for op in h.ops], [r.wire for r in h.records])
    for victim in list(everything.order)[-3:]:
        without = replay([w for w in held(everything) if w != victim.wire],
                         held_records(everything))
        if without.ops.keys() != everything.ops.keys():
            assert without.digest() != everything.digest()


def test_reverse_order_is_pending_until_the_past_arrives() -> None:
    h = HistoryBuilder()
    alice, bob = WRITERS[0], WRITERS[1]
    h.write(alice, Register("alice"))
    h.write(alice, Claim(iso_week(h.now)))
    h.write(bob, Register("bob"))
    h.write(alice, Transfer(bob.public_key, 30_000, "rent"))
    h.write(bob, Transfer(alice.public_key, 10_000, "change"))  # acknowledges alice's payment
    replica = Replica(NETWORK)
    outcomes = [replica.ingest(op.wire) for op in reversed(h.ops)]
    # Bob's transfer waits for his register (prev), then for alice's payment (deps);
    # alice's ops wait for their prevs; her register releases the whole chain.
    assert [o.outcome.value for o in outcomes] == [
        "pending", "pending", "applied", "pending", "applied"]
    assert outcomes[0].missing is not None and outcomes[0].missing.seq == 1
    last = outcomes[-1]
    assert [op.id for op in last.applied] == [h.ops[i].id for i in (0, 1, 3, 4)]
    assert len(replica.pending) == 0
    assert replica.digest() == h.world.digest()
    assert replica.ledger.accounts[bob.public_key].spendable == 20_000
    assert replica.ledger.effects[h.ops[-1].id].void is None


@FAST
@given(histories, st.randoms(use_true_random=False), st.data())
def test_ledger_read_at_any_point_equals_one_fold(h: HistoryBuilder, rnd: Any,
                                                  data: st.DataObject) -> None:
    """The ledger is kept incrementally and folded anew after a fork, when next read
    (replica.py): reading it between any two ops changes nothing."""
    wires = [op.wire for op in h.ops]
    rnd.shuffle(wires)
    reads = data.draw(st.lists(st.booleans(), min_size=len(wires), max_size=len(wires)))
    read_along, read_at_end = Replica(NETWORK), Replica(NETWORK)
    for wire, read in zip(wires, reads, strict=True):
        read_along.ingest(wire)
        read_at_end.ingest(wire)
        if read:
            ledger_fingerprint(read_along)
    forks = {a: seq for a, seq, _ in read_at_end.forks()}
    assert ledger_fingerprint(read_along) == ledger_fingerprint(read_at_end) \
        == fingerprint(fold(read_at_end.order, forks))
