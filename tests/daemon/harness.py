"""Real daemons in separate processes on 127.0.0.1, for end-to-end tests and benchmarks.

Each `Daemon` is `python -m liberation_node run` with its own data directory,
ephemeral ports and ICE restricted to 127.0.0.1 (no STUN, no mDNS). Readiness
is the daemon's own "up" log line, not a sleep; stop() sends SIGTERM and waits,
kill() sends SIGKILL (always by PID).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

NETWORK = "e2e"


def run_args(data_dir: Path, network: str = NETWORK, name: str = "",
             address: str = "127.0.0.1") -> list[str]:
    """`liberation-node run` on one address (loopback by default): ephemeral ports, ICE
    on that address only, no mDNS."""
    return [sys.executable, "-m", "liberation_node", "run", "--data-dir", str(data_dir),
            "--network", network, "--name", name, "--peer-host", address,
            "--peer-port", "0", "--control-port", "0", "--ice-address", address,
            "--no-mdns"]


class Daemon:
    def __init__(self, data_dir: Path, *, name: str, bootstrap: list[str] | None = None,
                 extra: list[str] | None = None, network: str = NETWORK,
                 env: dict[str, str] | None = None, prefix: list[str] | None = None,
                 root: Path | None = None, address: str = "127.0.0.1",
                 cwd: Path | None = None) -> None:
        """`env` adds to the environment; `prefix` runs the command under another (e.g.
        `ip netns exec NS`, `unshare -m ...`); `root` is where this process sees the data
        directory when the daemon has a mount namespace of its own (e.g. /proc/PID/root);
        `address` is its peer port's and ICE's address; `cwd` its working directory (with
        `env` PYTHONPATH, the way to run another source tree: `-m` looks in it first)."""
        self.data_dir = data_dir
        self.name = name
        self.bootstrap = bootstrap or []
        self.extra = extra or []
        self.network = network
        self.env = env or {}
        self.prefix = prefix or []
        self.root = root
        self.address = address
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.run: dict[str, Any] = {}

    def start(self, timeout: float = 20.0) -> Daemon:
        args = [*self.prefix, *run_args(self.data_dir, self.network, self.name, self.address),
                *self.extra]
        for url in self.bootstrap:
            args += ["--bootstrap", url]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.lines = queue.Queue()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=self.cwd)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        self.wait_for_line(lambda line: " up on network " in line, timeout)
        self.run = json.loads((self.visible_dir / "run.json").read_text())
        return self

    @property
    def visible_dir(self) -> Path:
        """The data directory as this process sees it."""
        if self.root is None:
            return self.data_dir
        assert self.proc is not None
        return Path(str(self.root).replace("PID", str(self.proc.pid))) \
            / self.data_dir.relative_to("/")

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        with proc.stderr:  # closed at EOF, i.e. when the process is gone
            for line in proc.stderr:
                self.lines.put(line.rstrip("\n"))

    def _reaped(self) -> int:
        assert self.proc is not None
        code = self.proc.wait()
        self._reader.join(10)
        return code

    def wait_for_line(self, match: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: no matching log line in {timeout}s; "
                                   f"log so far:\n" + "\n".join(self.log[-40:]))
            try:
                line = self.lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n"
                                       + "\n".join(self.log[-40:])) from None
                continue
            self.log.append(line)
            if match(line):
                return line

    def read_log(self) -> list[str]:
        """Every line logged so far (including those no wait has looked at yet)."""
        while not self.lines.empty():
            self.log.append(self.lines.get_nowait())
        return self.log

    @property
    def peer_url(self) -> str:
        return str(self.run["peer_url"])

    @property
    def token(self) -> str:
        return (self.visible_dir / "control.token").read_text().strip()

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        status, result = self.call(method, path, body)
        if status >= 400:
            raise RuntimeError(f"{self.name}: {method} {path}: HTTP {status} {result}")
        return result

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             timeout: float = 10) -> tuple[int, Any]:
        """(HTTP status, JSON body) of one control API call, errors included."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.run["control_url"] + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read() or b"null")

    def status(self) -> dict[str, Any]:
        return dict(self.api("GET", "/api/v1/status"))

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self._reaped()

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self._reaped()


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.1) -> None:
    """Poll a cross-process condition (a status endpoint) until it holds or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def converged(daemons: list[Daemon], ops: int | None = None) -> bool:
    statuses = [d.status() for d in daemons]
    digests = {s["digest"] for s in statuses}
    return len(digests) == 1 and (ops is None or statuses[0]["ops"] == ops)


def start(daemons: list[Daemon], tmp: Path, name: str, **kw: Any) -> Daemon:
    """Start a daemon named `name` in `tmp / name`, listed in `daemons` for cleanup."""
    d = Daemon(tmp / name, name=name, **kw)
    daemons.append(d)
    return d.start()
