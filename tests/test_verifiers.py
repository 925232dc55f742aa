"""Signature checks in worker processes (liberation_node/verifiers.py): the same verdicts
as on the loop, in order; a worker that dies costs only the work it would have spared,
and frames still reach the mesh in order with the same outcomes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from liberation_node.core import frames
from liberation_node.core.errors import Reason
from liberation_node.core.frames import Ping
from liberation_node.core.replica import Replica
from liberation_node.core.verified import Verdict, check_frame
from liberation_node.inbound import Inbound
from liberation_node.verifiers import Verifiers

from .history import NETWORK, T0
from .test_inbound import WAIT_S, Recorder, ops_frame, signed_ops
from .test_verified import bad_signature


async def answers(pool: Verifiers, data: list[bytes]) -> list[list[Verdict]]:
    async with asyncio.timeout(WAIT_S):
        return [await asyncio.wrap_future(pool.submit(d)) for d in data]


async def test_workers_give_the_verdicts_the_loop_would() -> None:
    wires = signed_ops(12)
    wires[5] = bad_signature(wires[5])
    data = [ops_frame(*wires[:6]), ops_frame(*wires[6:]), frames.encode(Ping(1)),
            b"\xff\x00 not msgpack", ops_frame(*wires)]
    pool = Verifiers(2)
    try:
        got = await answers(pool, data)
    finally:
        pool.close()
    assert got == [check_frame(d) for d in data]
    assert [ok for _, _, ok in got[0]] == [True] * 5 + [False]
    assert got[2] == got[3] == []
    assert all(w.process.poll() is not None for w in pool._running) and not pool._running


async def test_a_dead_worker_costs_its_verdicts_not_its_frames() -> None:
    wires = signed_ops(8)
    pool = Verifiers(1)
    try:
        assert len((await answers(pool, [ops_frame(*wires)]))[0]) == 8
        worker = pool._running[0]
        worker.process.kill()
        assert await answers(pool, [ops_frame(*wires)] * 3) == [[]] * 3
        assert not pool._running and worker.process.poll() is not None
    finally:
        pool.close()


async def test_a_worker_that_answers_nonsense_is_dropped() -> None:
    # A stand-in that answers every job with 5 verdicts but sends no rows.
    liar = [sys.executable, "-c",
            "import sys\nwhile sys.stdin.buffer.read(4): sys.stdout.buffer.write("
            "(99999999).to_bytes(4, 'big')); sys.stdout.buffer.flush()"]
    pool = Verifiers(1, liar)
    try:
        assert await answers(pool, [ops_frame(*signed_ops(4))]) == [[]]
        assert not pool._running
    finally:
        pool.close()


async def test_through_inbound_order_and_reasons_are_kept() -> None:
    wires = signed_ops(40)
    wires[13] = bad_signature(wires[13])
    sent = [ops_frame(*wires[i : i + 5]) for i in range(0, 40, 5)]
    got = Recorder()
    inbound = Inbound(got, pool=Verifiers(2), max_queued=3)  # some over the bound
    try:
        for i, data in enumerate(sent):
            inbound.received(1, data)
            if i == 4:
                inbound.received(1, frames.encode(Ping(3)))
        await got.until(len(sent) + 1)
    finally:
        inbound.close()
    assert [d for _, d, _ in got.got] == [*sent[:5], frames.encode(Ping(3)), *sent[5:]]
    replica = Replica(NETWORK)
    results = []
    for _, data, verdicts in got.got:
        replica.verified.learn(verdicts)
        frame = frames.decode(data)
        if isinstance(frame, frames.Ops):
            results += [replica.ingest(w, T0 + 60_000) for w in frame.wires]
    assert inbound.inline > 0  # past the bound: the loop checked those itself
    assert replica.verified.used == 40 - 5 * inbound.inline
    assert [i for i, r in enumerate(results) if r.rejection is not None] == [13]
    assert results[13].rejection is not None
    assert results[13].rejection.reason is Reason.BAD_SIGNATURE


async def test_idle_workers_stop_and_start_again_when_needed() -> None:
    data = ops_frame(*signed_ops(4))
    pool = Verifiers(1, idle_s=0.05)
    try:
        job = pool.submit(data)
        # Taken at once: the worker may stop idle before the answer's awaiter resumes
        # on a busy machine (0.05 s here).
        worker = pool._running[0]
        async with asyncio.timeout(WAIT_S):
            assert await asyncio.wrap_future(job) == check_frame(data)
        async with asyncio.timeout(WAIT_S):
            while pool._running:
                await asyncio.sleep(0.02)
        assert worker.process.poll() is not None  # stopped, not left behind
        assert await answers(pool, [data]) == [check_frame(data)]
        assert pool.starts == 2
    finally:
        pool.close()


def test_a_worker_whose_node_is_gone_ends_quietly() -> None:
    """A node that stops closes its workers' pipes; a worker still checking a frame then
    has no one to answer. It ends without a traceback (each stop printed one)."""
    worker = subprocess.Popen([sys.executable, "-m", "liberation_node.verifiers"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdout.close()  # the node is gone before the answer
    data = ops_frame(*signed_ops(4))
    worker.stdin.write(len(data).to_bytes(4, "big") + data)
    worker.stdin.close()
    assert worker.wait(WAIT_S) == 0
    assert worker.stderr is not None and worker.stderr.read() == b""
    worker.stderr.close()
