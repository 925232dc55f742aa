"""One simulated node: an identity, a store that outlives crashes, and, while it
runs, the production `Mesh` over a replica rebuilt from that store.

Crashing drops the Mesh and the replica (everything in memory); restarting
rebuilds the replica with `open_replica`, exactly as the daemon does on start,
and makes a new Mesh. The store is a `MemoryStore`, whose coroutines never wait
on anything, so the simulator drives them to completion in place (`run_sync`)
instead of running an event loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..core.events import Changed
from ..core.identity import Identity
from ..core.mesh import Mesh, MeshConfig
from ..core.ops import op_id
from ..core.replica import Replica
from ..store.base import Store
from ..store.loader import open_replica

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
                 mesh_config: MeshConfig, network: str, *, byzantine: bool) -> None:
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
        run_sync(store.open())

    @property
    def alive(self) -> bool:
        return self.mesh is not None

    @property
    def replica(self) -> Replica:
        assert self.mesh is not None, f"node {self.index} is down"
        return self.mesh.replica

    def start(self, now: int, hook: ReplicaHook | None = None) -> Mesh:
        replica = run_sync(open_replica(self.store, self.network, now=now))
        if hook is not None:
            hook(self.index, replica)
        self.mesh = Mesh(self.identity, replica, self.mesh_config, self.rng.randbytes, now)
        self.timer_at = None
        self.starts += 1
        return self.mesh

    def crash(self) -> None:
        self.mesh = None
        self.timer_at = None

    def persist(self, changed: Changed) -> None:
        """Write one `Changed` event to the store, as the daemon does (one batch)."""
        run_sync(self.store.write(changed.applied, changed.excluded, changed.records,
                                  changed.dropped_records))

    def stored_op_ids(self) -> list[bytes]:
        return [op_id(w) for w in run_sync(self.store.load_ops())]
