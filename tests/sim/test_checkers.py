"""The checkers (sim/checkers.py) report each kind of violation: first on their own,
fed by hand, then end to end, with one node broken on purpose through the
simulator's injection hooks (the core itself is never edited)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from liberation_node.core.bodies import Claim, Post
from liberation_node.core.contents import Change
from liberation_node.core.errors import Rejection
from liberation_node.core.events import Changed, Misbehaved, PeerDown
from liberation_node.core.identity import Identity, short_id
from liberation_node.core.ingested import Ingested, Outcome
from liberation_node.core.ops import Op, create_op, decode_op
from liberation_node.core.records import Record
from liberation_node.core.replica import Replica
from liberation_node.sim import FaultOptions, Hooks, World, simulate
from liberation_node.sim.checkers import Checker, Registry, Violations
from liberation_node.store.memory import MemoryStore

from .common import small

NET = "sim"
T = 1_767_225_600_000
ALICE, BOB = Identity.from_seed(b"a" * 32), Identity.from_seed(b"b" * 32)


def post(who: Identity, seq: int, prev: Op | None, text: str) -> Op:
    return create_op(who, network=NET, seq=seq, prev=prev.id if prev else None, timestamp=T,
                     body=Post("social", text, 1, None))


def changed(applied: tuple[Op, ...] = (), excluded: tuple[Op, ...] = ()) -> Changed:
    return Changed(applied, excluded, (), (), None)


def fresh() -> tuple[Checker, Violations]:
    violations = Violations()
    return Checker(Registry(), violations), violations


def holding(*ops: Op) -> Replica:
    replica = Replica(NET)
    for op in ops:
        replica.add(op)
    return replica


# -- each checker on its own ------------------------------------------------------------

def test_an_op_nobody_signed_is_reported_when_accepted() -> None:
    checker, violations = fresh()
    real = post(ALICE, 1, None, "hi")
    checker.wrote(0, 0, real, byzantine=False)
    checker.changed(5, 1, changed((real,)))
    assert len(violations) == 0
    forged = post(ALICE, 2, real, "not really alice")._replace(id=b"\x01" * 32)
    checker.changed(6, 1, changed((forged,)))
    assert violations.lines() == [
        f"at 6 ms: node 1 accepted op {'01' * 8} (author {ALICE.short}, seq 2) that its "
        "author never signed: forged or altered"]


def test_honest_equivocation_is_reported_byzantine_is_recorded() -> None:
    checker, violations = fresh()
    checker.wrote(0, 0, post(ALICE, 1, None, "a"), byzantine=False)
    checker.wrote(1, 0, post(ALICE, 1, None, "b"), byzantine=False)
    assert violations.lines() == ["at 1 ms: honest node 0 signed two ops at seq 1"]
    checker.wrote(2, 3, post(BOB, 1, None, "a"), byzantine=True)
    checker.wrote(2, 3, post(BOB, 1, None, "b"), byzantine=True)
    assert len(violations) == 1 and checker.registry.equivocators[BOB.public_key] == 1


def test_only_an_equivocators_ops_may_be_dropped_and_only_from_its_fork() -> None:
    checker, violations = fresh()
    a1 = post(ALICE, 1, None, "a1")
    b1 = post(BOB, 1, None, "b1")
    b2, b2x = post(BOB, 2, b1, "b2"), post(BOB, 2, b1, "b2x")
    for op in (a1, b1, b2, b2x):
        checker.wrote(0, 0 if op.author == ALICE.public_key else 1, op,
                      byzantine=op.author == BOB.public_key)
    checker.changed(1, 2, changed(excluded=(b2,)))
    assert len(violations) == 0
    checker.changed(2, 2, changed(excluded=(b1, a1)))
    assert [line.split(": ", 1)[1].split(" op ")[0] for line in violations.lines()] == \
        ["node 2 dropped", "node 2 dropped"]


def test_blaming_an_honest_peer_is_reported() -> None:
    checker, violations = fresh()
    checker.wrote(0, 4, post(ALICE, 1, None, "a"), byzantine=False)
    checker.blamed(1, 2, Misbehaved(9, BOB.public_key, "bad_signature", ""))
    assert len(violations) == 0
    checker.blamed(2, 2, Misbehaved(9, ALICE.public_key, "bad_signature", ""))
    assert violations.lines() == ["at 2 ms: node 2 blamed honest node 4: bad_signature"]


def test_closing_an_honest_session_as_broken_is_reported() -> None:
    checker, violations = fresh()
    checker.wrote(0, 4, post(ALICE, 1, None, "a"), byzantine=False)
    broken = PeerDown(9, ALICE.public_key, "protocol_error", "odd frame", False)
    checker.closed(2, 2, PeerDown(9, ALICE.public_key, "protocol_error", "", True)
                   )  # the peer closed: its own view
    checker.closed(3, 2, PeerDown(9, ALICE.public_key, "timeout", "", False)
                   )  # says nothing bad about the peer
    checker.closed(4, 2, PeerDown(9, BOB.public_key, "protocol_error", "", False)
                   )  # not an honest peer
    assert len(violations) == 0
    checker.closed(5, 2, broken)
    assert violations.lines() == ["at 5 ms: node 2 closed its session with honest node 4: "
                                  "protocol_error (odd frame)"]


def test_store_and_replica_must_agree_at_a_crash_and_restart_must_rebuild_the_same() -> None:
    checker, violations = fresh()
    a1 = post(ALICE, 1, None, "a1")
    a2 = post(ALICE, 2, a1, "a2")
    for op in (a1, a2):
        checker.wrote(0, 0, op, byzantine=False)
    checker.changed(1, 0, changed((a1, a2)))
    checker.persisted(0, changed((a1, a2)))
    checker.crashing(2, 0, holding(a1, a2), stored=[a1.id])  # a2 committed, yet not stored
    checker.restarted(3, 0, holding())
    assert violations.lines() == [
        "at 2 ms: node 0: store holds 1 ops, replica 2 with 0 not committed yet: they parted "
        "before the crash",
        "at 3 ms: node 0: restart rebuilt a different op set than its store held when it "
        "crashed",
        f"at 3 ms: node 0 lost op {a1.id.hex()[:16]} ({ALICE.short} seq 1) that it had held",
        f"at 3 ms: node 0 lost op {a2.id.hex()[:16]} ({ALICE.short} seq 2) that it had held"]


def test_a_crash_loses_only_the_batches_not_committed_yet() -> None:
    checker, violations = fresh()
    a1 = post(ALICE, 1, None, "a1")
    a2 = post(ALICE, 2, a1, "a2")
    a2_again = post(ALICE, 2, a1, "a2 written again after the restart")
    checker.wrote(0, 0, a1, byzantine=False)  # acknowledged: committed
    checker.signed(0, a2, byzantine=False)  # signed, never committed nor published
    checker.changed(1, 0, changed((a1,)))
    checker.persisted(0, changed((a1,)))
    checker.changed(1, 0, changed((a2,)))
    checker.crashing(2, 0, holding(a1, a2), stored=[a1.id], unstored=(changed((a2,)),))
    checker.restarted(3, 0, holding(a1))
    checker.wrote(4, 0, a2_again, byzantine=False)  # seq 2 again: a2 was never seen
    assert len(violations) == 0
    checker.forked(5, 1, ALICE.public_key, 2)
    assert violations.lines() == ["at 5 ms: node 1 found honest node 0 forked at seq 2"]


def test_final_reports_divergence_and_nondeterministic_merges() -> None:
    checker, violations = fresh()
    a1, b1 = post(ALICE, 1, None, "a1"), post(BOB, 1, None, "b1")
    for op in (a1, b1):
        checker.wrote(0, 0, op, byzantine=False)
    checker.final(9, {0: holding(a1, b1), 1: holding(b1, a1)}, 60_000)
    assert len(violations) == 0  # any order, same state
    checker.final(10, {0: holding(a1, b1), 1: holding(a1)}, 60_000)
    assert violations.lines()[0].startswith("at 10 ms: not converged: 2 different op digests")
    odd = holding(a1, b1)
    odd.ledger.account(ALICE.public_key).claimed += 1
    checker.final(11, {0: holding(a1, b1), 1: odd}, 60_000)
    assert violations.lines()[-1] == ("at 11 ms: same digest, different ledgers: nodes [0] vs "
                                      "[1]: the merge is not deterministic")


def test_records_converge_by_content_up_to_one_refresh() -> None:
    """Presence records are republished every refresh: replicas agree when each holds
    every key, at most one republication (1.25 refresh periods) behind the newest."""
    from liberation_node.core.records import NodeLinks, create_record
    from liberation_node.sim.checkers import records_converged

    def record(version: int) -> Record:
        return create_record(ALICE, network="sim", version=version, ttl_ms=3_600_000,
                             body=NodeLinks(()))

    def replica(*records: Record) -> Replica:
        held = Replica("sim")
        for r in records:
            held.add_record(r)
        return held

    newest, previous, older = record(T + 120_000), record(T + 60_000), record(T)
    assert records_converged([replica(newest), replica(previous)], 60_000) is True
    assert records_converged([replica(newest), replica(older)], 60_000) is False
    assert records_converged([replica(newest), replica()], 60_000, explain=True) == (
        f"replica 1 lacks {short_id(ALICE.public_key)} node.links")
    assert records_converged([replica(newest), replica()], 60_000) is False
    assert records_converged([replica(), replica(newest)], 60_000) is False
    other = create_record(BOB, network="sim", version=T + 120_000, ttl_ms=3_600_000,
                          body=NodeLinks(()))
    assert records_converged([replica(newest), replica(other)], 60_000) is False  # same count
    checker, violations = fresh()
    checker.final(1, {0: replica(newest), 1: replica(older)}, 60_000)
    assert violations.lines()[0].startswith("at 1 ms: records not converged: replica 1 is "
                                            "120000 ms behind")


def test_violations_keep_counts_and_a_bound() -> None:
    violations = Violations(limit=2)
    for at in range(3):
        violations.add(at, "same")
    violations.add(5, "other")
    violations.add(6, "one too many")
    assert violations.lines() == ["at 0 ms: same (x3)", "at 5 ms: other"]


# -- end to end, one node broken on purpose ---------------------------------------------

def test_a_node_whose_ledger_skips_claims_is_caught() -> None:
    def break_node_0(index: int, replica: Replica) -> None:
        if index == 0:
            real = replica.ledger.apply
            replica.ledger.apply = (  # type: ignore[method-assign]
                lambda op: None if isinstance(op.body, Claim) else real(op))

    world = World(small(seed=11, ops=60), hooks=Hooks(replica=break_node_0))
    result = world.run()
    assert any(isinstance(op.body, Claim) for op in world.registry.ops.values())
    assert result.converged  # same ops everywhere...
    assert [v for v in result.violations if "different ledgers" in v] == [
        f"at {result.end_ms} ms: same digest, different ledgers: nodes [1, 2, 3, 4, 5] vs [0]: "
        "the merge is not deterministic"]  # ...but not the same state


def test_a_node_with_a_broken_digest_is_caught() -> None:
    def break_node_3(index: int, replica: Replica) -> None:
        if index == 3:
            replica.ops_digest = lambda: bytes(32)  # type: ignore[method-assign]

    result = simulate(small(seed=12, liveness_ms=5_000), hooks=Hooks(replica=break_node_3))
    assert not result.converged
    assert any("not converged: 2 different op digests" in v for v in result.violations)


def test_a_node_that_skips_signature_checks_is_caught() -> None:
    def trusting(index: int, replica: Replica) -> None:
        if index != 0:
            return

        def ingest(wire: bytes, now: int | None = None, admit: object = None) -> Ingested:
            try:
                op = decode_op(wire, replica.network, check_signature=False)
            except Rejection as rejection:
                return Ingested(Outcome.REJECTED, rejection=rejection)
            return replica.add(op)

        replica.ingest = ingest  # type: ignore[method-assign]

    # A seed where the liar forges to node 0 before its peers ban it (sync.md §4.7).
    config = small(nodes=4, degree=3, seed=4, liveness_ms=5_000,
                   faults=FaultOptions(byzantine=1, byzantine_interval_ms=100))
    result = simulate(config, hooks=Hooks(replica=trusting))
    assert any("node 0 accepted op" in v and "forged or altered" in v for v in result.violations)
    # ...and it passes them on, so its honest neighbours blame it.
    assert any("blamed honest node 0" in v for v in result.violations)


class ForgetfulStore(MemoryStore):
    """A disk that acknowledges writes and, after a while, keeps none of them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def write(self, applied: Sequence[Op], excluded: Sequence[Op] = (),
                    records: Sequence[Record] = (),
                    dropped_records: Sequence[Record] = (), *, sync: bool = False,
                    contents: Sequence[Change] = ()) -> None:
        self.writes += 1
        if self.writes <= 6:
            await super().write(applied, excluded, records, dropped_records,
                                contents=contents)


