"""Hostile peers against real daemons over real WebRTC and real HTTP (issue 9): while
one attacks, the victim's memory and event-loop lag stay bounded, and an honest peer
stays connected and keeps syncing. Each test is one finding of the issue; on the code
before the fix each fails (scripts/attack.py measures both)."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp

from liberation_node.api.peer import SignalError, send_offer
from liberation_node.core import frames
from liberation_node.core.bodies import Post, Register
from liberation_node.core.frames import Graft, Signal, SyncOpen, Want
from liberation_node.core.identity import Identity, id_to_text
from liberation_node.core.ops import Op, create_op
from liberation_node.core.records import NodeInfo, create_record

from .harness import NETWORK, Daemon, converged, start
from .hostile import Hostile, now_ms, sink_offers
from .hostile import ops as ops_frame
from .hostile import records as records_frame

MiB = 2**20


def rss(d: Daemon) -> int:
    assert d.proc is not None
    with open(f"/proc/{d.proc.pid}/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def loop_lag_ms(d: Daemon) -> float:
    """The worst event-loop lag the node saw over its last health interval."""
    return float(d.call("GET", "/api/v1/health")[1]["checks"]["loop"]["lag_ms"])


def metric(d: Daemon, name: str) -> float:
    """The value of one sample of the victim's /metrics (0 when absent)."""
    request = urllib.request.Request(d.run["control_url"] + "/metrics",
                                     headers={"Authorization": f"Bearer {d.token}"})
    with urllib.request.urlopen(request) as reply:
        text = reply.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a blocking check (HTTP to a daemon) without blocking the loop WebRTC runs on."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


def peer_ids(d: Daemon) -> set[str]:
    return {p["id"] for p in d.status()["peers"]}


class Victim:
    """A victim daemon and an honest peer of it, which writes while the victim is attacked
    and must keep its session and see its writes arrive."""

    def __init__(self, tmp_path: Path, daemons: list[Daemon], *extra: str) -> None:
        self.node = start(daemons, tmp_path, "victim",
                          extra=["--health-interval", "1", *extra])
        self.honest = start(daemons, tmp_path, "honest", bootstrap=[self.node.peer_url])
        self.honest_id = self.honest.status()["node_id"]
        self.written = 0
        self.lag = 0.0

    async def ready(self) -> None:
        await until(lambda: self.honest_id in peer_ids(self.node), 30, "the honest peer")

    async def honest_writes(self, stop: asyncio.Event) -> None:
        """The honest peer writes and the victim's loop lag is watched, until `stop`."""
        while not stop.is_set():
            await asyncio.to_thread(self.honest.api, "POST", "/api/v1/messages",
                                    {"text": f"honest {self.written}"})
            self.written += 1
            self.lag = max(self.lag, await asyncio.to_thread(loop_lag_ms, self.node))
            await asyncio.sleep(0.3)

    async def still_fine(self) -> None:
        """The honest peer is still connected and every write of it arrived."""
        assert self.honest_id in await asyncio.to_thread(peer_ids, self.node)
        await until(lambda: converged([self.node, self.honest]), 30,
                    "the victim to hold the honest peer's writes")


def feed(who: Identity, count: int, size: int, start: int = 1) -> list[Op]:
    ops: list[Op] = []
    now = now_ms() - 60_000
    for seq in range(start, start + count):
        body = Register("h") if seq == 1 else Post("social", "x" * size, 1, None)
        ops.append(create_op(who, network=NETWORK, seq=seq, prev=ops[-1].id if ops else None,
                             timestamp=now + seq, body=body))
    return ops


def big_record(who: Identity) -> bytes:
    rng = random.Random(1)
    frontier = tuple(sorted((rng.randbytes(32), rng.randrange(1, 2**40)) for _ in range(250)))
    return create_record(who, network=NETWORK, version=now_ms(), ttl_ms=600_000,
                         body=NodeInfo("big", "hostile", (), (), frontier)).wire


