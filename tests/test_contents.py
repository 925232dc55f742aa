"""Post contents held apart from their headers (core/contents.py, protocols/ops.md §12):
any order of ops, contents and drops converges to the same digest and views; a
retraction removes a text everywhere; retention keeps the newest within its budget."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from liberation_node.core.bodies import Post, PostHeader, Register, Retract
from liberation_node.core.contents import MIB, Contents, Retention, RetentionConfig
from liberation_node.core.ops import Op, carry, create_op
from liberation_node.core.reading import Reader
from liberation_node.core.replica import Replica
from liberation_node.core.views import Views, build_views

from .history import NETWORK, T0, HistoryBuilder, identity

PEOPLE = [identity(i) for i in range(4)]
SETTINGS = settings(max_examples=50, deadline=None)

step = st.one_of(
    st.tuples(st.just("post"), st.integers(0, 3), st.sampled_from(["social", "billboard"])),
    st.tuples(st.just("dm"), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("retract"), st.integers(0, 3)),
)


@dataclasses.dataclass
class Written:
    history: HistoryBuilder
    contents: dict[bytes, bytes]  # every content as its author wrote it
    texts: dict[bytes, Post]  # op id -> what was posted


def write(steps: list[tuple[Any, ...]]) -> Written:
    h = HistoryBuilder()
    contents: dict[bytes, bytes] = {}
    texts: dict[bytes, Post] = {}
    for who in PEOPLE:
        h.write(who, Register("x"))
    for n, act in enumerate(steps):
        who = PEOPLE[act[1]]
        if act[0] == "retract":
            mine = [o for o in h.world.feed_ops(who.public_key)
                    if isinstance(o.body, PostHeader) and o.id not in h.world.contents.retracted]
            if mine:
                h.write(who, Retract(mine[0].id))
            continue
        if act[0] == "dm":
            if act[2] == act[1]:
                continue
            body = Post("direct", f"secret {n} from {act[1]}", 1, PEOPLE[act[2]].public_key)
        else:
            body = Post(act[2], f"post {n} by {act[1]}", 1, None)
        op = h.write(who, body)
        content = h.world.contents.get(op.id)
        assert content is not None
        contents[op.id], texts[op.id] = content, body
    return Written(h, contents, texts)


def carried(w: Written, op: Op) -> bytes:
    """The op as a peer that holds its content sends it."""
    content = w.contents.get(op.id)
    return carry(op.wire, content) if content is not None else op.wire


def blank(views: Views) -> Views:
    """The views without what only a node's held contents decide (texts, recipients)."""
    return dataclasses.replace(views, truth_messages=tuple(
        dataclasses.replace(m, content=None, to=None, unreadable=None)
        for m in views.truth_messages))


def views_of(replica: Replica, reader: int = 0) -> Views:
    return build_views(replica, PEOPLE[reader].public_key, T0,
                       Reader(PEOPLE[reader], NETWORK))


@SETTINGS
@given(st.lists(step, min_size=1, max_size=25), st.randoms(use_true_random=False),
       st.integers(0, 3))
def test_any_order_of_ops_contents_and_drops_converges(steps: list[tuple[Any, ...]],
                                                       rnd: random.Random,
                                                       reader: int) -> None:
    w = write(steps)
    ops = list(w.history.ops)
    retracted = {op.body.post for op in ops if isinstance(op.body, Retract)}
    replicas = []
    for _ in range(3):
        replica = Replica(NETWORK)
        # Each op comes once or more, with its content or bare, in any order; now and
        # then the node drops a content it holds (its retention, say).
        deliveries = ops + rnd.sample(ops, k=min(len(ops), rnd.randint(0, 5)))
        rnd.shuffle(deliveries)
        for op in deliveries:
            replica.ingest(carried(w, op) if rnd.random() < 0.7 else op.wire)
            held = [i for i, _ in replica.contents.items()]
            if held and rnd.random() < 0.2:
                replica.drop_contents([rnd.choice(held)])
        replicas.append(replica)
    digests = {r.digest() for r in replicas}
    assert digests == {w.history.world.digest()}  # contents never count (§12.5)
    seen = [views_of(r, reader) for r in replicas]
    assert all(blank(v) == blank(seen[0]) for v in seen)
    me = PEOPLE[reader].public_key
    for replica, views in zip(replicas, seen, strict=True):
        for post_id in retracted:  # §12.6: gone, whatever the order
            assert post_id not in replica.contents
        for m in views.truth_messages:
            op_id = bytes.fromhex(m.id)
            post = w.texts[op_id]
            if op_id in retracted:
                assert (m.content, m.unreadable) == (None, "retracted")
            elif m.content is not None:  # what a node shows is what was written...
                assert m.content == post.text
                # ...and a direct message only to its two parties (§13.1)
                assert post.to is None or me in (post.to, replica.ops[op_id].author)
            elif post.to is not None and me not in (post.to, replica.ops[op_id].author) \
                    and op_id in replica.contents:
                assert m.unreadable == "not_for_this_node"
    # Once every content comes again, every node holds the same ones: equal views.
    for replica in replicas:
        for op in ops:
            replica.ingest(carried(w, op))
    seen = [views_of(r, reader) for r in replicas]
    assert all(v == seen[0] for v in seen)
    assert {r.digest() for r in replicas} == digests


