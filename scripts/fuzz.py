#!/usr/bin/env python3
"""Fuzz a node with hostile input (issue 9): mutated frames into real sessions of a Mesh
engine, and malformed signaling requests into a live daemon's peer port. Counts how
each was refused; a crash is any exception out of the engine, any 5xx answer, a
traceback in the daemon's log, or the daemon gone.

    .venv/test/bin/python scripts/fuzz.py          # 1,000,000 frames, 10,000 requests
    .venv/test/bin/python scripts/fuzz.py --frames 20000 --requests 300 --seed 7

Frames. A victim engine holds a small replica (ops, records, a fork). Each session
opens with a valid HELLO from a fresh identity, then takes mutated frames until it
closes, and the next session takes over: a frame's verdict is that of a whole session.
Mutations start from valid frames of every type: bit flips, byte insertions,
deletions and repeats, truncation, splices of two frames, random bytes, and frames
re-encoded with random field values (valid shape, wrong meaning: repeated refs, huge
counts, prefixes, other rounds).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from liberation_node.core import frames
from liberation_node.core.bodies import Post, Register
from liberation_node.core.events import PeerDown
from liberation_node.core.frames import Frame
from liberation_node.core.identity import Identity
from liberation_node.core.mesh import Mesh, MeshConfig
from liberation_node.core.ops import create_op
from liberation_node.core.ownfeed import OwnFeedConfig
from liberation_node.core.records import NodeInfo, NodeLinks, create_record
from liberation_node.core.replica import Replica
from liberation_node.core.session import HELLO_DOMAIN
from liberation_node.health import rss_bytes

NETWORK = "fuzz"
T0 = 1_767_225_600_000 + 86_400_000


def _seed_replica(rng: random.Random) -> tuple[Replica, list[bytes], list[bytes]]:
    replica = Replica(NETWORK)
    ops, records = [], []
    for a in range(6):
        who = Identity.from_seed(bytes([a + 1]) * 32)
        prev = None
        for seq in range(1, 6):
            body = Register(f"a{a}") if seq == 1 else Post("social", "x" * rng.randrange(1, 300),
                                                            1, None)
            op = create_op(who, network=NETWORK, seq=seq, prev=prev, timestamp=T0 + seq,
                           body=body)
            replica.add(op)
            ops.append(op.wire)
            prev = op.id
        record = create_record(who, network=NETWORK, version=T0, ttl_ms=3_600_000,
                               body=NodeInfo(f"n{a}", "fuzz", (), (), ()))
        replica.add_record(record)
        records.append(record.wire)
    liar = Identity.from_seed(bytes([99]) * 32)
    one = create_op(liar, network=NETWORK, seq=1, prev=None, timestamp=T0, body=Register("l"))
    replica.add(one)
    for text in ("left", "right"):  # an equivocation: fork proofs to ask for
        replica.add(create_op(liar, network=NETWORK, seq=2, prev=one.id, timestamp=T0 + 1,
                              body=Post("social", text, 1, None)))
    return replica, ops, records


def _valid_frames(rng: random.Random, replica: Replica, ops: list[bytes],
                  records: list[bytes]) -> list[Frame]:
    authors = list(replica.feeds)
    refs = [(o.author, o.seq, o.id) for o in replica.ops.values()]
    me = Identity.from_seed(bytes([7]) * 32)
    links = create_record(me, network=NETWORK, version=T0, ttl_ms=60_000,
                          body=NodeLinks(((authors[0], 3),))).wire
    return [
        frames.Ping(5), frames.Pong(5, T0), frames.Prune(),
        frames.Ops(True, tuple((w, 1) for w in rng.sample(ops, 3))),
        frames.Ops(False, ((ops[0], frames.MAX_HOPS),)),
        frames.IHave(tuple((*r, 2) for r in refs[:5])), frames.Graft(tuple(refs[:3])),
        frames.Records(False, ((records[0], 1), (links, frames.MAX_HOPS))),
        frames.SyncOpen(1, os.urandom(32), 40, os.urandom(8)),
        frames.SyncSame(1), frames.SyncBuckets(1, 2, os.urandom(16)),
        frames.SyncHeads(1, 2, (0, 1), ((authors[0][:8], 3, refs[0][2][:8], ()),),
                         ((authors[1][:8], "node.info", os.urandom(8)),)),
        frames.Want(0, ((authors[0], 1, 5), (authors[1][:8], 0, 2)), (authors[-1],),
                    ((authors[2], "node.info"),)),
        frames.Signal(authors[0], me.public_key, 9, 3, '{"type": "offer", "sdp": "v=0"}'),
        frames.Close("shutdown", "bye"),
    ]


def _mutate(rng: random.Random, corpus: list[bytes], shapes: list[Frame]) -> bytes:
    data = bytearray(rng.choice(corpus))
    how = rng.randrange(10)
    if how == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif how == 1:  # insert bytes
        i = rng.randrange(len(data) + 1)
        data[i:i] = rng.randbytes(rng.randint(1, 8))
    elif how == 2:  # delete bytes
        i = rng.randrange(len(data))
        del data[i:i + rng.randint(1, 8)]
    elif how == 3:  # truncate
        del data[rng.randrange(len(data)):]
    elif how == 4:  # splice two frames
        other = rng.choice(corpus)
        data = data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]
    elif how == 5:  # random bytes
        data = bytearray(rng.randbytes(rng.randint(0, 64)))
    elif how == 6:  # a header byte replaced by any other
        data[rng.randrange(min(len(data), 4))] = rng.randrange(256)
    elif how == 7:  # repeat a slice
        i = rng.randrange(len(data))
        data[i:i] = data[i:i + rng.randint(1, 32)] * rng.randint(2, 50)
    elif how == 8:  # deep nesting
        data = bytearray(b"\x91" * rng.randint(1, 3000) + b"\xc0")
    else:  # valid shape, hostile meaning: the same thing named over and over, big numbers
        return _hostile_shape(rng, rng.choice(shapes))
    return bytes(data[:frames.MAX_FRAME_BYTES + 16])


def _hostile_shape(rng: random.Random, frame: Frame) -> bytes:
    raw: list[Any] = msgpack.unpackb(frames.encode(frame), raw=False)
    for i in range(1, len(raw)):
        value = raw[i]
        pick = rng.randrange(5)
        if isinstance(value, list) and value and pick < 3:
            raw[i] = [value[0]] * rng.randint(2, 1500)  # repeated refs
        elif isinstance(value, int) and not isinstance(value, bool) and pick == 3:
            raw[i] = rng.choice([0, 1, 2**16, 2**53 - 1, 2**53, 2**64 - 1, -1])
        elif isinstance(value, bytes) and pick == 4:
            raw[i] = rng.randbytes(rng.choice([0, 7, 8, 31, 32, 33, 64]))
    data = msgpack.packb(raw, use_bin_type=True)
    return bytes(data)


def fuzz_frames(count: int, seed: int) -> dict[str, Any]:
    """Feed `count` mutated frames into sessions of one Mesh; count the verdicts."""
    rng = random.Random(seed)
    replica, ops, records = _seed_replica(rng)
    mesh = Mesh(Identity.from_seed(bytes([1]) * 32), replica,
                MeshConfig(own_feed=OwnFeedConfig(check=False)), rng.randbytes, T0)
    shapes = _valid_frames(rng, replica, ops, records)
    corpus = [frames.encode(f) for f in shapes]
    verdicts: collections.Counter[str] = collections.Counter()
    crashes: list[str] = []
    now = T0
    conn = 0
    open_conn: int | None = None
    rss_start = rss_bytes()
    started = time.monotonic()
    sent = 0
    while sent < count:
        if open_conn is None:
            conn += 1
            binding = rng.randbytes(32)
            who = Identity.from_seed(rng.randbytes(32))
            mesh.connection_made(conn, binding, now, initiator=bool(conn % 2))
            hello = frames.Hello(1, NETWORK, who.public_key, who.sign(HELLO_DOMAIN + binding),
                                 "fuzz")
            mesh.data_received(conn, frames.encode(hello), now)
            open_conn = conn
        data = _mutate(rng, corpus, shapes)
        now += rng.randint(0, 3)
        try:
            mesh.data_received(open_conn, data, now)
            mesh.datagrams_to_send(now)
            if now >= (mesh.get_timer() or now + 1):
                mesh.handle_timer(now)
        except Exception as exc:  # a crash: the engine must refuse, never raise
            crashes.append(f"{type(exc).__name__}: {exc} on {data[:40].hex()}")
            open_conn = None
        sent += 1
        closed = False
        while (event := mesh.next_event()) is not None:
            if isinstance(event, PeerDown) and event.conn == open_conn:
                verdicts["closed by the peer's CLOSE" if event.by_peer
                         else f"closed: {event.reason}"] += 1
                closed = True
        if closed:
            open_conn = None
        else:
            verdicts["taken (session open)"] += 1
    return {"frames": sent, "sessions": conn, "crashes": len(crashes),
            "crash_examples": crashes[:5], "verdicts": dict(verdicts.most_common()),
            "refused_inputs": dict(sorted(mesh.rejected.items())),
            "penalties": dict(sorted(mesh.scores.penalties.items())),
            "rss_start_mb": round(rss_start / 2**20, 1),
            "rss_end_mb": round(rss_bytes() / 2**20, 1),
            "seconds": round(time.monotonic() - started, 1)}


# -- the peer port ------------------------------------------------------------------------

def _requests(rng: random.Random, offer_sdp: str) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(method, path, headers, body) of malformed or hostile signaling requests."""
    good = {"network": "e2e", "from": "ln" + "a" * 55, "offer": {"type": "offer",
                                                                "sdp": offer_sdp}}
    json_h = {"Content-Type": "application/json"}
    kinds: list[tuple[str, str, dict[str, str], bytes]] = []
    for _ in range(200):
        sdp = bytearray(offer_sdp.encode())
        for _ in range(rng.randint(1, 6)):
            sdp[rng.randrange(len(sdp))] = rng.randrange(32, 127)
        body = dict(good, offer={"type": "offer", "sdp": sdp.decode("latin-1")})
        kinds.append(("POST", "/v1/signal", json_h, json.dumps(body).encode()))
    for _ in range(100):
        kinds.append(("POST", "/v1/signal", json_h, rng.randbytes(rng.randint(0, 300))))
    kinds += [
        ("POST", "/v1/signal", json_h, b"[" * 50_000),
        ("POST", "/v1/signal", json_h, b'{"network": 5}'),
        ("POST", "/v1/signal", json_h, json.dumps(dict(good, offer="x")).encode()),
        ("POST", "/v1/signal", json_h, json.dumps(dict(good, offer={"type": "answer",
                                                                     "sdp": "v=0"})).encode()),
        ("POST", "/v1/signal", {"Content-Type": "text/plain"}, json.dumps(good).encode()),
        ("POST", "/v1/signal", json_h, b"x" * 70_000),
        ("POST", "/v1/signal", {**json_h, "Origin": "https://evil.example"}, b"{}"),
        ("GET", "/v1/signal", {}, b""), ("DELETE", "/v1/info", {}, b""),
        ("GET", "/v1/../../etc/passwd", {}, b""), ("GET", "/" + "a" * 9000, {}, b""),
        ("OPTIONS", "/v1/signal", {"Origin": "null"}, b""),
        ("POST", "/v1/signal", {**json_h, "X-Big": "b" * 9000}, b"{}"),
    ]
    return kinds


