"""Signature checks done ahead of ingest (core/verified.py): the same outcomes as the
replica's own checks, for good ops, bad signatures and garbage; a verdict stands in
only for the author it was checked against; the memo is bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from liberation_node.core.bodies import Claim, Post, Register, Transfer
from liberation_node.core.errors import Reason
from liberation_node.core.ingested import Outcome
from liberation_node.core.ledger import iso_week
from liberation_node.core.ops import op_id, split_carried
from liberation_node.core.replica import Replica
from liberation_node.core.verified import Verified, check

from .history import NETWORK, T0, HistoryBuilder, identity

A, B = identity(0), identity(1)


def history() -> HistoryBuilder:
    h = HistoryBuilder()
    for who in (A, B):
        h.write(who, Register("x"))
        h.write(who, Claim(iso_week(T0)))
    h.write(A, Post("social", "a post whose text travels with it", 1, None))
    h.write(A, Transfer(B.public_key, 250, "thanks"))
    h.write(B, Post("social", "another", 2, None))
    return h


def bad_signature(wire: bytes) -> bytes:
    """The op's header with one bit of its signature (its last byte) flipped."""
    header = split_carried(wire)[0] if wire[:1] == b"\x9b" else wire
    return header[:-1] + bytes([header[-1] ^ 1])


def outcomes(wires: list[bytes], ahead: bool) -> list[tuple[str, str | None]]:
    replica = Replica(NETWORK)
    out = []
    for wire in wires:
        if ahead:
            replica.verified.learn(check([wire]))
        result = replica.ingest(wire, T0 + 60_000)
        out.append((result.outcome.value,
                    result.rejection.reason.value if result.rejection else None))
    if ahead:
        assert len(replica.verified) == 0, "every verdict is taken by its op"
    return out


def test_verdicts_name_the_op_its_author_and_the_result() -> None:
    h = history()
    wires = [h.carried(op) for op in h.ops]
    assert any(w[:1] == b"\x9b" for w in wires)  # carried forms are checked too
    verdicts = check(wires)
    assert [(oid, key, ok) for oid, key, ok in verdicts] == [
        (op.id, op.author, True) for op in h.ops]
    forged = bad_signature(wires[0])
    assert check([forged]) == [(op_id(forged), A.public_key, False)]


def test_ingest_with_verdicts_skips_the_check_and_decides_the_same() -> None:
    h = history()
    wires = [h.carried(op) for op in h.ops]
    wires.insert(3, bad_signature(wires[2]))  # a bad signature inside the batch
    replica = Replica(NETWORK)
    replica.verified.learn(check(wires))
    results = [replica.ingest(w, T0 + 60_000) for w in wires]
    assert replica.verified.used == len(wires)
    assert results[3].outcome is Outcome.REJECTED
    assert results[3].rejection is not None
    assert results[3].rejection.reason is Reason.BAD_SIGNATURE
    assert outcomes(wires, ahead=True) == outcomes(wires, ahead=False)


def test_a_verdict_for_another_key_is_not_trusted() -> None:
    h = history()
    forged = bad_signature(h.ops[0].wire)
    replica = Replica(NETWORK)
    # A valid verdict, but checked against B's key: the op is A's, so it is verified.
    replica.verified.learn([(op_id(forged), B.public_key, True)])
    result = replica.ingest(forged, T0 + 60_000)
    assert result.rejection is not None and result.rejection.reason is Reason.BAD_SIGNATURE


def test_verdicts_of_a_duplicate_are_dropped_with_it() -> None:
    h = history()
    wire = h.ops[0].wire
    replica = Replica(NETWORK)
    replica.ingest(wire)
    replica.verified.learn(check([wire]))
    assert replica.ingest(wire).outcome is Outcome.DUPLICATE
    assert len(replica.verified) == 0