def test_a_retraction_purges_its_post_and_refuses_it_later() -> None:
    w = write([("post", 0, "social"), ("retract", 0)])
    post, retract = w.history.ops[-2], w.history.ops[-1]
    early = Replica(NETWORK)
    for op in w.history.ops[:-1]:
        early.ingest(carried(w, op))
    assert post.id in early.contents
    result = early.ingest(retract.wire)
    assert result.contents == [(post.author, post.seq, post.id, None)] \
        and post.id not in early.contents
    assert early.ingest(carried(w, post)).contents == []  # never taken again
    late = Replica(NETWORK)  # the retraction known before the content ever came
    for op in w.history.ops:
        late.ingest(op.wire)
    assert late.ingest(carried(w, post)).contents == [] and post.id not in late.contents
    assert early.digest() == late.digest()


# -- retention ----------------------------------------------------------------------------

ME, THEM = PEOPLE[0], PEOPLE[1]


_seqs = iter(range(2, 1 << 40))


def post_op(who: Any, timestamp: int, size: int, channel: str = "social") -> Op:
    """A post of `size` bytes (a distinct op each time: the seqs differ), dated by small
    numbers: retention is about ages, so these ops live on a network whose genesis is 0
    (ops.md §14)."""
    return create_op(who, network=NETWORK, seq=next(_seqs), prev=bytes(32),
                     timestamp=timestamp, body=Post(channel, "x" * size, 1, None), genesis=0)


offers = st.lists(st.tuples(st.integers(0, 1_000), st.integers(1, 4096), st.booleans(),
                            st.booleans()), min_size=1, max_size=60)


@SETTINGS
@given(offers, st.integers(1, 40_000), st.integers(0, 3))
def test_retention_keeps_the_newest_within_the_budget(
        items: list[tuple[int, int, bool, bool]], budget: int, lost: int) -> None:
    held = Contents()
    policy = Retention(RetentionConfig(max_mib=1, follow=("billboard",)), ME.public_key)
    policy.max_bytes = budget  # a budget in bytes, for small cases
    held.configure(policy, {}, None)
    kept_always: set[bytes] = set()
    for ts, size, mine, followed in items:
        op = post_op(ME if mine else THEM, ts, size, "billboard" if followed else "social")
        assert op.content is not None
        changes = held.offer(op, op.content, None)
        for op_id, content in changes:
            if content is None:  # dropped by the budget: older than all it keeps
                assert op_id not in kept_always
        if mine or followed:
            assert changes == [(op.id, op.content)]
            kept_always.add(op.id)
        assert held.droppable_bytes <= budget
        assert held.bytes == sum(len(c) for _, c in held.items())
    assert kept_always <= {i for i, _ in held.items()}
    for _ in range(lost):  # a retraction at any time
        some = next(iter(held.items()), None)
        if some is not None:
            held.retract(some[0])
            assert some[0] not in held and held.droppable_bytes <= budget


def test_retention_drops_the_oldest_first_and_refuses_what_would_not_stay() -> None:
    held = Contents()
    policy = Retention(RetentionConfig(max_mib=1), ME.public_key)
    policy.max_bytes = 10
    held.configure(policy, {}, None)
    a, b, c = post_op(THEM, 5, 8), post_op(THEM, 1, 2), post_op(THEM, 3, 5)
    for op in (a, b):
        assert op.content is not None
        assert held.offer(op, op.content, None) == [(op.id, op.content)]
    assert c.content is not None
    # c does not fit with a, which is newer: b (older than c) and c itself give way.
    assert held.offer(c, c.content, None) == [(b.id, None)]
    assert [i for i, _ in held.items()] == [a.id] and held.dropped == 1
    assert not held.wants(post_op(THEM, 0, 5), None)  # older than all it keeps, no room
    assert held.wants(post_op(THEM, 9, 5), None)


def test_retention_by_age_and_at_start() -> None:
    day = 24 * 3600 * 1000
    ops = [post_op(THEM, t * day, 100) for t in range(1, 6)]
    mine = post_op(ME, 0, 100)
    held = Contents()
    for op in [*ops, mine]:
        assert op.content is not None
        held.load(op.id, op.content)
    policy = Retention(RetentionConfig(max_mib=1, max_days=2), ME.public_key)
    gone = held.configure(policy, {op.id: op for op in [*ops, mine]}, 5 * day)
    assert gone == [(ops[0].id, None), (ops[1].id, None)]  # older than two days
    assert mine.id in held  # own contents are always kept
    assert held.expire(6 * day) == [(ops[2].id, None)]
    assert not held.wants(post_op(THEM, 3 * day, 1), 6 * day)


def test_own_direct_messages_are_kept_whatever_the_budget() -> None:
    h = HistoryBuilder()
    dm = h.write(THEM, Post("direct", "for me", 1, ME.public_key))
    other = h.write(THEM, Post("direct", "for someone else", 1, PEOPLE[2].public_key))
    reader = Reader(ME, NETWORK)
    policy = Retention(RetentionConfig(max_mib=1), ME.public_key, reader.opens)
    policy.max_bytes = 1
    held = Contents()
    held.configure(policy, {}, None)
    for op in (dm, other):
        content = h.world.contents.get(op.id)
        assert content is not None
        held.offer(op, content, None)
    assert dm.id in held and other.id not in held
    assert MIB == 1 << 20
