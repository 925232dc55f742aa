"""Signature checks in worker processes (issue 10, parallel verification; core/verified.py).

Why processes and not threads. PyNaCl releases the GIL while it verifies, but a
thread needs the GIL back after every signature, and while the event loop is
busy taking in the frames before (the decode, apply and commit that verification
overlaps), it waits for the loop to let go: at the end of a loop iteration, or
after the interpreter's switch interval (5 ms). The workers then mostly wait, and
on a 2-core machine a pool of threads took ops in more slowly than the loop alone
(scripts/bench_ingest.py). A worker process has its own GIL: the loop's share of
a frame is one write and one read on a pipe.

The protocol on a worker's stdin and stdout, one job after another, answered in
order: the parent writes a frame as `u32 length | bytes`; the worker answers
`u32 count | count x (op id 32 | key 32 | valid 1)`, the verdicts of
`verified.check_frame` (none for anything but an OPS frame). A worker that dies
or answers nonsense is dropped: its jobs, and every later one, get no verdicts,
and the core verifies those ops itself, as before the pool existed (slower,
never wrong: a verdict only spares work).

Workers start with the first job (a node that never catches up never starts
them: gossip pushes of a few ops are checked on the loop, inbound.py), stop after
`idle_s` without a job (each holds about 24 MiB), and stop when their stdin
closes: when the node stops, or dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from .core.frames import MAX_FRAME_BYTES
from .core.verified import Verdict, check_frame
from .inbound import WORKERS

log = logging.getLogger(__name__)

IDLE_S = 60.0  # workers with no job for this long stop (started again when needed)
_ROW = 65  # op id 32, key 32, valid 1
_MAX_ANSWER = 4 + _ROW * 4096  # frames.MAX_ITEMS ops at most


@dataclass(slots=True)
class _Worker:
    process: subprocess.Popen[bytes]
    stdin: int
    stdout: int
    jobs: deque[Future[list[Verdict]]] = field(default_factory=deque)
    out: bytearray = field(default_factory=bytearray)  # written to stdin when it takes it
    answer: bytearray = field(default_factory=bytearray)  # read from stdout so far
    writing: bool = False


class Verifiers:
    """Checks OPS frames in `workers` processes; `submit` is called on the loop."""

    def __init__(self, workers: int = WORKERS, command: list[str] | None = None, *,
                 idle_s: float = IDLE_S) -> None:
        self.workers = workers
        self.command = command or [sys.executable, "-m", "liberation_node.verifiers"]
        self.idle_s = idle_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: list[_Worker] = []
        self._started = False
        self._closed = False
        self._jobs = 0  # submitted so far: the idle check sees whether any came
        self._idle: asyncio.TimerHandle | None = None
        self.starts = 0  # times the workers were started (a figure for tests)

    def submit(self, data: bytes) -> Future[list[Verdict]]:
        """Check `data` (an OPS frame) in a worker; the future is set on the loop."""
        job: Future[list[Verdict]] = Future()
        self._jobs += 1
        if not self._started and not self._closed:
            self._start()
        if self._closed or not self._running or len(data) > MAX_FRAME_BYTES:
            job.set_result([])
            return job
        workers = self._running
        worker = min(workers, key=lambda w: len(w.jobs))  # the least loaded
        worker.jobs.append(job)
        worker.out += len(data).to_bytes(4, "big") + data
        self._write(worker)
        return job

    def close(self) -> None:
        """Stop the workers; jobs not answered yet get no verdicts."""
        self._closed = True
        self._stop()

    def _stop(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        for worker in list(self._running):
            self._drop(worker, None)
        self._started = False

    def _check_idle(self, seen: int) -> None:
        """Stop the workers if no job came since the last look and none is pending."""
        self._idle = None
        if seen == self._jobs and not any(w.jobs for w in self._running):
            self._stop()
        elif self._loop is not None and self._running:
            self._idle = self._loop.call_later(self.idle_s, self._check_idle, self._jobs)

    # -- the pipes ------------------------------------------------------------------

    def _start(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # answers are read by the loop: without one, no workers (no verdicts)
        self._started = True
        self.starts += 1
        self._idle = self._loop.call_later(self.idle_s, self._check_idle, self._jobs)
        for _ in range(self.workers):
            try:
                process = subprocess.Popen(self.command, stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, bufsize=0)
            except OSError as exc:
                log.warning("no signature-check worker (%s): checks stay on the loop", exc)
                break
            assert process.stdin is not None and process.stdout is not None
            worker = _Worker(process, process.stdin.fileno(), process.stdout.fileno())
            os.set_blocking(worker.stdin, False)
            os.set_blocking(worker.stdout, False)
            self._loop.add_reader(worker.stdout, self._read, worker)
            self._running.append(worker)

    def _write(self, worker: _Worker) -> None:
        try:
            sent = os.write(worker.stdin, worker.out)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._drop(worker, f"writing: {exc}")
            return
        del worker.out[:sent]
        wants = bool(worker.out)
        if wants != worker.writing and self._loop is not None:
            if wants:
                self._loop.add_writer(worker.stdin, self._write, worker)
            else:
                self._loop.remove_writer(worker.stdin)
            worker.writing = wants

    def _read(self, worker: _Worker) -> None:
        try:
            chunk = os.read(worker.stdout, 1 << 18)
        except BlockingIOError:
            return
        except OSError as exc:
            self._drop(worker, f"reading: {exc}")
            return
        if not chunk:
            self._drop(worker, "it exited")
            return
        answer = worker.answer
        answer += chunk
        while len(answer) >= 4:
            count = int.from_bytes(answer[:4], "big")
            end = 4 + count * _ROW
            if end > _MAX_ANSWER or not worker.jobs:
                self._drop(worker, "it answered what was not asked")
                return
            if len(answer) < end:
                break
            rows = bytes(answer[4:end])
            del answer[:end]
            worker.jobs.popleft().set_result(
                [(rows[i : i + 32], rows[i + 32 : i + 64], rows[i + 64] == 1)
                 for i in range(0, len(rows), _ROW)])

    def _drop(self, worker: _Worker, why: str | None) -> None:
        if why is not None:
            log.warning("signature-check worker %d dropped: %s", worker.process.pid, why)
        if worker in self._running:
            self._running.remove(worker)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(worker.stdout)
            if worker.writing:
                self._loop.remove_writer(worker.stdin)
        for job in worker.jobs:
            job.set_result([])  # the core checks these ops itself
        worker.jobs.clear()
        for pipe in (worker.process.stdin, worker.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if why is not None:
            worker.process.kill()
        try:
            worker.process.wait(1.0)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()


def serve(stdin: int = 0, stdout: int = 1) -> None:
    """A worker: answer jobs until stdin closes (Ctrl-C is the parent's to act on)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reader = os.fdopen(stdin, "rb", buffering=1 << 18, closefd=False)
    while True:
        size = reader.read(4)
        if len(size) < 4:
            return
        n = int.from_bytes(size, "big")
        if n > MAX_FRAME_BYTES:
            return  # the parent never sends this: stop, and let it drop us
        data = reader.read(n)
        if len(data) < n:
            return
        verdicts = check_frame(data)
        out = bytearray(len(verdicts).to_bytes(4, "big"))
        for oid, key, ok in verdicts:
            out += oid + key + (b"\x01" if ok else b"\x00")
        view = memoryview(out)
        try:
            while view:
                view = view[os.write(stdout, view) :]
        except BrokenPipeError:
            return  # the node stopped (or dropped us) before our answer: nothing to say


if __name__ == "__main__":
    serve()