def test_the_memo_is_bounded_oldest_out() -> None:
    memo = Verified(size=3)
    memo.learn([(bytes([i]) * 32, A.public_key, True) for i in range(5)])
    assert len(memo) == 3
    assert memo.take(bytes([0]) * 32) is None and memo.take(bytes([1]) * 32) is None
    assert memo.take(bytes([4]) * 32) == (A.public_key, True)
    assert memo.take(bytes([4]) * 32) is None  # taken once


def test_a_long_network_name_still_finds_the_author() -> None:
    network = "n" * 40  # str8, not fixstr
    h = HistoryBuilder(network=network, world=Replica(network))
    op = h.write(A, Register("x"))
    assert check([op.wire]) == [(op.id, A.public_key, True)]


@given(st.binary(max_size=400))
def test_any_bytes_give_verdicts_that_change_no_outcome(data: bytes) -> None:
    verdicts = check([data, b"\x9a" + data, b"\x9b" + data])  # never raises
    replica = Replica(NETWORK)
    replica.verified.learn(verdicts)
    for wire in (data, b"\x9a" + data, b"\x9b" + data):
        with_ = replica.ingest(wire)
        without = Replica(NETWORK).ingest(wire)
        assert (with_.outcome, with_.rejection and with_.rejection.reason) == (
            without.outcome, without.rejection and without.rejection.reason)


def records() -> list[bytes]:
    from liberation_node.core.records import NodeInfo, NodeLinks, create_record

    return [create_record(A, network=NETWORK, version=T0, ttl_ms=60_000,
                          body=NodeLinks(((B.public_key, 3),))).wire,
            create_record(B, network=NETWORK, version=T0 + 1, ttl_ms=60_000,
                          body=NodeInfo("b", "liberation-node/0.1", (), (), ())).wire]


def test_records_are_checked_ahead_like_ops() -> None:
    from liberation_node.core import frames
    from liberation_node.core.records import record_id
    from liberation_node.core.verified import check_frame

    wires = records()
    forged = wires[1][:-1] + bytes([wires[1][-1] ^ 1])
    frame = frames.encode(frames.Records(True, ((wires[0], 1), (forged, 1), (wires[1], 2))))
    verdicts = check_frame(frame)
    assert verdicts == [(record_id(wires[0]), A.public_key, True),
                        (record_id(forged), B.public_key, False),
                        (record_id(wires[1]), B.public_key, True)]
    replica = Replica(NETWORK)
    replica.verified.learn(verdicts)
    got = [replica.ingest_record(w, T0 + 1000) for w in (wires[0], forged, wires[1])]
    assert replica.verified.used == 3
    assert [r.outcome for r in got] == [Outcome.APPLIED, Outcome.REJECTED, Outcome.APPLIED]
    assert got[1].rejection is not None and got[1].rejection.reason is Reason.BAD_SIGNATURE


def test_a_record_verdict_for_another_key_is_not_trusted() -> None:
    from liberation_node.core.records import record_id

    wire = records()[0]
    forged = wire[:-1] + bytes([wire[-1] ^ 1])
    replica = Replica(NETWORK)
    replica.verified.learn([(record_id(forged), B.public_key, True)])
    got = replica.ingest_record(forged, T0 + 1000)
    assert got.rejection is not None and got.rejection.reason is Reason.BAD_SIGNATURE


@given(st.binary(max_size=300))
def test_any_bytes_give_record_verdicts_that_change_no_outcome(data: bytes) -> None:
    from liberation_node.core.verified import check_records

    wires = [data, b"\x98" + data, records()[0][:40] + data]
    replica = Replica(NETWORK)
    replica.verified.learn(check_records(wires))  # never raises
    for wire in wires:
        with_ = replica.ingest_record(wire, T0)
        without = Replica(NETWORK).ingest_record(wire, T0)
        assert (with_.outcome, with_.rejection and with_.rejection.reason) == (
            without.outcome, without.rejection and without.rejection.reason)