def test_a_store_that_loses_writes_is_caught_at_crash_and_restart() -> None:
    config = small(seed=14, ops=60, faults=FaultOptions(crashes=2))
    result = simulate(config, hooks=Hooks(store=lambda i: ForgetfulStore()))
    text = "\n".join(result.violations)
    assert "they parted before the crash" in text
    assert "that it had held" in text  # committed (so acknowledged), then lost


# -- private and retracted texts (ops.md §12.6, §13) ---------------------------------------


def test_a_seal_that_leaks_its_text_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Direct messages 'sealed' as plain padded text: stored plaintext, and messages
    that nobody (not even their two parties) can open."""
    from liberation_node.core import ops, sealing

    def leaky(text: str, to: bytes, author: Identity, network: str, r: bytes) -> bytes:
        return text.encode().ljust(sealing.DIRECT_SIZES[0], b"\x00")

    monkeypatch.setattr(ops.sealing, "seal", leaky)
    result = simulate(small(seed=5, ops=80))
    text = "\n".join(result.violations)
    assert "direct message's plaintext" in text
    assert "cannot read its own direct message" in text


def test_a_node_that_keeps_retracted_texts_is_caught() -> None:
    def keeps(i: int, replica: Replica) -> None:
        if i == 0:  # node 0 records the retraction but drops nothing
            replica.contents.retract = lambda post_id: False  # type: ignore[method-assign]

    result = simulate(small(seed=3, ops=120), hooks=Hooks(replica=keeps))
    assert any(v.split(": ", 1)[1].startswith("node 0 holds the content of") for v in
               result.violations), result.violations
    assert all("node 0" in v for v in result.violations if "retracted" in v)


def test_an_honest_run_keeps_texts_private_and_purged() -> None:
    result = simulate(small(seed=3, ops=120))
    assert result.violations == []
