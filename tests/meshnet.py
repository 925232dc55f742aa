"""A minimal, lossless, zero-latency driver for Mesh engines, for unit tests.

The simulator (liberation_node/sim) is the full model with latency and faults;
this one only wires engines together so tests can check protocol behaviour
step by step. `drop` lets a test lose chosen frames.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from liberation_node.core import frames
from liberation_node.core.events import Event
from liberation_node.core.frames import Frame
from liberation_node.core.identity import Identity
from liberation_node.core.mesh import Mesh, MeshConfig
from liberation_node.core.ownfeed import OwnFeedConfig
from liberation_node.core.replica import Replica

from .history import NETWORK, T0

Drop = Callable[[int, int, Frame], bool]  # (from node, to node, frame) -> lose it?


@dataclass
class Net:
    meshes: list[Mesh]
    now: int = T0
    links: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    events: list[list[Event]] = field(default_factory=list)
    sent: list[tuple[int, int, Frame, int]] = field(default_factory=list)  # from, to, frame, bytes
    drop: Drop | None = None
    auto_commit: bool = True  # False: a test calls `mesh.stored` itself
    _next_conn: int = 0

    @classmethod
    def of(cls, identities: list[Identity], config: MeshConfig | None = None,
           replicas: list[Replica] | None = None, seed: int = 1,
           check_own: bool = False) -> Net:
        """Meshes for `identities`; `check_own` makes them check their own feeds with
        peers before writing, as a node that did not just create its identity does."""
        rnd = random.Random(seed)
        config = dataclasses.replace(config or MeshConfig(),
                                     own_feed=OwnFeedConfig(check=check_own))
        meshes = [Mesh(who, replicas[i] if replicas else Replica(NETWORK), config,
                       rnd.randbytes, T0)
                  for i, who in enumerate(identities)]
        return cls(meshes, events=[[] for _ in meshes])

    def connect(self, a: int, b: int, binding: bytes | None = None,
                binding_b: bytes | None = None) -> tuple[int, int]:
        self._next_conn += 2
        ca, cb = self._next_conn, self._next_conn + 1
        self.links[(a, ca)] = (b, cb)
        self.links[(b, cb)] = (a, ca)
        value = binding or bytes([a, b]) * 8
        self.meshes[a].connection_made(ca, value, self.now, initiator=True)
        self.meshes[b].connection_made(cb, binding_b or value, self.now, initiator=False)
        self.pump()
        return ca, cb

    def pump(self, limit: int = 100_000) -> int:
        """Deliver frames until nothing is in flight; returns frames delivered."""
        delivered = 0
        while delivered < limit:
            moved = False
            for n, mesh in enumerate(self.meshes):
                self._commit(n)
                for conn, data in mesh.datagrams_to_send(self.now):
                    target = self.links.get((n, conn))
                    if target is None:
                        continue
                    frame = frames.decode(data)
                    self.sent.append((n, target[0], frame, len(data)))
                    if self.drop is not None and self.drop(n, target[0], frame):
                        continue
                    self.meshes[target[0]].data_received(target[1], data, self.now)
                    delivered += 1
                    moved = True
                self._commit(n)
            if not moved:
                return delivered
        raise AssertionError("frames kept flowing: a loop?")

    def _commit(self, n: int) -> None:
        """Drain node n's events; its store commits every change at once."""
        mesh = self.meshes[n]
        while (event := mesh.next_event()) is not None:
            self.events[n].append(event)
        if self.auto_commit:
            mesh.stored(mesh.ticket, self.now)

    def advance(self, ms: int) -> None:
        """Move time forward, firing timers in order and delivering what they send."""
        end = self.now + ms
        while True:
            due = [t for t in (m.get_timer() for m in self.meshes) if t is not None]
            nxt = min(due, default=end + 1)
            if nxt > end:
                break
            self.now = max(self.now, nxt)
            for mesh in self.meshes:
                timer = mesh.get_timer()
                if timer is not None and timer <= self.now:
                    mesh.handle_timer(self.now)
            self.pump()
        self.now = end
        self.pump()

    def lose(self, a: int, b: int) -> None:
        """The transport between a and b breaks (both ends learn it)."""
        for (n, conn), (m, _) in list(self.links.items()):
            if {n, m} == {a, b}:
                self.meshes[n].connection_lost(conn, self.now)
                del self.links[(n, conn)]
        self.pump()
