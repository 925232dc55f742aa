"""ledger.json and forks.json: whole histories folded by a replica (ops.md §6.2, §9, §10).

Each scenario lists its ops, ingests them in a primary order (with the outcome of
every step), and states the final ledger, fork proofs and digests. Every order in
'orders' must reach that same final state: the generator checks it here, and the
tests check it again against the implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from liberation_node.core.bodies import Claim, Post, Register, Retract, Transfer
from liberation_node.core.ledger import (
    CLAIM_ARREARS_MS,
    HOUSING_CREDIT_CENTS,
    INVESTMENT_POOL_CENTS,
    POOL_TOTAL_CENTS,
    WEEKLY_FLOW_CENTS,
)
from liberation_node.core.ops import DEFAULT_GENESIS_MS, Op
from liberation_node.core.replica import Replica

from .common import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    DAY,
    HOUR,
    MINUTE,
    NETWORK,
    T0,
    Writer,
    effect_json,
    op_row,
    state_json,
    step_json,
    who,
)

AUTHORS = [ALICE.public_key, BOB.public_key, CAROL.public_key]


def _final(replica: Replica, ops: Sequence[tuple[str, Op]],
           authors: Sequence[bytes] = AUTHORS) -> dict[str, Any]:
    state = state_json(replica, authors)
    state["effects"] = {label: effect_json(replica, op) for label, op in ops}
    return state


def _replay(ops: dict[str, Op], order: Sequence[str]) -> Replica:
    replica = Replica(NETWORK)
    for label in order:
        replica.ingest(ops[label].wire)
    return replica


def scenario(name: str, description: str, ops: Sequence[tuple[str, Op]],
             checkpoints: Sequence[int] = (), authors: Sequence[bytes] = AUTHORS
             ) -> dict[str, Any]:
    by_label = dict(ops)
    assert len(by_label) == len(ops)
    labels = [label for label, _ in ops]
    replica = Replica(NETWORK)
    steps = []
    marks = []
    for i, (label, op) in enumerate(ops):
        steps.append(step_json(label, op.wire, replica.ingest(op.wire)))
        if i + 1 in checkpoints:
            marks.append({"after_step": i + 1, **_final(replica, ops, authors)})
    final = _final(replica, ops, authors)
    orders = [labels[::-1], sorted(labels, key=lambda lb: by_label[lb].id)]
    for order in orders:
        assert _final(_replay(by_label, order), ops, authors) == final, (name, order)
    return {
        "name": name,
        "description": description,
        "network": NETWORK,
        "ops": [op_row(label, op) for label, op in ops],
        "steps": steps,
        "checkpoints": marks,
        "final": final,
        "orders": orders,
    }


def _ledger_scenario() -> dict[str, Any]:
    a, b, c = Writer(ALICE), Writer(BOB), Writer(CAROL)
    ops: list[tuple[str, Op]] = []

    def put(label: str, op: Op) -> Op:
        ops.append((label, op))
        return op

    put("alice#1 register", a.write(Register("alice"), T0))
    put("bob#1 register", b.write(Register("bob"), T0 + MINUTE))
    put("alice#2 claim 202602", a.write(Claim(202602), T0 + HOUR))
    put("bob#2 claim 202602", b.write(Claim(202602), T0 + 2 * HOUR))
    put("alice#3 claim 202602 again", a.write(Claim(202602), T0 + 2 * HOUR))
    put("alice#4 claim 202603 (future week)", a.write(Claim(202603), T0 + 3 * HOUR))
    put("alice#5 claim 202601 (before registering)", a.write(Claim(202601), T0 + 4 * HOUR))
    a6 = put("alice#6 pay bob 30000",
             a.write(Transfer(BOB.public_key, 30_000, "groceries"), T0 + 5 * HOUR))
    put("alice#7 pay bob 60000 (overdraft)",
        a.write(Transfer(BOB.public_key, 60_000, "too much"), T0 + 6 * HOUR))
    put("bob#3 pay carol 100000 (overdraft: credit not acknowledged)",
        b.write(Transfer(CAROL.public_key, 100_000, "tools"), T0 + 6 * HOUR))
    b4 = put("bob#4 pay carol 100000 deps=[alice#6]",
             b.write(Transfer(CAROL.public_key, 100_000, "tools"), T0 + 7 * HOUR, (a6.ref,)))
    put("carol#1 claim 202602 (not registered)", c.write(Claim(202602), T0))
    put("carol#2 register", c.write(Register("carol"), T0 + HOUR))
    put("carol#3 register again", c.write(Register("carol again"), T0 + 2 * HOUR))
    c4 = put("carol#4 post deps=[bob#4]",
             c.write(Post("social", "thanks for the tools, bob", 4, None), T0 + 8 * HOUR,
                     (b4.ref,)))
    put("carol#5 retract carol#4", c.write(Retract(c4.id), T0 + 9 * HOUR))
    put("alice#8 claim 202603 (a week later)", a.write(Claim(202603), T0 + 7 * DAY))
    a9 = put("alice#9 pay carol 130000 (all she has)",
             a.write(Transfer(CAROL.public_key, 130_000, "rent"), T0 + 7 * DAY + HOUR))
    put("carol#6 pay alice 150000 deps=[alice#9]",
        c.write(Transfer(ALICE.public_key, 150_000, "back"), T0 + 7 * DAY + 2 * HOUR,
                (a9.ref,)))
    return scenario(
        "three_authors",
        "registrations, claims (duplicate week, weeks out of range, a later week), "
        "transfers (valid, overdraft, valid only once deps acknowledge a credit, exactly the "
        "balance), a post and its retraction, an op before registering, a second register",
        ops)


def _arrears_scenario() -> dict[str, Any]:
    """Claims reach back at most CLAIM_ARREARS_MS before their own timestamp (§6.2.7)."""
    d, e = Writer(DAVE), Writer(who(6))
    week = 7 * DAY
    late = T0 + 10 * week  # Monday 2026-03-16 12:00, week 202612; minus 28 days: 202608
    assert late - CLAIM_ARREARS_MS == T0 + 6 * week
    ops: list[tuple[str, Op]] = [
        ("dave#1 register", d.write(Register("dave"), T0)),
        ("dave#2 claim 202602 ten weeks later (beyond the arrears)",
         d.write(Claim(202602), late)),
        ("dave#3 claim 202607 (one week beyond the arrears)", d.write(Claim(202607), late)),
        ("dave#4 claim 202608 (the oldest week within them)", d.write(Claim(202608), late)),
        ("dave#5 claim 202612 (its own week)", d.write(Claim(202612), late)),
        ("erin#1 register at the genesis", e.write(Register("erin"), DEFAULT_GENESIS_MS)),
        ("erin#2 claim 202501 (the genesis week) dated 2026",
         e.write(Claim(202501), T0)),
        ("erin#3 claim 202602", e.write(Claim(202602), T0)),
    ]
    return scenario(
        "claim_arrears",
        "a claim covers a week from its author's register week, but at most "
        "claim_arrears_ms (28 days) before the claim's own timestamp, up to that timestamp's "
        "week (ops.md §6.2.7): dave claims ten weeks late and gets the last five weeks "
        "only; erin, registered at the network's genesis (the earliest valid date, §14), "
        "cannot claim the weeks since then from 2026",
        ops, authors=[DAVE.public_key, who(6).public_key])


def _fork_scenario() -> dict[str, Any]:
    a, b, c = Writer(ALICE), Writer(BOB), Writer(CAROL)
    a1 = a.write(Register("alice"), T0)
    a2 = a.write(Claim(202602), T0 + HOUR)
    a3 = a.write(Transfer(BOB.public_key, 50_000, "for the bike"), T0 + 2 * HOUR)
    a4 = a.write(Post("social", "sold my bike", 5, None), T0 + 3 * HOUR)
    a5 = a.write(Post("social", "to bob", 5, None), T0 + 4 * HOUR)
    b1 = b.write(Register("bob"), T0)
    b2 = b.write(Claim(202602), T0 + HOUR)
    b3 = b.write(Post("social", "got the money", 5, None), T0 + 3 * HOUR, (a3.ref,))
    b4 = b.write(Transfer(CAROL.public_key, 100_000, "parts"), T0 + 4 * HOUR)
    c1 = c.write(Register("carol"), T0)
    c2 = c.write(Post("social", "paid", 5, None), T0 + 5 * HOUR, (b4.ref,))
    c3 = c.write(Transfer(ALICE.public_key, 90_000, "bike"), T0 + 6 * HOUR)
    b5 = b.write(Post("social", "alice cheated", 9, None), T0 + 6 * HOUR, (a4.ref,))

    def twin(k: int) -> Op:
        return a.after(a2, Transfer(CAROL.public_key, 50_000 + k, "for the bike"),
                       T0 + 2 * HOUR)

    a3_twin = twin(0)
    top = max(a3.id, a3_twin.id)
    k = 1
    while (a3_lower := twin(k)).id > top:
        k += 1
    kept = sorted([a3.id, a3_twin.id, a3_lower.id])[:2]
    k = 1000
    while (a3_higher := twin(k)).id < max(kept):
        k += 1
    ops = [
        ("alice#1 register", a1), ("alice#2 claim 202602", a2),
        ("alice#3 pay bob 50000", a3), ("alice#4 post", a4),
        ("bob#1 register", b1), ("bob#2 claim 202602", b2),
        ("bob#3 post deps=[alice#3]", b3), ("bob#4 pay carol 100000", b4),
        ("carol#1 register", c1), ("carol#2 post deps=[bob#4]", c2),
        ("carol#3 pay alice 90000", c3),
        ("alice#3' pay carol 50000 (equivocation)", a3_twin),
        ("alice#5 post (after the fork)", a5),
        ("alice#3'' (third version, lower id)", a3_lower),
        ("alice#3''' (fourth version, higher id)", a3_higher),
        ("bob#5 post deps=[alice#4] (names the void part)", b5),
    ]
    return scenario(
        "equivocation_cascade",
        "alice signs several ops at seq 3. Her feed is cut at 3, the two lowest-id versions "
        "are kept as proof, her ops past 3 are excluded or refused, her seq-3 transfer is "
        "void (forked). Bob's credit from it is capped below the fork, so his transfer to "
        "carol becomes an overdraft, and so does carol's transfer that relied on it. "
        "Checkpoint after step 11 shows the ledger before the equivocation is known.",
        ops, checkpoints=(11,))


def build_ledger() -> dict[str, Any]:
    return {
        "description": "A ledger history. 'ops' are the wires; 'steps' what a replica does "
                       "with each in the listed order; 'final' the state after all of them "
                       "(per-op effect: applied or a void reason, null for kinds without a "
                       "ledger effect; per-author claimed, acknowledged credit, spent, "
                       "spendable, incoming; the pool; feed digest entries and digests). "
                       "Ingesting the ops in any order of 'orders' (labels) MUST give the "
                       "same 'final'. Amounts in cents.",
        "spec": "protocols/ops.md §6.2, §6.2.7, §10, §14",
        "constants": {"pool_total": POOL_TOTAL_CENTS, "weekly_flow": WEEKLY_FLOW_CENTS,
                      "housing_credit": HOUSING_CREDIT_CENTS,
                      "investment_pool": INVESTMENT_POOL_CENTS,
                      "claim_arrears_ms": CLAIM_ARREARS_MS, "genesis": DEFAULT_GENESIS_MS},
        "cases": [_ledger_scenario(), _arrears_scenario()],
    }


def build_forks() -> dict[str, Any]:
    return {
        "description": "Equivocation. Same layout as ledger.json; 'final.forks' lists forked "
                       "authors with their fork seq and the ids of the (at most two, lowest) "
                       "proofs kept; steps list the ops each step excluded.",
        "spec": "protocols/ops.md §9, §6.2, §10",
        "cases": [_fork_scenario()],
    }