def fuzz_requests(count: int, seed: int) -> dict[str, Any]:
    """Send `count` malformed signaling requests to a live daemon's peer port."""
    from tests.daemon.harness import Daemon

    rng = random.Random(seed)
    statuses: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(Path(tmp) / "victim", name="victim").start(timeout=40)
        try:
            offer = _an_offer()
            kinds = _requests(rng, offer)
            base = daemon.peer_url.rsplit("/v1/signal", 1)[0]
            pid = daemon.proc.pid if daemon.proc else 0
            rss_start = _rss(pid)
            started = time.monotonic()
            for i in range(count):
                method, path, headers, body = rng.choice(kinds)
                source = f"127.0.1.{2 + i % 200}"
                statuses[_send(base, method, path, headers, body, source)] += 1
            alive = daemon.proc is not None and daemon.proc.poll() is None
            rss_end = _rss(pid)
            metrics = daemon.api("GET", "/api/v1/status") and _metrics(daemon)
            tracebacks = sum("Traceback" in line for line in daemon.read_log())
            five = sum(n for s, n in statuses.items() if s.startswith("5") and s != "503")
            return {"requests": count, "statuses": dict(statuses.most_common()),
                    "crashes": int(not alive) + five + tracebacks, "alive": alive,
                    "tracebacks_in_log": tracebacks, "rss_start_mb": round(rss_start / 2**20, 1),
                    "rss_end_mb": round(rss_end / 2**20, 1), "refused_by_metrics": metrics,
                    "seconds": round(time.monotonic() - started, 1)}
        finally:
            daemon.kill()