async def test_repeated_refs_cost_one_answer_and_a_ban(tmp_path: Path,
                                                       daemons: list[Daemon]) -> None:
    """Finding 1: a GRAFT naming one 4 KB op 800 times, a WANT naming one 11 KB record
    1,400 times, a WANT naming one forked author 1,850 times: 60 such frames took a victim
    from 86 MB to 2.5 GB. Now each is answered once, the sender is banned, and the victim
    grows by a few MB."""
    v = Victim(tmp_path, daemons)
    await v.ready()
    x = await Hostile().connect(v.node.peer_url)
    ops = feed(x.identity, 20, 4000)
    twin = create_op(x.identity, network=NETWORK, seq=20, prev=ops[18].id,
                     timestamp=ops[19].timestamp, body=Post("social", "twin", 1, None))
    x.send(ops_frame(o.wire for o in ops[:10]))
    x.send(ops_frame(o.wire for o in ops[10:]))
    x.send(records_frame((big_record(x.identity),)))
    x.send(ops_frame((twin.wire,)))  # an equivocation: now there are fork proofs of x
    await until(lambda: v.node.status()["ops"] >= 20, 20, "the victim to hold x's ops")
    before = rss(v.node)
    stop = asyncio.Event()
    writer = asyncio.create_task(v.honest_writes(stop))
    op = ops[5]
    attack = [Graft(((op.author, op.seq, op.id),) * 800),
              Want(0, (), (), ((x.identity.public_key, "node.info"),) * 1400),
              Want(0, (), (x.identity.public_key,) * 1850, ())] * 20
    await x.send_all(attack)
    await asyncio.sleep(3)
    stop.set()
    await writer
    growth = rss(v.node) - before
    assert growth < 40 * MiB, f"victim RSS grew {growth / MiB:.0f} MiB"
    assert x.bytes_in < 2 * MiB  # the answers: once each, not 60 x 800
    assert x.gone and metric(v.node, "liberation_peer_bans_total") >= 1
    assert v.lag < 1000  # bounded: noise on shared cores aside, near 0
    await v.still_fine()
    await x.close()


async def test_sync_open_floods_cost_little_and_end_in_a_ban(tmp_path: Path,
                                                             daemons: list[Daemon]) -> None:
    """Finding 2: 47-byte SYNC_OPENs at 150/s against 8,000 feeds cost the responder 40 ms
    each: a 2.9 s loop lag, and honest sessions dropped by their heartbeat."""
    v = Victim(tmp_path, daemons)
    await v.ready()
    x = await Hostile().connect(v.node.peer_url)
    now = now_ms() - 60_000
    registers = [create_op(Identity.from_seed(os.urandom(32)), network=NETWORK, seq=1,
                           prev=None, timestamp=now, body=Register("r")).wire
                 for _ in range(8000)]
    await x.send_all(ops_frame(registers[i:i + 100]) for i in range(0, 8000, 100))
    await until(lambda: v.node.status()["authors"] >= 8000, 60, "8,000 feeds at the victim")
    stop = asyncio.Event()
    writer = asyncio.create_task(v.honest_writes(stop))
    floods = [await Hostile().connect(v.node.peer_url) for _ in range(3)]
    for round_ in range(1, 451):  # 150 per second for 3 s, from each of three peers
        for i, h in enumerate([x, *floods]):
            h.send(SyncOpen(round_ * 10 + i, bytes(32), 10, round_.to_bytes(8, "big")))
        await asyncio.sleep(1 / 150)
    await asyncio.sleep(2)
    stop.set()
    await writer
    assert v.lag < 1000, f"loop lag {v.lag} ms"  # it was 2.9 s; noise on shared cores
    assert all(h.gone for h in [x, *floods])
    assert metric(v.node, "liberation_peer_bans_total") >= 4
    await v.still_fine()
    for h in [x, *floods]:
        await h.close()


