"""One simulated node: an identity, a store that outlives crashes, and, while it
runs, the production `Mesh` over a replica rebuilt from that store.

Writes reach the store as the daemon's writer puts them there: the mesh's
`Changed` batches queue up (`unstored`) and are committed together a little
later (a group commit), then the mesh is told (`Mesh.stored`), which is when
own writes are acknowledged and published. Crashing drops the Mesh, the
replica and whatever was not committed yet (everything in memory); restarting
rebuilds the replica with `open_replica`, exactly as the daemon does on start,
and makes a new Mesh. The store is a `MemoryStore`, whose coroutines never wait
on anything, so the simulator drives them to completion in place (`run_sync`)
instead of running an event loop.

While it runs, a node also has the production connection manager
(core/connections.py over core/peering.py): it starts knowing its bootstrap
entries, learns the others from presence records (peer exchange) and decides
whom to dial and whom to drop; the world carries out the dials.

Each node has its own clock: the world's time plus a fixed `skew_ms`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..core.candidates import Source
from ..core.connections import Connections
from ..core.contents import Retention, RetentionConfig
from ..core.events import Changed
from ..core.identity import Identity
from ..core.mesh import Mesh, MeshConfig
from ..core.ops import Op, op_id
from ..core.peering import Peering, PeeringConfig
from ..core.reading import Reader
from ..core.replica import Replica
from ..store.base import Store
from ..store.loader import apply_retention, open_replica

T = TypeVar("T")

ReplicaHook = Callable[[int, Replica], None]  # (node index, fresh replica): test injection


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the in-memory store's) to its result."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise RuntimeError("a store call waited on I/O; the simulator needs a store that never does")


class SimNode:
    def __init__(self, index: int, identity: Identity, store: Store, rng: random.Random,
                 mesh_config: MeshConfig, network: str, *, byzantine: bool,
                 skew_ms: int = 0, retain_bytes: int | None = None,
                 peering: PeeringConfig | None = None,
                 bootstrap: tuple[tuple[bytes, str], ...] = ()) -> None:
        self.index = index
        self.identity = identity
        self.store = store
        self.rng = rng  # the node's entropy: session nonces, sync salts, jitter
        self.mesh_config = mesh_config
        self.network = network
        self.byzantine = byzantine
        self.mesh: Mesh | None = None
        self.timer_at: int | None = None  # when the armed timer fires; None: none armed
        self.starts = 0
        self.skew_ms = skew_ms
        self.unstored: list[Changed] = []  # batches the next group commit writes
        self.commit_due = False
        self.acks: list[tuple[int, Op]] = []  # (ticket, own write) awaiting the commit
        self.retain_bytes = retain_bytes
        self.peering_config = peering or PeeringConfig()
        self.bootstrap = bootstrap  # (node id, URL) the node starts knowing
        self.connections: Connections | None = None
        # Connections being set up, dialed or answered, with no link yet (what the
        # daemon's `transport.connecting` counts): key -> when the attempt times out.
        self.connecting: dict[tuple[str, int | str], int] = {}
        run_sync(store.open())

    @property
    def alive(self) -> bool:
        return self.mesh is not None

    @property
    def replica(self) -> Replica:
        assert self.mesh is not None, f"node {self.index} is down"
        return self.mesh.replica

    def attempts(self, world_ms: int) -> int:
        """Connections being set up (`connecting`) that have not timed out."""
        for key in [k for k, until in self.connecting.items() if until <= world_ms]:
            del self.connecting[key]
        return len(self.connecting)

    def now(self, world_ms: int) -> int:
        """What this node's clock reads when the world's reads `world_ms`."""
        return world_ms + self.skew_ms

    def start(self, world_ms: int, hook: ReplicaHook | None = None, *,
              check_own: bool = False) -> Mesh:
        """Start from the store; `check_own`: check the own feed with peers before
        writing (sync.md §10.2), as a daemon does unless it just made its identity."""
        now = self.now(world_ms)
        replica = run_sync(open_replica(self.store, self.network, now=now))
        if self.retain_bytes is not None:  # as the daemon does on start (node.py)
            policy = Retention(RetentionConfig(), self.identity.public_key,
                               Reader(self.identity, self.network).opens)
            policy.max_bytes = self.retain_bytes
            run_sync(apply_retention(self.store, replica, policy, now))
        if hook is not None:
            hook(self.index, replica)
        config = dataclasses.replace(
            self.mesh_config, own_feed=dataclasses.replace(self.mesh_config.own_feed,
                                                           check=check_own))
        self.mesh = Mesh(self.identity, replica, config, self.rng.randbytes, now)
        # The mesh's scores, as the daemon passes them (node.py): a simulated dialer
        # sees its own bans and low scores (transport.md §7.3).
        peering = Peering(self.identity.public_key, self.peering_config, rand=self.rng.random,
                          scores=self.mesh.scores)
        for node_id, url in self.bootstrap:
            peering.learn(node_id, [url], Source.BOOTSTRAP, now)
        self.connections = Connections(self.mesh, peering)
        self.connections.learn_records(replica.records.values(), now)
        self.connecting = {}
        self.timer_at = None
        self.starts += 1
        return self.mesh

    def crash(self) -> None:
        self.mesh = None
        self.connections = None  # the connection manager's memory dies with the process
        self.connecting = {}
        self.timer_at = None
        self.unstored = []  # never committed: gone with the process
        self.commit_due = False
        self.acks = []

    def persist(self, changed: Changed) -> None:
        """Write one `Changed` event to the store, as the daemon does (one batch)."""
        run_sync(self.store.write(changed.applied, changed.excluded, changed.records,
                                  changed.dropped_records, contents=changed.contents))

    def commit(self) -> tuple[list[Changed], list[Op], int]:
        """The group commit: store every queued batch; returns the batches, the own
        writes acknowledged by it and the highest ticket it committed, for the mesh.
        The highest, not the last batch's: a batch of records only carries ticket 0
        (events.py), and one queued after an own write's batch held that write, unsent,
        until a later commit ended with an op (seed 718 of the sweep: for good). The
        daemon's writer merges batches with the highest ticket (writer.py)."""
        batches, self.unstored, self.commit_due = self.unstored, [], False
        for changed in batches:
            self.persist(changed)
        last = max((changed.ticket for changed in batches), default=0)
        acked: list[Op] = []
        if batches and self.mesh is not None:
            acked = [op for ticket, op in self.acks if ticket <= last]
            self.acks = [(t, op) for t, op in self.acks if t > last]
        return batches, acked, last

    def stored_op_ids(self) -> list[bytes]:
        return [op_id(w) for w in run_sync(self.store.load_ops())]
