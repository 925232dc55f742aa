"""Frames from peers on their way into the mesh: the signatures of OPS frames are checked
by workers first (processes in the node, verifiers.py; or threads), and every link's
frames still reach the mesh in the order they arrived (issue 10, parallel
verification; core/verified.py).

Ed25519 verification is most of the cost of taking in ops (scripts/bench_ingest.py),
so workers check the signatures of an OPS (or RECORDS) frame while the event loop
applies the frames before it, runs WebRTC and commits. The sans-IO core stays
synchronous: the verdicts travel with the frame into `Mesh.data_received` and
merely spare the replica the work.

Order. Each link has a queue: a frame that arrives while earlier frames of its
link are still being checked waits behind them, whatever its type, and so does
the link's closing; frames of other links never wait for it.

Bounds (a flood must not queue without limit, sync.md §4.5). At most `max_queued`
frames wait in all, hence at most that many checks in the pool's queue. A frame
that arrives beyond that is the loop's own work again, as without the pool: it
gets no check, and its link's oldest waiting frame is handed on at once, checked
or not, so the core verifies what was not (it is the back-pressure a busy loop
gave before: the peer's frames wait in the transport's buffers). The loop never
blocks on the workers: waiting for a pool that was still starting, or busy with
64 frames, stalled it for seconds on a loaded machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from .core.frames import Ops, Records, type_code
from .core.verified import Verdict, check_frame

log = logging.getLogger(__name__)

# Workers (processes, verifiers.py, or threads): one per core, at most 4 (verification
# scales with cores; a worker is all CPU, and more only contend with the node itself).
WORKERS = max(1, min(4, os.cpu_count() or 1))
MAX_QUEUED = 64  # frames waiting in all links' queues: at most 64 x 64 KiB (frames.py)
# An OPS frame with fewer ops is checked on the loop, as any frame with nothing to wait
# for: handing it to a thread costs about what checking one op does, and puts two thread
# wake-ups (on a busy machine, two waits for a core) into the latency of gossip, whose
# pushes carry an op or two (sync.md §5).
MIN_POOLED_OPS = 4
_OPS, _RECORDS = type_code(Ops), type_code(Records)

Deliver = Callable[[int, bytes, list[Verdict]], None]


class Pool(Protocol):
    """Where the checks run: worker processes (verifiers.py, the node's) or threads."""

    def submit(self, data: bytes) -> Future[list[Verdict]]: ...

    def close(self) -> None: ...


class Threads:
    """Checks on worker threads (simple; slower than processes while the loop is busy,
    verifiers.py says why)."""

    def __init__(self, workers: int = WORKERS,
                 job: Callable[[bytes], list[Verdict]] = check_frame) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="verify")
        self._job = job

    def submit(self, data: bytes) -> Future[list[Verdict]]:
        return self._pool.submit(self._job, data)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def ops_in(data: bytes) -> int:
    """How many ops or records this frame carries if it is an OPS or RECORDS frame, [4 or
    8, eager, [[wire, hops], ...]], else 0: a cheap look at its first bytes (16 for 16
    or more). A wrong guess only moves the work."""
    if len(data) < 5 or data[0] != 0x93 or data[1] not in (_OPS, _RECORDS):
        return 0
    head = data[3]
    return head & 0x0F if 0x90 <= head <= 0x9F else 16 if head in (0xDC, 0xDD) else 0


@dataclass(slots=True)
class _Waiting:
    data: bytes | None  # None: the link's closing, which waits like a frame
    check: Future[list[Verdict]] | None  # the signature checks under way, if any
    then: Callable[[], None] | None = None  # for the closing


class Inbound:
    """Takes each link's frames (`received`) and hands them on in order (`deliver`)."""

    def __init__(self, deliver: Deliver, *, workers: int = WORKERS,
                 max_queued: int = MAX_QUEUED,
                 job: Callable[[bytes], list[Verdict]] = check_frame,
                 pool: Pool | None = None) -> None:
        self._deliver = deliver
        self.max_queued = max_queued
        self._pool: Pool = pool if pool is not None else Threads(workers, job)
        self._queues: dict[int, deque[_Waiting]] = {}
        self.queued = 0  # frames (and closings) waiting, all links
        self.checked = 0  # frames whose ops were checked on the workers
        self.inline = 0  # OPS frames past the bound, left to the core on the loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def received(self, conn: int, data: bytes) -> None:
        """A frame from link `conn` (on the loop)."""
        queue = self._queues.get(conn)
        ops = ops_in(data) >= MIN_POOLED_OPS and not self._closed
        if queue is None and not ops:
            self._deliver(conn, data, [])  # nothing to wait for: at once
            return
        if self.queued >= self.max_queued:
            # Past the bound: no new check. The frame goes in behind its link's, and
            # the link's oldest frame is handed on now, checked or not (the core checks
            # what was not); one in, one out, and never a wait for the workers, which
            # may be busy or still starting (verifiers.py).
            self.inline += ops
            if queue is None:
                self._deliver(conn, data, [])
                return
            queue.append(_Waiting(data, None))
            self.queued += 1
            self._loop = self._loop or asyncio.get_running_loop()
            self._drain(conn, force=True)
            return
        check = None
        if ops:
            check = self._pool.submit(data)
            self._loop = self._loop or asyncio.get_running_loop()
            check.add_done_callback(lambda _: self._checked(conn))
        self._queues.setdefault(conn, deque()).append(_Waiting(data, check))
        self.queued += 1

    def closed(self, conn: int, then: Callable[[], None]) -> None:
        """Link `conn` closed: `then()` once the frames it sent before are handed on."""
        queue = self._queues.get(conn)
        if queue is None:
            then()
            return
        queue.append(_Waiting(None, None, then))
        self.queued += 1

    def _checked(self, conn: int) -> None:
        """A check of `conn`'s ended (on a worker thread): drain it on the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: stopping
                loop.call_soon_threadsafe(self._drain, conn)

    def _drain(self, conn: int, force: bool = False) -> None:
        """Hand on the frame at the head of `conn`'s queue if its check is done (with
        `force`, in any case: without its verdicts if not, and the core checks those
        ops itself), and the closings behind it. One frame per call: if the next one
        is ready too, it goes in a later callback, so that the loop runs WebRTC and
        timers in between (the workers may have finished many frames at once; taking
        them all in one go stalled the loop)."""
        delivered = False
        while (queue := self._queues.get(conn)):
            head = queue[0]
            ready = head.check is None or head.check.done()
            if head.data is not None and (delivered or not (ready or force)):
                if delivered and ready and self._loop is not None:
                    self._loop.call_soon(self._drain, conn)
                return
            queue.popleft()
            self.queued -= 1
            if not queue:
                del self._queues[conn]
            if head.data is None:
                if head.then is not None:
                    head.then()
                continue
            delivered = True
            verdicts: list[Verdict] = []
            if head.check is not None and not ready:
                self.inline += 1  # its check comes too late to be used
            elif head.check is not None:
                try:
                    verdicts = head.check.result()
                except Exception:  # cancelled at shutdown: the core checks them itself
                    verdicts = []
                self.checked += 1
            try:
                self._deliver(conn, head.data, verdicts)
            except Exception:  # a bug, not the peer's input: the link's next frames go on
                log.exception("handing on a frame of link %d failed", conn)

    def close(self) -> None:
        """Stop the workers (the node is stopping): frames still waiting are dropped,
        closings waiting behind them are told at once."""
        self._closed = True
        queues, self._queues = self._queues, {}
        self.queued = 0
        self._pool.close()
        for queue in queues.values():
            for waiting in queue:
                if waiting.then is not None:
                    waiting.then()
