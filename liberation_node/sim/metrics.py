"""What a run measured: dissemination (delivery, hops, redundancy), traffic, faults.

Hops are tracked by watching OPS frames as the network delivers them: an op is
at hop 0 at its writer, and reaches a node first at (the sender's hop + 1).
Relative message redundancy is per broadcast, `copies delivered / (nodes - 1) - 1`
(0 is a perfect spanning tree; flooding over degree k gives about k - 1),
averaged over the ops written.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from ..core.errors import Rejection
from ..core.ops import Op, header_of, op_id
from ..core.replica import Replica
from .checkers import Registry

_OPS_PREFIX = b"\x93\x04"  # msgpack [4, eager, [...]]: an OPS frame (frames._TABLE)


@dataclass(frozen=True)
class Dissemination:
    delivery_ratio: float  # (op, node) pairs held / all pairs
    last_delivery_hop: int
    mean_hop: float
    rmr: float
    p99_hop: int = 0


class Metrics:
    def __init__(self, nodes: int, registry: Registry) -> None:
        self.nodes = nodes
        self.registry = registry
        self.hops: list[dict[bytes, int]] = [{} for _ in range(nodes)]
        self.copies: dict[bytes, int] = {}  # op id -> OPS deliveries carrying it
        self.counts: dict[str, int] = {}
        self.closes: dict[str, int] = {}
        self.misbehaved: dict[str, int] = {}

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def wrote(self, node: int, op: Op) -> None:
        self.hops[node][op.id] = 0

    def delivered(self, sender: int, receiver: int, data: bytes) -> None:
        """Watch one frame the network delivered. Only observing: a plain msgpack read
        (the receiving node checks the frame for real), anything odd is skipped."""
        if data[:2] != _OPS_PREFIX:
            return
        try:
            entries = msgpack.unpackb(data, use_list=False)[2]
            wires = [e[0] for e in entries if type(e) is tuple and type(e[0]) is bytes]
        except Exception:  # a byzantine node's garbage: not an op delivery
            return
        known = self.registry.ops
        sent, got = self.hops[sender], self.hops[receiver]
        for wire in wires:
            try:
                oid = op_id(header_of(wire))  # a carried form is known by its header
            except Rejection:
                continue
            if oid not in known:
                continue
            self.copies[oid] = self.copies.get(oid, 0) + 1
            if oid not in got:
                hop = sent.get(oid)
                if hop is not None:
                    got[oid] = hop + 1

    def dissemination(self, replicas: list[Replica],
                      authors: set[bytes] | None = None) -> Dissemination:
        """Over the ops that must reach everyone: published (an own write that died with
        its node before its commit never was), not voided by an equivocation, and, with
        `authors`, written by one of them (the nodes expected to converge)."""
        ops = [op for op in self.registry.published.values() if not self.registry.voidable(op)
               and (authors is None or op.author in authors)]
        if not ops or not replicas:
            return Dissemination(1.0, 0, 0.0, 0.0)
        held = sum(1 for r in replicas for op in ops if op.id in r.ops)
        wanted = {op.id for op in ops}
        hops = sorted(h for node in self.hops for oid, h in node.items() if h and oid in wanted)
        rmr = sum(self.copies.get(op.id, 0) / (self.nodes - 1) - 1 for op in ops) / len(ops)
        return Dissemination(
            delivery_ratio=held / (len(ops) * len(replicas)),
            last_delivery_hop=hops[-1] if hops else 0,
            mean_hop=sum(hops) / len(hops) if hops else 0.0,
            rmr=rmr,
            p99_hop=hops[len(hops) * 99 // 100] if hops else 0,
        )
