"""Ledger rules (protocols/ops.md §6.2) and equivocation (§9), on hand-built histories."""

from __future__ import annotations

import pytest

from liberation_node.core.bodies import Claim, Post, Register, Transfer
from liberation_node.core.errors import LocalError, Reason, Void
from liberation_node.core.ingested import Outcome
from liberation_node.core.ledger import (
    POOL_TOTAL_CENTS,
    REGISTER_GRANT_CENTS,
    WEEKLY_FLOW_CENTS,
    iso_week,
)
from liberation_node.core.ops import Dep
from liberation_node.core.pending import PendingSet
from liberation_node.core.replica import Replica
from liberation_node.core.views import build_views

from .history import NETWORK, T0, HistoryBuilder, identity, replay

ALICE, BOB, CAROL = identity(0), identity(1), identity(2)


def test_iso_week() -> None:
    assert iso_week(T0) == 202548  # Monday 2025-11-24
    assert iso_week(1_767_225_600_000) == 202601  # 2026-01-01 (a Thursday) is in week 1


def funded(h: HistoryBuilder) -> None:
    for who, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")):
        h.write(who, Register(name))
    h.write(ALICE, Claim(iso_week(h.now)))


def test_register_claim_and_pool() -> None:
    h = HistoryBuilder()
    funded(h)
    ledger = h.world.ledger
    assert ledger.pool_available == POOL_TOTAL_CENTS - 3 * REGISTER_GRANT_CENTS - WEEKLY_FLOW_CENTS
    dup_reg = h.raw(ALICE, Register("again"))
    dup_claim = h.raw(ALICE, Claim(iso_week(h.now)))
    early = h.raw(BOB, Claim(iso_week(h.now) - 1))  # before bob registered
    future = h.raw(BOB, Claim(iso_week(h.now) + 1))
    unregistered = h.raw(identity(9), Claim(iso_week(h.now)))
    effects = ledger.effects
    assert effects[dup_reg.id].void is Void.ALREADY_REGISTERED
    assert effects[dup_claim.id].void is Void.ALREADY_CLAIMED
    assert effects[early.id].void is Void.WEEK_OUT_OF_RANGE
    assert effects[future.id].void is Void.WEEK_OUT_OF_RANGE
    assert effects[unregistered.id].void is Void.NOT_REGISTERED
    assert ledger.pool_available == POOL_TOTAL_CENTS - 3 * REGISTER_GRANT_CENTS - WEEKLY_FLOW_CENTS


def test_credit_counts_once_acknowledged() -> None:
    h = HistoryBuilder()
    funded(h)
    pay = h.write(ALICE, Transfer(BOB.public_key, 50_000, "rent"))
    # Bob signs a spend *without* acknowledging alice's payment: an overdraft.
    bare = h.raw(BOB, Transfer(CAROL.public_key, 10_000, "too soon"))
    assert h.world.ledger.effects[bare.id].void is Void.OVERDRAFT
    # The honest writer names alice's feed in deps, which credits bob first.
    spend = h.write(BOB, Transfer(CAROL.public_key, 10_000, "ok"))
    assert spend.deps == (Dep(ALICE.public_key, pay.seq, pay.id),)
    assert h.world.ledger.effects[spend.id].void is None
    bob = h.world.ledger.accounts[BOB.public_key]
    assert bob.spendable == 40_000 and bob.spent == 10_000
    views = build_views(h.world, ALICE.public_key, h.now)
    by_id = {x.id: x for x in views.humans}
    assert by_id[BOB.text].balance == 40_000
    assert by_id[CAROL.text].total_received == 10_000
    assert by_id[CAROL.text].spendable == 0  # not acknowledged yet
    with pytest.raises(LocalError, match="insufficient"):
        h.write(BOB, Transfer(CAROL.public_key, 40_001, ""))


def test_paying_or_messaging_yourself_is_a_local_error() -> None:
    """ops.md §6.1: `to` is never the author. Our own writes say so before signing,
    rather than building an op the decoder then refuses (which escaped as a crash)."""
    h = HistoryBuilder()
    funded(h)
    held = len(h.world.ops)
    with pytest.raises(LocalError, match="yourself"):
        h.write(ALICE, Transfer(ALICE.public_key, 1, ""))
    with pytest.raises(LocalError, match="yourself"):
        h.write(ALICE, Post("direct", "note to self", 1, ALICE.public_key))
    assert len(h.world.ops) == held


def test_equivocation_is_proved_truncated_and_refolded() -> None:
    h = HistoryBuilder()
    funded(h)
    pay = h.write(ALICE, Transfer(BOB.public_key, 60_000, "a"))
    after = h.write(ALICE, Post("social", "after the payment", 1, None))
    bob_spend = h.write(BOB, Transfer(CAROL.public_key, 60_000, "b"))
    assert h.world.ledger.effects[bob_spend.id].void is None
    # Alice signs a second op at the payment's seq: an equivocation.
    fork = h.raw(ALICE, Post("social", "other history", 1, None), seq=pay.seq, prev=pay.prev,
                 timestamp=pay.timestamp)
    replica = replay([op.wire for op in h.ops])
    for r in (h.world, replica):
        forks = list(r.forks())
        assert [(a, s, sorted(p.id for p in ps)) for a, s, ps in forks] == [
            (ALICE.public_key, pay.seq, sorted([pay.id, fork.id]))]
        assert after.id not in r.ops  # past the fork: no longer held
        # The payment is void now, so bob's spend that relied on it is an overdraft.
        assert r.ledger.effects[pay.id].void is Void.FORKED
        assert r.ledger.effects[bob_spend.id].void is Void.OVERDRAFT
    assert replica.digest() == h.world.digest()
    late = replica.ingest(after.wire)
    assert late.outcome is Outcome.REJECTED and late.rejection is not None
    assert late.rejection.reason is Reason.FORKED_AUTHOR
    with pytest.raises(LocalError, match="equivocated"):
        replica.append(ALICE, Post("social", "x", 1, None), h.now)


