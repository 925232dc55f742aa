"""Safe peer exchange with real daemons (issue 8 item 4, transport.md §7.7): a node record
announcing http://127.0.0.1:… or http://169.254.… is never dialed by a node that does not
use such addresses itself, and is dialed by one that does (the control).

It all runs in a network namespace of its own (tests/netns.py): its loopback, and a
veth pair with both ends inside it (this kernel has no dummy interfaces), one end
holding 10.99.0.1-3 for the nodes and 169.254.7.7. The "traps" are HTTP
servers on the announced loopback and link-local addresses inside the namespace: were the
rule broken, the dials would reach them and nothing else.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..netns import ip, namespace
from .harness import Daemon

TRAP_PORT = 7999
TRAP_PORT_TEXT = f":{TRAP_PORT}/"


class Trap:
    """An HTTP server inside the namespace; every request it gets is a line in `hits`."""

    def __init__(self, inside: list[str], address: str) -> None:
        self.proc = subprocess.Popen(
            [*inside, sys.executable, "-u", "-m", "http.server", str(TRAP_PORT), "--bind",
             address], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        assert "Serving HTTP" in self.proc.stdout.readline()
        self.lines: queue.Queue[str] = queue.Queue()
        self.hits: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # http.server logs each request on stderr
            self.lines.put(line.strip())

    def count(self) -> int:
        while not self.lines.empty():
            self.hits.append(self.lines.get_nowait())
        return len(self.hits)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def lan() -> Iterator[list[str]]:
    with namespace(f"ln-scope-{os.getpid()}") as inside:
        name = inside[-1]
        ip("-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        for address in ("10.99.0.1/24", "10.99.0.2/24", "10.99.0.3/24", "169.254.7.7/16"):
            ip("-n", name, "addr", "add", address, "dev", "v0")
        for device in ("v0", "v1"):
            ip("-n", name, "link", "set", device, "up")
        yield inside


def test_announced_loopback_and_link_local_urls_are_not_dialed(
        tmp_path: Path, lan: list[str]) -> None:
    loopback, link_local = Trap(lan, "127.0.0.1"), Trap(lan, "169.254.7.7")
    daemons: list[Daemon] = []
    try:
        b = Daemon(tmp_path / "b", name="b", prefix=lan, address="10.99.0.1")
        daemons.append(b)
        b.start()
        # h announces the traps as its signaling URLs.
        h = Daemon(tmp_path / "h", name="h", prefix=lan, address="10.99.0.2",
                   bootstrap=[b.peer_url],
                   extra=["--public-url", f"http://127.0.0.1:{TRAP_PORT}/v1/signal",
                          "--public-url", f"http://169.254.7.7:{TRAP_PORT}/v1/signal"])
        daemons.append(h)
        h.start()
        b.wait_for_line(lambda line: "peer up: " in line, 20)
        # b learns h's record (peer exchange) as it arrives, and says at once which of
        # its URLs it will never dial.
        for scope in ("loopback", "link-local"):
            b.wait_for_line(lambda line, s=scope: "not dialing" in line
                            and f"{s} address out of scope" in line, 10)
        h.stop()  # b is alone now: it would redial h at the URLs h's record names
        b.wait_for_line(lambda line: "peer down: " in line, 20)
        # An absence cannot be awaited: watch for several redials' worth at the old
        # pace (backoff from 0.5 s; the old code hit the trap within 2 s).
        time.sleep(6)
        assert (loopback.count(), link_local.count()) == (0, 0), "\n".join(b.read_log())
        assert not any("dialing" in line and TRAP_PORT_TEXT in line for line in b.read_log()
                       if "not dialing" not in line)

        # The control: a node that uses loopback itself does dial the loopback URL
        # (so the traps do see dials when they are made), never the link-local one.
        c = Daemon(tmp_path / "c", name="c", prefix=lan, address="10.99.0.3",
                   bootstrap=[b.peer_url], extra=["--ice-address", "127.0.0.1"])
        daemons.append(c)
        c.start()
        deadline = time.monotonic() + 20
        while not any("POST /v1/signal" in hit for hit in loopback.hits) \
                and time.monotonic() < deadline:
            loopback.count()
            time.sleep(0.1)
        assert any("POST /v1/signal" in hit for hit in loopback.hits), "\n".join(c.read_log())
        c.wait_for_line(lambda line: "not dialing" in line and "link-local" in line, 10)
        assert link_local.count() == 0
    finally:
        for d in daemons:
            d.kill()
        loopback.close()
        link_local.close()

