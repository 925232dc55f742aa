"""Memoized record decoding (sim/decodecache.py) gives every receiver the outcome it
would get decoding the bytes itself: the same record, or the same rejection with the
same reason and detail, the clock checks made against each receiver's own clock."""

from __future__ import annotations

import gc
import json

import pytest

from liberation_node.core import frames
from liberation_node.core import replica as replica_module
from liberation_node.core.errors import Reason, Rejection
from liberation_node.core.frames import IHave, Ping
from liberation_node.core.ingested import Outcome
from liberation_node.core.ops import MAX_CLOCK_SKEW_MS
from liberation_node.core.records import NodeLinks, Record, create_record, decode_record
from liberation_node.core.replica import Replica
from liberation_node.sim import FaultOptions, NetworkOptions, simulate
from liberation_node.sim.decodecache import FRAMES_KEPT, memoized_frames, memoized_records
from liberation_node.sim.world import GC_THRESHOLDS, Hooks

from ..history import NETWORK, identity
from .common import small

T = 1_700_000_000_000


def outcome(wire: bytes, now: int | None) -> object:
    try:
        record: Record = getattr(replica_module, "decode_record")(wire, NETWORK, now)  # noqa: B009
        return record
    except Rejection as rejection:
        return (rejection.reason, rejection.detail)


def test_each_receiver_gets_its_own_outcome() -> None:
    record = create_record(identity(1), network=NETWORK, version=T, ttl_ms=60_000,
                           body=NodeLinks(()))
    forged = bytearray(record.wire)
    forged[-1] ^= 1
    wires = [record.wire, bytes(forged), b"\x93\x01\x02\x03", record.wire[:-3]]
    # Clocks that find it fresh, expired, from the future, and no clock at all.
    clocks = [T, T + 60_000, T - MAX_CLOCK_SKEW_MS - 1, None]
    real = [[outcome(w, now) for now in clocks] for w in wires]
    with memoized_records() as stats:
        for _ in range(2):  # the second time, every wire is a hit
            assert [[outcome(w, now) for now in clocks] for w in wires] == real
    assert stats["misses"] == len(wires) and stats["hits"] == 7 * len(wires)
    assert real[0][1] == (Reason.RECORD_EXPIRED, "")
    assert real[0][2] == (Reason.FROM_THE_FUTURE, f"version {MAX_CLOCK_SKEW_MS + 1} ms ahead "
                                                  "of our clock")
    assert getattr(replica_module, "decode_record") is decode_record  # noqa: B009 (restored)


def test_a_replica_takes_the_same_records_through_it() -> None:
    records = [create_record(identity(i), network=NETWORK, version=T + i, ttl_ms=60_000,
                             body=NodeLinks(())) for i in range(3)]
    plain, memo = Replica(NETWORK), Replica(NETWORK)
    for r in records:
        assert plain.ingest_record(r.wire, T).outcome is Outcome.APPLIED
    with memoized_records():
        for r in records:
            assert memo.ingest_record(r.wire, T).outcome is Outcome.APPLIED
            assert memo.ingest_record(r.wire, T).outcome is Outcome.DUPLICATE
    assert memo.records == plain.records


def test_frames_decode_as_they_would() -> None:
    ihave = frames.encode(IHave(((bytes(32), 0, bytes(32), 3),)))
    wires = [ihave, frames.encode(Ping(7)), b"\x91\x63", b"\xc1", ihave[:-1]]

    def outcome(data: bytes) -> object:
        try:
            return frames.decode(data)
        except Rejection as rejection:
            return (rejection.reason, rejection.detail)

    real = [outcome(w) for w in wires]
    with memoized_frames() as stats:
        assert [outcome(w) for w in wires] == real
        assert [outcome(bytes(w)) for w in wires] == real  # equal bytes, another object
        for i in range(FRAMES_KEPT):  # the cache holds the latest frames only
            frames.decode(frames.encode(Ping(10**6 + i)))
        assert outcome(ihave) == real[0]  # decoded again
    assert stats["misses"] == len(wires) + FRAMES_KEPT + 1 and stats["hits"] == len(wires)
    assert frames.decode(ihave) == real[0]  # the real one is back
    assert all(isinstance(r, tuple) for r in real[2:])


@pytest.mark.parametrize("seed", [21, 4])
def test_memoization_changes_no_run(seed: int) -> None:
    """A whole run with signature checks and record decoding memoized is the run without:
    the same report, figure for figure (only the command line says it was memoized)."""
    def run(memo: bool) -> dict[str, object]:
        config = small(nodes=10, seed=seed, ops=50, duration_ms=12_000, memo_verify=memo,
                       network=NetworkOptions(loss=0.05),
                       faults=FaultOptions(partition_at_ms=3_000, heal_at_ms=7_000, crashes=2,
                                           breaks=3, byzantine=1, byzantine_interval_ms=300))
        report = simulate(config).to_json()
        report.pop("command")
        return report
    assert json.dumps(run(True)) == json.dumps(run(False))


def test_a_run_sets_its_collector_thresholds_and_restores_them() -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    simulate(small(nodes=4, ops=2, duration_ms=2_000, liveness_ms=1_000),
             hooks=Hooks(replica=lambda i, r: seen.append(gc.get_threshold())))
    assert seen and set(seen) == {GC_THRESHOLDS}
    assert gc.get_threshold() == before