def test_fork_keeps_the_two_lowest_ids_whatever_the_order() -> None:
    h = HistoryBuilder()
    base = h.write(ALICE, Register("alice"))
    forks = [h.raw(ALICE, Post("social", f"v{i}", 1, None), seq=2, prev=base.id,
                   timestamp=base.timestamp + i) for i in range(4)]
    keep = sorted(f.id for f in forks)[:2]
    for order in (forks, forks[::-1], forks[1:] + forks[:1]):
        replica = replay([base.wire] + [f.wire for f in order])
        (_, seq, proofs), = list(replica.forks())
        assert seq == 2 and sorted(p.id for p in proofs) == keep


def test_a_batch_of_forks_folds_the_ledger_once_when_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each fork voids ops and may cascade, so the ledger is folded anew: once, when it
    is next read, not once per proof (a healed partition brings hundreds of forks at
    once, and a fold per proof over every held op made them quadratic)."""
    import liberation_node.core.replica as replica_module

    h = HistoryBuilder()
    writers = [identity(i) for i in range(10)]
    heads = []
    for who in writers:
        h.write(who, Register(who.public_key.hex()[:6]))
        heads.append(h.write(who, Post("social", "one history", 1, None)))
    forks = [h.raw(who, Post("social", "another", 1, None), seq=head.seq, prev=head.prev,
                   timestamp=head.timestamp) for who, head in zip(writers, heads, strict=True)]
    replica = replay([op.wire for op in h.ops if op not in forks])
    granted = replica.ledger.granted
    folds = []
    real_fold = replica_module.fold
    monkeypatch.setattr(replica_module, "fold",
                        lambda *args: folds.append(1) or real_fold(*args))
    for fork in forks:
        assert replica.ingest(fork.wire).outcome is Outcome.FORK
    assert folds == []
    assert replica.ledger.granted == granted  # a fork at a post voids no grant
    assert replica.ledger.fork_at == {who.public_key: 2 for who in writers}
    assert len(folds) == 1


def test_pending_set_is_bounded() -> None:
    replica = Replica(NETWORK, PendingSet(max_ops=3))
    h = HistoryBuilder()
    ops = [h.write(ALICE, Post("social", f"m{i}", 1, None)) for i in range(6)]
    for op in ops[1:]:
        assert replica.ingest(op.wire).outcome is Outcome.PENDING
    assert len(replica.pending) == 3 and replica.pending.evicted == 2
    got = replica.ingest(ops[0].wire)
    assert [o.seq for o in got.applied] == [1]  # seqs 2 and 3 were evicted (oldest first)
    assert replica.ingest(ops[1].wire).applied == [ops[1]]
    assert replica.ingest(ops[2].wire).applied == ops[2:]  # releases the waiters 4, 5, 6
    assert replica.digest() == h.world.digest()


def test_views_show_posts_reach_and_routes() -> None:
    from liberation_node.core.records import NodeInfo, NodeLinks

    h = HistoryBuilder()
    post = h.write(ALICE, Post("billboard", "truth", 5, None))
    h.record(ALICE, NodeInfo("a", "t", (), (), ((ALICE.public_key, 1),)))
    h.record(BOB, NodeInfo("b", "t", (), (), ((ALICE.public_key, 1),)))
    h.record(CAROL, NodeInfo("c", "t", (), (), ()))
    h.record(ALICE, NodeLinks(((BOB.public_key, 10),)))
    h.record(BOB, NodeLinks(((CAROL.public_key, 20),)))
    views = build_views(h.world, ALICE.public_key, h.now)
    (msg,) = views.truth_messages
    assert msg.id == post.id.hex() and msg.spread_count == 2 and msg.active
    billboard = next(c for c in views.channels if c.name == "billboard")
    assert billboard.messages == 1 and billboard.last_message_id == post.id.hex()
    route = next(r for r in views.mesh_routes if r.destination_node == CAROL.text)
    assert route.hop_count == 2 and route.total_latency == 30
    assert {n.id for n in views.mesh_nodes} == {ALICE.text, BOB.text, CAROL.text}
    assert len(views.node_connections) == 2
    assert build_views(h.world, ALICE.public_key, T0 + 10**9).mesh_routes == ()
    # BOB's view: BOB holds the post though its own announcement predates it.
    (msg,) = build_views(h.world, BOB.public_key, h.now).truth_messages
    assert msg.spread_count == 2
    (msg,) = build_views(h.world, CAROL.public_key, h.now).truth_messages
    assert msg.spread_count == 3
