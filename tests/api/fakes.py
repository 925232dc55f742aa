"""Test doubles for the HTTP surfaces: a NodeControl backed by a real Replica, and a
PeerPortHandler that answers by echoing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from liberation_node.api.peer import SignalRefused
from liberation_node.core.bodies import Body, Claim, Post, Register, Retract, Transfer
from liberation_node.core.errors import NotWritable
from liberation_node.core.identity import Identity
from liberation_node.core.ledger import iso_week
from liberation_node.core.queries import Index, Topology
from liberation_node.core.reading import Reader
from liberation_node.core.referrals import Referral
from liberation_node.core.replica import Replica
from liberation_node.core.views import Views, build_views

NETWORK = "api-test"
NOW = 1_795_000_000_000  # 2026-11-18, ms
ME = Identity.from_seed(bytes(range(32)))
OTHER = Identity.from_seed(bytes(range(1, 33)))


class ReplicaNode:
    """The control port's view of a node: writes go to a real Replica as ME."""

    def __init__(self) -> None:
        self.replica = Replica(NETWORK)
        self.reader = Reader(ME, NETWORK)
        self._index = Index(self.replica, ME.public_key, self.reader)
        self.now = NOW
        self.peer_list: list[dict[str, Any]] = []  # as the node's peers() lists them
        self.rtts: dict[bytes, int | None] = {}  # open sessions, for the topology
        self.queues: list[asyncio.Queue[dict[str, Any] | None]] = []
        self.paused: str | None = None  # why writes are refused (NotWritable), if they are
        self.healthy = True
        self.rejections: dict[str, int] = {}
        self.views_built = 0

    def status(self) -> dict[str, Any]:
        ledger = self.replica.ledger
        return {"node_id": ME.text, "network": NETWORK, "version": "0.1.0",
                "peers": [{"id": p["id"], "conn": i, "rtt_ms": p["rtt_ms"],
                           "address": p["address"]} for i, p in enumerate(self.peer_list)],
                "ops": len(self.replica.ops),
                "records": len(self.replica.records), "pending": len(self.replica.pending),
                "digest": self.replica.digest().hex(),
                "pool_available_cents": ledger.pool_available,
                "humans": sum(1 for a in ledger.accounts.values() if a.registered_at),
                "uptime_s": 12.5}

    def health_report(self) -> dict[str, Any]:
        return {"ok": self.healthy, "checks": {"store": {"ok": True},
                                               "degree": {"ok": self.healthy, "peers": 0}}}

    def peers(self) -> list[dict[str, Any]]:
        return self.peer_list

    def counters(self) -> dict[str, Any]:
        return {"bytes_received": 1234, "bytes_sent": 567, "messages_received": 8,
                "messages_sent": 9, "links_opened": 2, "events_published": 3,
                "events_dropped": 0, "rejections": dict(self.rejections)}

    def index(self) -> Index:
        return self._index

    def topology(self) -> Topology:
        return self._index.topology(self.now, self.rtts)

    def now_ms(self) -> int:
        return self.now

    def views(self) -> Views:
        self.views_built += 1
        return build_views(self.replica, ME.public_key, self.now, self.reader)

    def _write(self, body: Body) -> str:
        if self.paused is not None:
            raise NotWritable(self.paused)
        self.now += 1
        return self.replica.append(ME, body, self.now, os.urandom(32)).applied[0].id.hex()

    async def register(self, name: str) -> str:
        return self._write(Register(name))

    async def post(self, text: str, channel: str, priority: int, to: bytes | None) -> str:
        return self._write(Post(channel, text, priority, to))

    async def claim(self) -> str:
        return self._write(Claim(iso_week(self.now)))

    async def transfer(self, to: bytes, amount_cents: int, memo: str) -> str:
        return self._write(Transfer(to, amount_cents, memo))

    async def retract(self, post_id: bytes) -> str:
        return self._write(Retract(post_id))

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.queues.append(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self.queues.remove(queue)

    def publish(self, event: dict[str, Any] | None) -> None:
        """Send `event` to every subscriber; None ends their streams."""
        for queue in self.queues:
            queue.put_nowait(event)

    async def subscribed(self, count: int = 1) -> None:
        """Wait until `count` streams are being read (a generator subscribes on first read)."""
        for _ in range(1000):
            if len(self.queues) == count:
                return
            await asyncio.sleep(0.001)
        raise AssertionError(f"{len(self.queues)} subscribers, not {count}")


class EchoHandler:
    """Answers every offer on NETWORK with its SDP reversed; refuses when `full`."""

    def __init__(self) -> None:
        self.full = False
        self.named: tuple[Referral, ...] = ()  # the peers a 503 names
        self.calls: list[tuple[str, bytes, dict[str, str], str]] = []
        self.delay = 0.0
        self.gate: asyncio.Event | None = None

    async def signal(self, network: str, from_id: bytes, offer: dict[str, str],
                     remote: str) -> dict[str, str]:
        self.calls.append((network, from_id, offer, remote))
        if network != NETWORK:
            raise SignalRefused(403, f"this node is on network {NETWORK!r}")
        if self.full:
            raise SignalRefused(503, "no room for more peers", self.named)
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        return {"type": "answer", "sdp": offer["sdp"][::-1]}

    def info(self) -> dict[str, Any]:
        return {"node_id": ME.text, "network": NETWORK, "version": "0.1.0", "protocol": 1,
                "urls": ["http://127.0.0.1:1/v1/signal"]}


class Clock:
    """A monotonic clock stepped by hand: `t` seconds."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def error_of(response: aiohttp.ClientResponse, status: int) -> str:
    """The message of a JSON error response, checking its status and shape."""
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"}
    message: str = body["error"]
    return message
