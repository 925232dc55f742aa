"""The feed-context cases of ops_invalid.json: op sequences and what a replica does with
each step (ops.md §5.3, §5.5, §7.3, §9)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from liberation_node.core.bodies import Claim, Post, Register, Retract, Transfer
from liberation_node.core.ops import Dep, Op, create_op
from liberation_node.core.replica import Replica

from .common import (
    ALICE,
    BOB,
    CAROL,
    HOUR,
    MINUTE,
    NETWORK,
    OTHER_NETWORK,
    T0,
    Writer,
    feeds_json,
    h,
    run_steps,
)

BOGUS = bytes([0xEE]) * 32


def final_json(replica: Replica) -> dict[str, Any]:
    return {**feeds_json(replica), "pending": len(replica.pending),
            "digest": h(replica.digest())}


def _sequence(name: str, description: str, steps: Sequence[tuple[str, bytes]],
              expect: Sequence[str]) -> dict[str, Any]:
    replica, rows = run_steps(steps)
    got = [row["outcome"] + (f":{row['reason']}" if row["reason"] else "") for row in rows]
    assert got == list(expect), (name, got)
    return {"name": name, "description": description, "network": NETWORK, "steps": rows,
            "final": final_json(replica)}


def _pick(make: Callable[[int], Op], want: Callable[[Op], bool]) -> Op:
    """The first op `make(k)` (k = 0, 1, ...) that satisfies `want`: deterministic."""
    k = 0
    while not want(op := make(k)):
        k += 1
    return op


def _gap_cases() -> list[dict[str, Any]]:
    a = Writer(ALICE)
    a1 = a.write(Register("alice"), T0)
    a2 = a.write(Claim(202602), T0 + HOUR)
    a3 = a.write(Post("social", "hello", 5, None), T0 + 2 * HOUR)
    stray = create_op(ALICE, network=NETWORK, seq=2, prev=BOGUS, timestamp=T0 + HOUR,
                      body=Claim(202602))
    b = Writer(BOB)
    b1 = b.write(Register("bob"), T0, (a2.ref,))
    b_wrong = Writer(BOB).write(Register("bob"), T0, (Dep(ALICE.public_key, 1, BOGUS),))
    return [
        _sequence("gap_then_fill",
                  "ops arriving before their prev wait; the missing op releases them in order",
                  [("alice#3", a3.wire), ("alice#2", a2.wire), ("alice#3", a3.wire),
                   ("alice#1", a1.wire), ("alice#2", a2.wire)],
                  ["pending", "pending", "duplicate", "applied", "duplicate"]),
        _sequence("prev_unknown_waits",
                  "an op whose prev names no held op waits (it may prove a fork later); "
                  "bad_prev is never reported, the op is only ever evicted",
                  [("alice#1", a1.wire), ("alice#2 prev=ee..", stray.wire),
                   ("alice#2", a2.wire), ("alice#3", a3.wire)],
                  ["applied", "pending", "applied", "applied"]),
        _sequence("deps_wait",
                  "an op waits until every feed its deps name is held up to the named op",
                  [("bob#1 deps=[alice#2]", b1.wire), ("alice#1", a1.wire),
                   ("alice#2", a2.wire)],
                  ["pending", "applied", "applied"]),
        _sequence("dep_id_mismatch_waits",
                  "a dep naming a different op than the one held at that seq waits",
                  [("alice#1", a1.wire), ("bob#1 deps=[alice#1=ee..]", b_wrong.wire)],
                  ["applied", "pending"]),
    ]


def _timestamp_cases() -> list[dict[str, Any]]:
    a1 = create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0,
                   body=Register("alice"))

    def second(ts: int) -> Op:
        return create_op(ALICE, network=NETWORK, seq=2, prev=a1.id, timestamp=ts,
                         body=Claim(202602))

    back, same = second(T0 - 1), second(T0)
    return [
        _sequence("timestamp_regression",
                  "a timestamp before prev's is refused; an equal one is fine",
                  [("alice#1", a1.wire), ("alice#2 ts-1", back.wire),
                   ("alice#2 same ts", same.wire)],
                  ["applied", "rejected:timestamp_regression", "applied"]),
        _sequence("timestamp_regression_on_release",
                  "a waiting op that fails once its prev arrives is dropped "
                  "(reported in rejected_waiters)",
                  [("alice#2 ts-1", back.wire), ("alice#1", a1.wire)],
                  ["pending", "applied"]),
    ]


def _retract_cases() -> list[dict[str, Any]]:
    a, b = Writer(ALICE), Writer(BOB)
    a1 = a.write(Register("alice"), T0)
    a2 = a.write(Post("billboard", "market at 9", 3, None), T0 + MINUTE)
    b1 = b.write(Register("bob"), T0)
    b2 = b.write(Retract(a2.id), T0 + HOUR, (a2.ref,))
    not_post = a.after(a2, Retract(a1.id), T0 + HOUR)
    unknown = a.after(a2, Retract(BOGUS), T0 + HOUR)
    a3 = a.write(Retract(a2.id), T0 + HOUR)
    a4 = a.write(Retract(a2.id), T0 + 2 * HOUR)
    return [_sequence(
        "retract_rules",
        "only the author of a post earlier in the same feed may retract it; twice is allowed",
        [("alice#1", a1.wire), ("alice#2 post", a2.wire), ("bob#1", b1.wire),
         ("bob#2 retract alice#2", b2.wire), ("alice#3 retract alice#1", not_post.wire),
         ("alice#3 retract ee..", unknown.wire), ("alice#3 retract alice#2", a3.wire),
         ("alice#4 retract alice#2", a4.wire)],
        ["applied", "applied", "applied", "rejected:not_authors_post",
         "rejected:not_authors_post", "rejected:not_authors_post", "applied", "applied"])]


def _fork_cases() -> list[dict[str, Any]]:
    a = Writer(ALICE)
    a1 = a.write(Register("alice"), T0)
    a2 = a.write(Claim(202602), T0 + HOUR)
    a3 = a.write(Post("social", "one", 5, None), T0 + 2 * HOUR)
    a4 = a.write(Post("social", "two", 5, None), T0 + 3 * HOUR)

    def variant(k: int) -> Op:
        return a.after(a1, Transfer(BOB.public_key, 100 + k, "again"), T0 + HOUR)

    twin = variant(0)
    top = max(a2.id, twin.id)
    lower = _pick(lambda k: variant(k + 1), lambda op: op.id < top)
    kept = sorted([a2.id, twin.id, lower.id])[:2]
    higher = _pick(lambda k: variant(k + 100), lambda op: op.id > max(kept))

    b = Writer(BOB)
    b1 = b.write(Register("bob"), T0)
    b1_twin = b.after(None, Register("bob2"), T0)
    b2 = b.write(Claim(202602), T0 + HOUR)

    c = Writer(CAROL)
    c1 = c.write(Register("carol"), T0)
    c2 = c.write(Claim(202602), T0 + HOUR)
    c3 = c.write(Post("media", "x", 2, None), T0 + 2 * HOUR)
    c3_twin = c.after(c2, Post("media", "y", 2, None), T0 + 2 * HOUR)
    c2_twin = c.after(c1, Post("media", "z", 2, None), T0 + HOUR)
    return [
        _sequence("fork_then_forked_author",
                  "a second op at a held seq proves equivocation: the feed is cut at the fork "
                  "seq, the two lowest-id conflicting ops are kept as proof, later ops refused",
                  [("alice#1", a1.wire), ("alice#2", a2.wire), ("alice#3", a3.wire),
                   ("alice#2 twin", twin.wire), ("alice#3 again", a3.wire),
                   ("alice#4", a4.wire), ("alice#2 third, lower id", lower.wire),
                   ("alice#2 fourth, higher id", higher.wire)],
                  ["applied", "applied", "applied", "fork", "rejected:forked_author",
                   "rejected:forked_author", "fork", "rejected:forked_author"]),
        _sequence("fork_at_seq_1",
                  "two different first ops: nothing of the feed is held but the proofs",
                  [("bob#1", b1.wire), ("bob#1 twin", b1_twin.wire), ("bob#2", b2.wire)],
                  ["applied", "fork", "rejected:forked_author"]),
        _sequence("earlier_fork_moves_fork_seq",
                  "a conflict below a known fork moves the fork seq down and replaces the "
                  "proofs",
                  [("carol#1", c1.wire), ("carol#2", c2.wire), ("carol#3", c3.wire),
                   ("carol#3 twin", c3_twin.wire), ("carol#2 twin", c2_twin.wire)],
                  ["applied", "applied", "applied", "fork", "fork"]),
    ]


def _replica_rejections() -> list[dict[str, Any]]:
    a1 = create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0,
                   body=Register("alice"))
    other = Writer(ALICE, OTHER_NETWORK).write(Register("alice"), T0)
    tampered = a1.wire[:-1] + bytes([a1.wire[-1] ^ 0x80])
    return [_sequence(
        "rejected_at_ingest",
        "decode rejections reach the replica unchanged and leave it untouched",
        [("9000 zero bytes", bytes(9000)), ("othernet alice#1", other.wire),
         ("alice#1 bad signature", tampered), ("alice#1", a1.wire)],
        ["rejected:oversize", "rejected:wrong_network", "rejected:bad_signature", "applied"])]


def sequence_cases() -> list[dict[str, Any]]:
    return [*_gap_cases(), *_timestamp_cases(), *_retract_cases(), *_fork_cases(),
            *_replica_rejections()]
