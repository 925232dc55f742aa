"""The parts of meshlab (scripts/meshlab.py) that deal with one host's processes: running
commands, entering a host's network namespace from this process, the daemon of a host
and its control API, and conditions over a set of daemons.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scripts.meshlab import Host

PEER_PORT = 7411
CONTROL_PORT = 7412
CLONE_NEWNET = 0x40000000


class LabError(RuntimeError):
    pass


def unavailable() -> str | None:
    """Why a lab cannot be built here, or None when it can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.strip()}"
    return None


def sh(*args: str, input: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def wait_until(condition: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.1) -> Any:
    """Poll until `condition()` is truthy (returning it) or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# -- entering a namespace from this process -------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered(ns: str) -> Iterator[None]:
    """Run the body in network namespace `ns`. setns(2) moves only the calling thread,
    and a socket stays in the namespace it was made in, so a socket opened here
    reaches 127.0.0.1 of that host; the thread is moved back afterwards."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


class _NsConnection(http.client.HTTPConnection):
    def __init__(self, ns: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.ns = ns

    def connect(self) -> None:
        with entered(self.ns):
            self.sock = socket.create_connection((self.host, self.port), self.timeout)


def terminate(procs: list[subprocess.Popen[Any]], grace: float) -> None:
    live = [p for p in procs if p.poll() is None]
    for p in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in live:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
            p.wait()



class Daemon:
    """`liberation-node run` inside a host's namespace; its log in the lab's workdir."""

    def __init__(self, host: Host, *, network: str, bootstrap: list[str], mdns: bool,
                 extra: list[str]) -> None:
        self.host = host
        self.network = network
        self.bootstrap = bootstrap
        self.mdns = mdns
        self.extra = extra
        self.data_dir = host.lab.workdir / host.name
        self.log_path = host.lab.workdir / f"{host.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_from = 0
        self.launched_at = 0.0

    @property
    def url(self) -> str:
        """This node's signaling URL, for another's --bootstrap."""
        return f"http://{self.host.address}:{PEER_PORT}/v1/signal"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self) -> None:
        args = [self.host.lab.python, "-m", "liberation_node", "run",
                "--data-dir", str(self.data_dir), "--network", self.network,
                "--name", self.host.name, "--peer-port", str(PEER_PORT),
                "--control-port", str(CONTROL_PORT), "--ice-address", self.host.address]
        if not self.mdns:
            args.append("--no-mdns")
        for url in self.bootstrap:
            args += ["--bootstrap", url]
        args += self.extra
        self._log_from = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.launched_at = time.monotonic()
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.host.ns, *args], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def log(self) -> list[str]:
        """The lines this run of the daemon has logged so far."""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_from)
            return f.read().decode(errors="replace").splitlines()

    def wait_for_log(self, match: Callable[[str], bool], timeout: float, what: str) -> str:
        def found() -> str | None:
            if not self.running:
                raise LabError(f"{self.host.name} exited {self.proc and self.proc.poll()}:\n"
                               + "\n".join(self.log()[-30:]))
            return next((line for line in self.log() if match(line)), None)
        try:
            line: str = wait_until(found, timeout, f"{self.host.name}: {what}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; log:\n" + "\n".join(self.log()[-30:])) from None
        return line

    def wait_up(self, timeout: float = 30.0) -> None:
        self.wait_for_log(lambda line: " up on network " in line, timeout, "to be up")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None,
            timeout: float = 10.0) -> Any:
        """A request to the control API (127.0.0.1 inside the host), with its token."""
        token = (self.data_dir / "control.token").read_text().strip()
        conn = _NsConnection(self.host.ns, "127.0.0.1", CONTROL_PORT, timeout)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status >= 300:
            raise LabError(f"{self.host.name} {method} {path}: {resp.status} {data[:200]!r}")
        return json.loads(data)

    def status(self) -> dict[str, Any]:
        return dict(self.api("GET", "/api/v1/status"))

    def post(self, text: str) -> str:
        return str(self.api("POST", "/api/v1/messages", {"text": text})["id"])

    def peer_ids(self) -> set[str]:
        return {p["id"] for p in self.status()["peers"]}

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None:
            terminate([self.proc], grace=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# -- conditions over a set of daemons ----------------------------------------------------------


def connected(daemons: list[Daemon]) -> bool:
    """Every daemon has a peer and the peer graph is one component."""
    statuses = [d.status() for d in daemons]
    ids = {s["node_id"] for s in statuses}
    edges = {s["node_id"]: {p["id"] for p in s["peers"]} & ids for s in statuses}
    if not statuses or any(not e for e in edges.values()):
        return False
    seen, todo = set(), [statuses[0]["node_id"]]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += [n for n in edges[node] if n not in seen]
            todo += [n for n, e in edges.items() if node in e and n not in seen]
    return seen == ids


def converged(daemons: list[Daemon], ops: int | None = None) -> bool:
    statuses = [d.status() for d in daemons]
    return (len({s["digest"] for s in statuses}) == 1
            and (ops is None or all(s["ops"] == ops for s in statuses)))
