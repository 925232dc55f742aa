"""Frames on their way into the mesh (liberation_node/inbound.py): OPS frames are
checked on worker threads, each link's frames and its closing reach the mesh in the
order they arrived, other links never wait, and the waiting is bounded."""

from __future__ import annotations

import asyncio
import threading

from liberation_node.core import frames
from liberation_node.core.bodies import Post, Register
from liberation_node.core.errors import Reason
from liberation_node.core.frames import MAX_HOPS, Ops, Ping
from liberation_node.core.replica import Replica
from liberation_node.core.verified import Verdict, check_frame
from liberation_node.inbound import MIN_POOLED_OPS, Inbound, ops_in

from .history import NETWORK, T0, HistoryBuilder, identity
from .test_verified import bad_signature

A = identity(0)
WAIT_S = 10.0


def ops_frame(*wires: bytes) -> bytes:
    return frames.encode(Ops(True, tuple((w, MAX_HOPS) for w in wires)))


PING = frames.encode(Ping(7))


class Recorder:
    """What `Inbound` handed on, in order, and an event per delivery."""

    def __init__(self) -> None:
        self.got: list[tuple[int, bytes, list[Verdict]]] = []
        self.changed = asyncio.Event()

    def __call__(self, conn: int, data: bytes, verdicts: list[Verdict]) -> None:
        self.got.append((conn, data, verdicts))
        self.changed.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(WAIT_S):
            while len(self.got) < count:
                self.changed.clear()
                await self.changed.wait()


class Gate:
    """A worker job that waits until the test opens it (one gate per frame)."""

    def __init__(self) -> None:
        self.opened: dict[bytes, threading.Event] = {}

    def __call__(self, data: bytes) -> list[Verdict]:
        assert self.opened.setdefault(data, threading.Event()).wait(WAIT_S)
        return check_frame(data)

    def open(self, data: bytes) -> None:
        self.opened.setdefault(data, threading.Event()).set()


def signed_ops(count: int) -> list[bytes]:
    h = HistoryBuilder()
    h.write(A, Register("a"))
    for i in range(count - 1):
        h.write(A, Post("social", f"post {i}", 1, None))
    return [h.carried(op) for op in h.ops]


def test_ops_are_counted_from_the_first_bytes() -> None:
    wires = signed_ops(20)
    assert [ops_in(ops_frame(*wires[:n])) for n in (0, 1, 4, 15, 16, 20)] == [
        0, 1, 4, 15, 16, 16]
    assert ops_in(PING) == 0 and ops_in(b"") == 0
    records = frames.encode(frames.Records(False, tuple((w, 1) for w in wires[:5])))
    assert ops_in(records) == 5  # records are checked ahead too


async def test_a_frame_of_few_ops_is_left_to_the_loop_at_once() -> None:
    wires = signed_ops(MIN_POOLED_OPS)
    gate, got = Gate(), Recorder()
    inbound = Inbound(got, job=gate)  # the gate stays shut: no worker may be waited on
    try:
        inbound.received(1, ops_frame(*wires[:-1]))
        assert got.got == [(1, ops_frame(*wires[:-1]), [])]
        inbound.received(1, ops_frame(*wires))
        assert len(got.got) == 1 and inbound.queued == 1  # this one went to the workers
        gate.open(ops_frame(*wires))
        await got.until(2)
        assert [ok for _, _, ok in got.got[1][2]] == [True] * MIN_POOLED_OPS
    finally:
        inbound.close()


async def test_a_links_frames_keep_their_order_and_other_links_do_not_wait() -> None:
    wires = signed_ops(2 * MIN_POOLED_OPS)
    first, second = ops_frame(*wires[:MIN_POOLED_OPS]), ops_frame(*wires[MIN_POOLED_OPS:])
    gate, got = Gate(), Recorder()
    inbound = Inbound(got, job=gate)
    closed: list[int] = []
    try:
        inbound.received(1, first)
        inbound.received(1, PING)  # behind the OPS frame still being checked
        inbound.received(1, second)
        inbound.closed(1, lambda: closed.append(1))
        inbound.received(2, PING)  # another link: at once
        assert [(c, d) for c, d, _ in got.got] == [(2, PING)]
        gate.open(second)  # the later frame's check ends first: it still waits
        await asyncio.sleep(0.05)
        assert len(got.got) == 1 and closed == []
        gate.open(first)
        await got.until(4)
        assert [(c, d) for c, d, _ in got.got] == [(2, PING), (1, first), (1, PING),
                                                 (1, second)]
        assert closed == [1] and inbound.queued == 0
        assert got.got[0][2] == []  # no check for a PING
        for frame in (1, 3):
            assert [(key, ok) for _, key, ok in got.got[frame][2]] == [
                (A.public_key, True)] * MIN_POOLED_OPS
    finally:
        inbound.close()