def test_idle_connections_do_not_take_the_peer_port(tmp_path: Path,
                                                    daemons: list[Daemon]) -> None:
    """Finding 3: idle or half-sent requests were never timed out and there was no cap per
    address; about a thousand of them took every file descriptor of the node."""
    node = start(daemons, tmp_path, "victim")
    host, port = node.peer_url.split("//")[1].split("/")[0].rsplit(":", 1)
    held = []
    for _ in range(300):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"POST /v1/signal HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        held.append(s)
    time.sleep(0.5)
    open_ = 0
    for s in held:
        s.settimeout(0.01)
        try:
            open_ += s.recv(1) != b""
        except TimeoutError:
            open_ += 1  # nothing to read: still open
        except OSError:
            pass
    assert open_ <= 16
    # Another address, the control port and the node's own dials are not affected.
    conn = socket.create_connection((host, int(port)), source_address=("127.0.0.2", 0))
    conn.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert conn.recv(64).startswith(b"HTTP/1.1 200")
    conn.close()
    assert node.status()["node_id"]
    assert metric(node, "liberation_http_refused_connections_total") >= 284
    for s in held:
        s.close()


async def test_offers_whose_ice_never_completes_do_not_keep_others_out(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    """Finding 4: offers whose candidates point at a UDP port that never answers held the
    victim's slots; 3 addresses at 4 offers/s kept an honest node from joining for 45 s."""
    victim = start(daemons, tmp_path, "victim")
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    offers = await sink_offers(6, sink.getsockname()[1])
    stop = asyncio.Event()
    statuses: list[int] = []

    async def attacker(source: str) -> None:
        connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            while not stop.is_set():
                for offer in offers:
                    body = {"network": NETWORK, "from": id_to_text(os.urandom(32)),
                            "offer": offer}
                    async with session.post(victim.peer_url, json=body) as reply:
                        statuses.append(reply.status)
                    await asyncio.sleep(0.25)
                    if stop.is_set():
                        return

    attackers = [asyncio.create_task(attacker(f"127.0.0.{i}")) for i in (2, 3, 4)]
    await asyncio.sleep(3)  # the attack is on: its connections are being set up
    started = time.monotonic()
    honest = await asyncio.to_thread(start, daemons, tmp_path, "honest",
                                     bootstrap=[victim.peer_url])
    honest_id = honest.status()["node_id"]
    await until(lambda: honest_id in peer_ids(victim), 30, "the honest node to join")
    joined = time.monotonic() - started
    stop.set()
    await asyncio.gather(*attackers)
    sink.close()
    assert joined < 15, f"the honest node took {joined:.1f} s to join"
    assert 200 in statuses and 503 in statuses  # answered, then refused per address


async def test_sybils_do_not_push_out_vouched_peers_and_bans_hold(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    """Finding 6: 10 sybil sessions from one host held 7 of 8 slots, since an unknown RTT
    counted as the best; and a peer closed for misbehaving reconnected at once."""
    boot = [start(daemons, tmp_path, f"boot{i}") for i in range(2)]
    victim = start(daemons, tmp_path, "victim", bootstrap=[b.peer_url for b in boot],
                   extra=["--health-interval", "1"])
    boot_ids = {b.status()["node_id"] for b in boot}
    await until(lambda: boot_ids <= peer_ids(victim), 30, "the victim to dial its list")
    # A peer closed for misbehaving is banned: it cannot come straight back.
    liar = await Hostile().connect(victim.peer_url)
    forged = bytearray(feed(Identity.from_seed(os.urandom(32)), 1, 10)[0].wire)
    forged[-1] ^= 1
    await liar.send_all([ops_frame((bytes(forged),))] * 20)
    await liar.wait_for(lambda: liar.gone, 10)
    again = await Hostile(identity=liar.identity).connect(victim.peer_url)
    await again.wait_for(lambda: again.gone, 10)
    assert again.closed_reason == "banned"
    sybils: list[Hostile] = []
    refused = []
    for _ in range(10):
        try:
            sybils.append(await Hostile(answer_pings=False).connect(victim.peer_url))
        except Exception as exc:  # the peer port's 503, however the dial wraps it
            refused.append(str(exc))

    async def keep_alive() -> None:  # anything but a PONG keeps a session: RTT unknown
        while True:
            for s in sybils:
                s.send(frames.Prune())
            await asyncio.sleep(0.5)

    alive = asyncio.create_task(keep_alive())
    # Full of newcomers (transport.md §7.6): more offers are refused, not taken and shed.
    assert len(refused) >= 2 and all("503" in r or "no room" in r for r in refused), refused
    # The refusal names peers to try instead (transport.md §3.3): those it has a URL of.
    try:
        await send_offer(victim.peer_url, NETWORK, Identity.from_seed(os.urandom(32)).public_key,
                         {"type": "offer", "sdp": "v=0"}, timeout=10)
        raise AssertionError("a full node answered an offer")
    except SignalError as exc:
        assert exc.status == 503 and exc.peers, exc
        assert {id_to_text(p.node_id) for p in exc.peers} <= boot_ids
        assert {p.urls[0] for p in exc.peers} <= {b.peer_url for b in boot}
    peers = await asyncio.to_thread(peer_ids, victim)
    assert boot_ids <= peers and len(peers) <= 8  # the vouched peers keep their slots
    # Past the newcomers' grace, a peer that answers PINGs replaces a silent one (§7.5).
    await asyncio.sleep(11)
    honest = await Hostile().connect(victim.peer_url)
    await until(lambda: any(s.closed_reason == "too_many_peers" for s in sybils), 15,
                "a silent sybil to be shed")
    peers = await asyncio.to_thread(peer_ids, victim)
    alive.cancel()
    assert boot_ids <= peers and id_to_text(honest.identity.public_key) in peers
    assert len(peers) <= 8
    for s in [*sybils, honest, liar, again]:
        await s.close()


async def test_signals_for_nobody_are_not_relayed(tmp_path: Path,
                                                  daemons: list[Daemon]) -> None:
    """Finding 7: SIGNAL frames with ttl 8 and 32 KB payloads for an unknown node were
    forwarded to every other peer."""
    v = Victim(tmp_path, daemons)
    await v.ready()
    watcher = await Hostile().connect(v.node.peer_url)  # an honest peer that keeps count
    x = await Hostile().connect(v.node.peer_url)
    before = await asyncio.to_thread(lambda: v.honest.api("GET", "/api/v1/peers"))
    for i in range(19):  # within the 20 a second a session may send
        x.send(Signal(os.urandom(32), os.urandom(32), i, 8, "x" * 32_000))
    await asyncio.sleep(2)
    assert watcher.frames_of(Signal) == []
    after = await asyncio.to_thread(lambda: v.honest.api("GET", "/api/v1/peers"))
    received = {p["id"]: p["bytes_in"] for p in after["peers"]}
    was = {p["id"]: p["bytes_in"] for p in before["peers"]}
    victim_id = v.node.status()["node_id"]
    assert received[victim_id] - was[victim_id] < 100_000  # not 19 x 32 KB
    await v.still_fine()
    for h in (watcher, x):
        await h.close()


async def test_record_spam_from_fresh_identities_costs_little(tmp_path: Path,
                                                              daemons: list[Daemon]) -> None:
    """Finding 5: node.info records from thousands of fresh identities. The records kept
    are capped; and the victim must not pay for them again and again: each one learned as
    a peer candidate used to cost a scan of every candidate on every timer tick (a 2.8 s
    loop lag, the honest peer's writes stalled, for as long as the records lived)."""
    v = Victim(tmp_path, daemons)
    await v.ready()
    wires = [create_record(Identity.from_seed(os.urandom(32)), network=NETWORK,
                           version=now_ms(), ttl_ms=24 * 3_600_000,
                           body=NodeInfo(f"spam{i}", "x", (), (), ())).wire
             for i in range(6000)]
    x = await Hostile().connect(v.node.peer_url)
    stop = asyncio.Event()
    writer = asyncio.create_task(v.honest_writes(stop))
    await x.send_all((records_frame(wires[i:i + 100]) for i in range(0, len(wires), 100)),
                     pause_s=0.05)
    await until(lambda: v.node.status()["records"] >= 4000, 30, "the spam to be taken in")
    await asyncio.sleep(5)  # timer ticks with every record held
    stop.set()
    await writer
    assert v.node.status()["records"] <= 4096  # --max-records, default
    assert v.lag < 1000, f"victim loop lag {v.lag:.0f} ms"
    await v.still_fine()
    await x.close()