def _an_offer() -> str:
    """A genuine offer made by aiortc (its dial abandoned)."""
    import asyncio

    from liberation_node.transport import TransportConfig, WebRtcTransport

    async def make() -> str:
        transport = WebRtcTransport(TransportConfig(ice_addresses=("127.0.0.1",)),
                                    lambda link: None, lambda link, data: None,
                                    lambda link: None)
        captured: dict[str, str] = {}

        async def capture(offer: dict[str, str]) -> dict[str, str]:
            captured.update(offer)
            raise LookupError("not dialing")

        with contextlib.suppress(Exception):
            await transport.dial(capture)
        await transport.close()
        return captured["sdp"]

    return asyncio.run(make())


def _send(base: str, method: str, path: str, headers: dict[str, str], body: bytes,
          source: str) -> str:
    import http.client

    host, port = base.split("//")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=15, source_address=(source, 0))
    try:
        conn.request(method, path, body=body or None, headers=headers)
        return str(conn.getresponse().status)
    except (OSError, http.client.HTTPException) as exc:
        return f"no answer ({type(exc).__name__})"
    finally:
        conn.close()


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(next(x for x in f if x.startswith("VmRSS:")).split()[1]) * 1024
    except (OSError, StopIteration):
        return 0


def _metrics(daemon: Any) -> dict[str, float]:
    request = urllib.request.Request(daemon.run["control_url"] + "/metrics",
                                     headers={"Authorization": f"Bearer {daemon.token}"})
    with urllib.request.urlopen(request) as reply:
        text = reply.read().decode()
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.startswith(("liberation_http_refused", "liberation_http_malformed"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    failed = False
    if args.frames:
        result = fuzz_frames(args.frames, args.seed)
        print(json.dumps({"fuzz": "frames", **result}, indent=1), flush=True)
        failed |= result["crashes"] > 0
    if args.requests:
        result = fuzz_requests(args.requests, args.seed)
        print(json.dumps({"fuzz": "requests", **result}, indent=1), flush=True)
        failed |= result["crashes"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