async def test_a_bad_signature_in_a_batch_is_refused_for_the_same_reason() -> None:
    wires = signed_ops(4)
    wires[2] = bad_signature(wires[2])
    got = Recorder()
    inbound = Inbound(got)
    try:
        inbound.received(1, ops_frame(*wires))
        await got.until(1)
    finally:
        inbound.close()
    verdicts = got.got[0][2]
    assert [ok for _, _, ok in verdicts] == [True, True, False, True]
    replica = Replica(NETWORK)
    replica.verified.learn(verdicts)
    results = [replica.ingest(w, T0 + 60_000) for w in wires]
    assert replica.verified.used == 4
    assert [r.rejection.reason if r.rejection else None for r in results] == [
        None, None, Reason.BAD_SIGNATURE, None]


async def test_the_waiting_is_bounded_and_a_flood_is_checked_by_the_loop() -> None:
    wires = signed_ops(20 * MIN_POOLED_OPS)
    got = Recorder()
    inbound = Inbound(got, workers=1, max_queued=4)
    sent = [ops_frame(*wires[i : i + MIN_POOLED_OPS])
            for i in range(0, len(wires), MIN_POOLED_OPS)]
    most = 0
    try:
        # A burst with no pause: no check can be handed on before the loop runs again.
        for i, data in enumerate(sent):
            inbound.received(1 + i % 2, data)
            most = max(most, inbound.queued)
        await got.until(len(sent))
    finally:
        inbound.close()
    assert most <= 4
    assert inbound.inline > 0 and inbound.checked + inbound.inline == len(sent)
    for conn in (1, 2):  # each link's frames in the order they came
        assert [d for c, d, _ in got.got if c == conn] == sent[conn - 1 :: 2]


async def test_past_the_bound_the_loop_never_waits_for_the_workers() -> None:
    """A pool that does not answer (still starting, or busy) must not stall the loop:
    past the bound, each new frame hands its link's oldest one on at once, unchecked,
    and the core checks it (a wait on the pool here once stalled a loaded node's loop
    for 2 s)."""
    wires = signed_ops(12 * MIN_POOLED_OPS)
    sent = [ops_frame(*wires[i : i + MIN_POOLED_OPS])
            for i in range(0, len(wires), MIN_POOLED_OPS)]
    gate, got = Gate(), Recorder()  # the gate stays shut: no check ends
    inbound = Inbound(got, job=gate, max_queued=4)
    try:
        for data in sent:
            inbound.received(1, data)  # returns at once, or the test hangs here
            assert inbound.queued <= 4
        # One out for each one in, while the loop has not run: the first four went
        # unchecked, then the next four, which got no check; the last four follow.
        assert [d for _, d, _ in got.got] == sent[:8] and inbound.queued == 4
        await got.until(len(sent))
        assert [d for _, d, _ in got.got] == sent
        assert all(v == [] for _, _, v in got.got)  # unchecked: the core checks them
        assert inbound.inline == len(sent) and inbound.queued == 0
        replica = Replica(NETWORK)
        for _, data, verdicts in got.got:
            replica.verified.learn(verdicts)
            frame = frames.decode(data)
            assert isinstance(frame, Ops)
            assert all(replica.ingest(w, T0 + 60_000).rejection is None for w in frame.wires)
    finally:
        for data in sent:
            gate.open(data)
        inbound.close()


async def test_after_close_frames_go_straight_through_and_closings_are_told() -> None:
    wires = signed_ops(MIN_POOLED_OPS)
    gate, got = Gate(), Recorder()
    inbound = Inbound(got, job=gate)
    closed: list[int] = []
    inbound.received(1, ops_frame(*wires))
    inbound.closed(1, lambda: closed.append(1))
    inbound.close()  # the node stops: the waiting frame is dropped, the closing told
    assert closed == [1]
    gate.open(ops_frame(*wires))
    inbound.received(3, ops_frame(*wires))
    assert got.got == [(3, ops_frame(*wires), [])]


async def test_a_frame_that_fails_to_go_in_does_not_hold_up_its_link() -> None:
    wires = signed_ops(2 * MIN_POOLED_OPS)
    first, second = ops_frame(*wires[:MIN_POOLED_OPS]), ops_frame(*wires[MIN_POOLED_OPS:])
    gate, got = Gate(), Recorder()

    def deliver(conn: int, data: bytes, verdicts: list[Verdict]) -> None:
        got(conn, data, verdicts)
        if data == first:
            raise RuntimeError("a bug in the mesh")

    inbound = Inbound(deliver, job=gate)
    try:
        inbound.received(1, first)
        inbound.received(1, second)
        gate.open(second)  # its check ends first, while the first frame still waits
        await asyncio.sleep(0.05)
        gate.open(first)
        await got.until(2)
        assert [d for _, d, _ in got.got] == [first, second] and inbound.queued == 0
    finally:
        inbound.close()
