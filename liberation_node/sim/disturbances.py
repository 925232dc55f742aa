"""What happens to the simulated nodes from outside (DESIGN §6): users' writes (the
workload), partitions and their healing, broken connections, crashes and restarts,
byzantine nodes' acts, and the end of the safety phase, when every fault stops and
the liveness phase begins. Each draws from its own RNG stream (world.py).

A mixin of `World` (world.py), which owns every attribute named below.
"""

from __future__ import annotations

import functools
import random
from typing import TYPE_CHECKING

from ..core.errors import LocalError, NotWritable
from .workload import choose_body

if TYPE_CHECKING:
    from .byzantine import Adversary
    from .checkers import Checker
    from .clock import Clock, EventQueue
    from .metrics import Metrics
    from .network import Network
    from .node import SimNode
    from .options import SimConfig


class Disturbances:
    """Writes and faults, scheduled by `World._schedule`."""

    # Owned and set by World (world.py).
    config: SimConfig
    clock: Clock
    queue: EventQueue
    network: Network
    nodes: list[SimNode]
    checker: Checker
    metrics: Metrics
    adversary: Adversary
    in_safety: bool
    safety_end: int
    last_disturbance: int
    delivery_at_heal: float
    _work_rng: random.Random
    _fault_rng: random.Random

    if TYPE_CHECKING:  # the rest of World, which these call
        def _flush(self, node: SimNode) -> None: ...
        def _start(self, node: SimNode) -> bool: ...

    def _write(self) -> None:
        live = [n for n in self.nodes if n.alive]
        if not live:
            return
        rng = self._work_rng
        node = rng.choice(live)
        assert node.mesh is not None
        now = node.now(self.clock.now)
        body = choose_body(rng, node.replica, node.identity.public_key, now)
        try:
            op = node.mesh.write(body, now)
        except NotWritable:
            self.metrics.count("refused_checking")  # the own-feed check is not done yet
            return
        except LocalError:
            self.metrics.count("refused_byzantine" if node.byzantine else "refused_honest")
            return
        # Published (and counted as written) once committed: see `_commit`.
        self.checker.signed(node.index, op, byzantine=node.byzantine, body=body)
        node.acks.append((node.mesh.ticket, op))
        self.metrics.wrote(node.index, op)
        self.metrics.count("writes")
        self.last_disturbance = self.clock.now
        self._flush(node)

    def _partition(self) -> None:
        nodes = self.config.nodes
        side = self._fault_rng.sample(range(nodes), nodes // 2)
        self.network.partition(side, nodes)
        self.metrics.count("partitions")

    def _heal(self) -> None:
        self.network.heal()
        self.last_disturbance = self.clock.now

    def _break(self) -> None:
        """A random open connection breaks (its association dies)."""
        conns = sorted(self.network.endpoints)
        if not conns or not self.in_safety:
            return
        self.network.abort(self._fault_rng.choice(conns))
        self.metrics.count("breaks")
        self.last_disturbance = self.clock.now

    def _crash(self, downtime: int) -> None:
        candidates = [n for n in self.nodes if n.alive and not n.byzantine]
        if not candidates or not self.in_safety:
            return
        node = self._fault_rng.choice(candidates)
        self.checker.crashing(self.clock.elapsed, node.index, node.replica,
                              node.stored_op_ids(), tuple(node.unstored))
        self.metrics.count("uncommitted_lost", sum(len(e.applied) for e in node.unstored))
        self.network.forget_node(node.index)
        node.crash()
        self.metrics.count("crashes")
        self.queue.push(min(self.clock.now + downtime, self.safety_end),
                        functools.partial(self._restart, node))

    def _restart(self, node: SimNode) -> None:
        if node.alive or not self._start(node):
            return
        self.checker.restarted(self.clock.elapsed, node.index, node.replica)
        self.metrics.count("restarts")
        self.last_disturbance = self.clock.now

    def _byzantine(self, node: SimNode) -> None:
        if not self.in_safety:
            return
        if node.alive:
            kind, out = self.adversary.act(node, node.now(self.clock.now))
            for op in self.adversary.signed:
                self.checker.wrote(self.clock.elapsed, node.index, op, byzantine=True)
                self.metrics.wrote(node.index, op)
            self.adversary.signed.clear()
            if kind:
                self.metrics.count(f"byzantine_{kind}")
                self.last_disturbance = self.clock.now
            for conn, data in out:
                self.network.send(conn, data)
        interval = self.config.faults.byzantine_interval_ms
        self.queue.push(self.clock.now + self._fault_rng.randint(interval // 2, interval * 3 // 2),
                        functools.partial(self._byzantine, node))

    def _end_safety(self) -> None:
        self.in_safety = False
        self.network.heal()
        self.network.quiet()
        for node in self.nodes:
            if not node.alive:
                self._restart(node)
        if self.config.network.faulty:
            self.last_disturbance = self.clock.now
        replicas = [n.replica for n in self.nodes if n.alive]
        self.delivery_at_heal = self.metrics.dissemination(replicas).delivery_ratio
