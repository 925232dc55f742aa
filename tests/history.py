"""Build signed op histories for tests: honest writers plus deliberate misbehaviour.

`HistoryBuilder` writes through a private "author's view" replica, so honest ops
come out exactly as a real node would write them; `raw` bypasses the local
prechecks to produce ops a buggy or hostile author could sign (overdrafts,
duplicate claims, forks).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from liberation_node.core.bodies import Body
from liberation_node.core.identity import Identity
from liberation_node.core.ops import Dep, Op, carry, create_op
from liberation_node.core.records import Record, RecordBody, create_record
from liberation_node.core.replica import Replica

NETWORK = "test"
T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z, a Monday


def identity(i: int) -> Identity:
    return Identity.from_seed(bytes([i + 1]) * 32)


@dataclass
class HistoryBuilder:
    network: str = NETWORK
    world: Replica = field(default_factory=lambda: Replica(NETWORK))
    ops: list[Op] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    now: int = T0
    # Each op as its author's node sent it when written: with its content (a post's
    # text), even when a later retraction dropped it from `world`.
    sent: list[bytes] = field(default_factory=list)

    def tick(self, ms: int = 1000) -> int:
        self.now += ms
        return self.now

    def seal(self, who: Identity) -> bytes:
        """Randomness for a direct message, reproducible (what a driver draws)."""
        return hashlib.blake2b(who.public_key + self.now.to_bytes(8, "big"),
                               digest_size=32).digest()

    def write(self, who: Identity, body: Body) -> Op:
        now = self.tick()
        op = self.world.append(who, body, now, self.seal(who)).applied[0]
        self.ops.append(op)
        self.sent.append(self.world.carried(op))
        return op

    def carried(self, op: Op) -> bytes:
        """How the author's node sends `op`: with its content while it holds it."""
        return self.world.carried(op)

    def raw(self, who: Identity, body: Body, *, seq: int | None = None,
            prev: bytes | None = None, deps: tuple[Dep, ...] = (),
            timestamp: int | None = None) -> Op:
        """Sign an op without any local precheck and feed it to the world replica."""
        feed = self.world.feeds.get(who.public_key)
        head = feed.ops[-1] if feed and feed.ops else None
        if seq is None:
            seq = head.seq + 1 if head else 1
            prev = head.id if head else None
        op = create_op(who, network=self.network, seq=seq, prev=prev, deps=deps,
                       timestamp=self.tick() if timestamp is None else timestamp, body=body,
                       seal=self.seal(who))
        self.world.add(op)
        self.ops.append(op)
        self.sent.append(op.wire if op.content is None else carry(op.wire, op.content))
        return op

    def record(self, who: Identity, body: RecordBody, ttl_ms: int = 3_600_000) -> Record:
        rec = create_record(who, network=self.network, version=self.tick(), ttl_ms=ttl_ms,
                            body=body)
        self.world.add_record(rec)
        self.records.append(rec)
        return rec


def replay(wires: Sequence[bytes], records: Sequence[bytes] = (), now: int = T0) -> Replica:
    replica = Replica(NETWORK)
    for wire in wires:
        replica.ingest(wire)
    for wire in records:
        replica.ingest_record(wire, now)
    return replica
