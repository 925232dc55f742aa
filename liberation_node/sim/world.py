"""The world: N real nodes on a virtual clock, a seeded faulty network, and the
phases of a run (DESIGN §6; the shape of TigerBeetle's VOPR).

    boot      every node starts from its (empty) store; dialers dial their edges
    safety    users write ops; partitions, crashes, loss, duplication,
              reordering and byzantine injections happen; checkers watch
    liveness  at `duration_ms` every fault stops: partitions heal, crashed nodes
              restart, the network only delays; all replicas must reach the
              same digest within `liveness_ms`

Everything happens as actions on one event queue. Each concern draws from its
own RNG stream split off the seed, so a change in one (say, how many frames
the network sees) does not reshuffle the others (who writes what, when
crashes hit). The driver loop is the one in core/mesh.py's docstring: input,
then `datagrams_to_send`, then drain `next_event`, then re-arm the timer.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import LocalError, NotWritable
from ..core.events import (
    Banned,
    Changed,
    ConnId,
    Event,
    ForkFound,
    Misbehaved,
    PeerDown,
    PeerUp,
    SyncFinished,
    WritesOpened,
)
from ..core.identity import Identity
from ..core.mesh import MeshConfig
from ..store.base import Store, StoreError
from ..store.memory import MemoryStore
from . import topology
from .byzantine import Adversary
from .checkers import Checker, Registry, Violations
from .clock import Clock, EventQueue
from .connmgr import ConnectionManager
from .metrics import Metrics
from .network import Endpoint, Network
from .node import ReplicaHook, SimNode, run_sync
from .options import SimConfig
from .report import SimResult, command_line
from .sigcache import memoized_verify
from .workload import choose_body

DRAIN_MS = 5  # how soon a transport with bulk data queued asks the mesh for more
Progress = Callable[[int, int], None]  # (virtual ms done, virtual ms at most)


@dataclass(frozen=True)
class Hooks:
    """Test injection: what a run builds for a node, replaced (core stays untouched)."""

    replica: ReplicaHook | None = None  # called with every replica a node (re)builds
    store: Callable[[int], Store] | None = None  # the store of node i


class World:
    def __init__(self, config: SimConfig, hooks: Hooks | None = None) -> None:
        config.check()
        self.config = config
        self.hooks = hooks or Hooks()
        seed = random.Random(config.seed)
        streams = [random.Random(seed.getrandbits(64)) for _ in range(6)]
        topo_rng, net_rng, conn_rng, self._work_rng, self._fault_rng, byz_rng = streams
        self.clock = Clock(config.epoch_ms)
        self.queue = EventQueue()
        self.violations = Violations()
        self.registry = Registry()
        self.checker = Checker(self.registry, self.violations)
        self.metrics = Metrics(config.nodes, self.registry)
        mesh_config = MeshConfig(record_refresh_ms=config.presence_refresh_ms,
                                 record_ttl_ms=config.record_ttl_ms)
        byzantine = set(self._fault_rng.sample(range(config.nodes), config.faults.byzantine))
        skew = config.faults.clock_skew_ms  # each clock is off by 0..skew: pairs differ by <= it
        skews = [self._fault_rng.randint(0, skew) if skew else 0 for _ in range(config.nodes)]
        make_store = self.hooks.store or (lambda i: MemoryStore())
        self.nodes = [
            SimNode(i, Identity.from_seed(seed.randbytes(32)), make_store(i),
                    random.Random(seed.getrandbits(64)), mesh_config, config.network_name,
                    byzantine=i in byzantine, skew_ms=skews[i],
                    retain_bytes=config.retain_bytes)
            for i in range(config.nodes)]
        self.edges = topology.build(config.nodes, config.degree, topo_rng)
        self.expected = _reachable_honest(config.nodes, self.edges, byzantine)
        self.network = Network(config.network, net_rng, self.clock, self.queue,
                               self._on_frame, self._on_closed)
        self.connmgr = ConnectionManager(
            self.edges, conn_rng, self.clock, self.queue,
            alive=lambda i: self.nodes[i].alive, reachable=lambda a, b: not self.network.cut(a, b),
            signaling_delay=self.network.signaling_delay, connect=self._connect)
        self.adversary = Adversary(byz_rng, config.network_name)
        self.safety_end = self.clock.at(config.duration_ms)
        self.deadline = self.safety_end + config.liveness_ms
        self.in_safety = True
        self.done = False
        self.last_disturbance = self.clock.epoch
        self.equal_since: int | None = None
        self.delivery_at_heal = 0.0
        self._polls: dict[int, int] = {}  # node -> when a drain poll is due

    # -- the run ----------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> SimResult:
        with memoized_verify(self.config.memo_verify):
            self._schedule()
            total = self.deadline - self.clock.epoch
            step = max(1, total // 200)
            shown = 0
            while self.queue and not self.done:
                at, action = self.queue.pop()
                if at > self.deadline:
                    break
                self.clock.now = at
                action()
                if progress is not None and at - self.clock.epoch >= shown + step:
                    shown = at - self.clock.epoch
                    progress(shown, total)
            if progress is not None:
                progress(total, total)
            return self._result()

    def _schedule(self) -> None:
        cfg, faults, rng = self.config, self.config.faults, self._fault_rng
        push, at = self.queue.push, self.clock.at
        for node in self.nodes:
            push(at(0), functools.partial(self._boot, node))
        if cfg.write_interval_ms is not None:
            times = [cfg.boot_ms + i * cfg.write_interval_ms for i in range(cfg.ops)]
        else:
            times = sorted(self._work_rng.randint(cfg.boot_ms, cfg.duration_ms - 1)
                           for _ in range(cfg.ops))
        for t in times:
            push(at(t), self._write)
        sample_from = max([cfg.boot_ms, *times[-1:]])
        if faults.partition_at_ms is not None and faults.heal_at_ms is not None:
            push(at(faults.partition_at_ms), self._partition)
            push(at(faults.heal_at_ms), self._heal)
            sample_from = max(sample_from, faults.heal_at_ms)
        for _ in range(faults.crashes):
            downtime = rng.randint(*faults.downtime_ms)
            push(at(rng.randint(cfg.boot_ms, cfg.duration_ms - 1)),
                 functools.partial(self._crash, downtime))
        for node in self.nodes:
            if node.byzantine:
                push(at(cfg.boot_ms + rng.randint(0, faults.byzantine_interval_ms)),
                     functools.partial(self._byzantine, node))
        push(self.safety_end, self._end_safety)
        push(at(sample_from), self._sample)

    def _boot(self, node: SimNode) -> None:
        self._start(node, self.config.boot_ms // 2)

    def _start(self, node: SimNode, spread_ms: int) -> bool:
        try:
            # A node that starts again did not just make its identity: it checks its own
            # feed with its peers before writing (sync.md §10.2).
            node.start(self.clock.now, self.hooks.replica, check_own=node.starts > 0)
        except StoreError as exc:
            self.violations.add(self.clock.elapsed, f"node {node.index} cannot start from its "
                                f"store: {exc}")
            return False
        self.connmgr.start(node.index, spread_ms)
        self._flush(node)
        return True

    # -- driving one node ---------------------------------------------------------------

    def _flush(self, node: SimNode) -> None:
        """After any input: send what the mesh wants sent, act on its events, re-arm."""
        mesh = node.mesh
        if mesh is None:
            return
        now = self.clock.now
        for conn, data in mesh.datagrams_to_send(node.now(now)):
            self.network.send(conn, data)
        while (event := mesh.next_event()) is not None:
            self._on_event(node, event)
        self._arm(node)
        if node.index not in self._polls and any(
                mesh.backlog(conn) for conn in self.network.conns_of(node.index)):
            # The mesh hands out sync ranges a budget at a time; a real transport
            # asks again when its buffer drains, and so do we.
            self._polls[node.index] = now + DRAIN_MS
            self.queue.push(now + DRAIN_MS, functools.partial(self._poll, node, node.starts))

    def _poll(self, node: SimNode, starts: int) -> None:
        self._polls.pop(node.index, None)
        if node.starts == starts:
            self._flush(node)

    def _arm(self, node: SimNode) -> None:
        assert node.mesh is not None
        due = node.mesh.get_timer()
        if due is None:
            return
        due = max(due - node.skew_ms, self.clock.now)  # the node's clock to the world's
        if node.timer_at is not None and node.timer_at <= due:
            return  # an earlier timer is armed; it re-arms when it fires
        node.timer_at = due
        self.queue.push(due, functools.partial(self._fire, node, due, node.starts))

    def _fire(self, node: SimNode, due: int, starts: int) -> None:
        if node.starts != starts or node.timer_at != due or node.mesh is None:
            return  # superseded, or the node restarted
        node.timer_at = None
        now = node.now(self.clock.now)
        timer = node.mesh.get_timer()
        if timer is not None and now >= timer:
            node.mesh.handle_timer(now)
            after = node.mesh.get_timer()
            if after is not None and after <= now:
                now = self.clock.now
                self.metrics.count("timer_not_advanced")
                node.timer_at = now + 1
                self.queue.push(now + 1, functools.partial(self._fire, node, now + 1, starts))
        self._flush(node)

    def _on_event(self, node: SimNode, event: Event) -> None:
        at = self.clock.elapsed
        if isinstance(event, Changed):
            node.unstored.append(event)
            self.checker.changed(at, node.index, event)
            if not node.commit_due:  # writes arriving meanwhile join this commit
                node.commit_due = True
                self.queue.push(self.clock.now + self.config.commit_ms,
                                functools.partial(self._commit, node, node.starts))
        elif isinstance(event, ForkFound):
            self.checker.forked(at, node.index, event.author, event.seq)
        elif isinstance(event, WritesOpened):
            self.metrics.count("writes_opened")
        elif isinstance(event, PeerUp):
            self.connmgr.up(event.conn)
            self.metrics.count("sessions_up")
        elif isinstance(event, PeerDown):
            self.network.close(event.conn)
            self.connmgr.down(event.conn)
            net = self.config.network
            self.checker.closed(at, node.index, event, network_garbles=bool(
                net.duplicate or net.reorder or not net.fifo))
            key = f"{event.reason}{' (by peer)' if event.by_peer else ''}"
            self.metrics.closes[key] = self.metrics.closes.get(key, 0) + 1
        elif isinstance(event, Misbehaved):
            self.metrics.misbehaved[event.reason] = self.metrics.misbehaved.get(event.reason, 0) + 1
            self.checker.blamed(at, node.index, event)
        elif isinstance(event, SyncFinished):
            self.metrics.count("sync_rounds")
        elif isinstance(event, Banned):
            self.metrics.count("bans")
            self.checker.banned(at, node.index, event,
                                honest={n.index for n in self.nodes if not n.byzantine})

    def _commit(self, node: SimNode, starts: int) -> None:
        """The node's writer commits what is queued; own writes are acknowledged."""
        if node.starts != starts or node.mesh is None:
            return  # the node crashed meanwhile: the batches died with it
        at = self.clock.elapsed
        try:
            batches, acked = node.commit()
        except StoreError as exc:
            self.violations.add(at, f"node {node.index}: store refused a write: {exc}")
            return
        for changed in batches:
            self.checker.persisted(node.index, changed, at)
        for op in acked:
            self.checker.wrote(at, node.index, op, byzantine=node.byzantine)
        node.mesh.stored(batches[-1].ticket, node.now(self.clock.now))
        self._flush(node)

    # -- network callbacks --------------------------------------------------------------

    def _connect(self, dialer: int, acceptor: int) -> ConnId:
        ends = self.network.open(dialer, acceptor)
        now = self.clock.now
        for end, initiator in ((ends[0], True), (ends[1], False)):
            node = self.nodes[end.node]
            assert node.mesh is not None
            other = ends[1].node if end is ends[0] else ends[0].node
            node.mesh.connection_made(end.conn, ends[2], node.now(now), initiator=initiator,
                                      address=f"sim:{other}")
            self.queue.push(now, functools.partial(self._flush, node))
        return ends[0].conn

    def _on_frame(self, sender: int, end: Endpoint, data: bytes) -> None:
        node = self.nodes[end.node]
        if node.mesh is None:
            return
        self.metrics.delivered(sender, end.node, data)
        node.mesh.data_received(end.conn, data, node.now(self.clock.now))
        self._flush(node)

    def _on_closed(self, end: Endpoint) -> None:
        node = self.nodes[end.node]
        if node.mesh is not None:
            node.mesh.connection_lost(end.conn, node.now(self.clock.now))
            self._flush(node)

    # -- workload and faults ------------------------------------------------------------

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

    def _crash(self, downtime: int) -> None:
        candidates = [n for n in self.nodes if n.alive and not n.byzantine]
        if not candidates or not self.in_safety:
            return
        node = self._fault_rng.choice(candidates)
        self.checker.crashing(self.clock.elapsed, node.index, node.replica,
                              node.stored_op_ids(), tuple(node.unstored))
        self.metrics.count("uncommitted_lost", sum(len(e.applied) for e in node.unstored))
        self.network.forget_node(node.index)
        self.connmgr.crashed(node.index)
        node.crash()
        self.metrics.count("crashes")
        self.queue.push(min(self.clock.now + downtime, self.safety_end),
                        functools.partial(self._restart, node))

    def _restart(self, node: SimNode) -> None:
        if node.alive or not self._start(node, 200):
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

    # -- convergence ----------------------------------------------------------------------

    def _sample(self) -> None:
        now = self.clock.now
        if self._all_equal():
            if self.equal_since is None:
                self.equal_since = now
            if now >= self.safety_end:
                self.done = True
                return
        else:
            self.equal_since = None
        self.queue.push(now + self.config.check_interval_ms, self._sample)

    def _all_equal(self) -> bool:
        """Every honest node has the same digest. A byzantine node is left out: its
        peers ban it (sync.md §4.7), so it may well stay apart; and so is an honest node
        whose every edge leads to one (the simulator's topology is fixed: a real node
        would find other peers, §7.8 of transport.md)."""
        first: bytes | None = None
        for node in self.nodes:
            if node.index not in self.expected:
                continue
            if node.mesh is None:
                return False
            digest = node.mesh.replica.digest()
            if first is None:
                first = digest
            elif digest != first:
                return False
        return True

    def _result(self) -> SimResult:
        cfg = self.config
        replicas = {n.index: n.replica for n in self.nodes if n.alive and n.index in self.expected}
        end = self.clock.elapsed
        self.checker.final(end, replicas)
        for n in self.nodes:
            if n.alive:
                if n.unstored:  # what the writer would commit within commit_ms anyway
                    self._commit(n, n.starts)
                store = n.store
                blob = store.stored_bytes() if isinstance(store, MemoryStore) else None
                held = run_sync(store.load_contents())
                self.checker.contents(end, n.index, n.identity, n.replica, blob,
                                      [c for _, c in held])
        diss = self.metrics.dissemination(list(replicas.values()), {
            n.identity.public_key for n in self.nodes if n.index in self.expected})
        converged = len(replicas) == len(self.expected) and self._all_equal()
        digests = [n.replica.digest().hex() if n.alive and n.index in self.expected else ""
                   for n in self.nodes]
        convergence = None
        if converged and self.equal_since is not None:
            convergence = max(0, self.equal_since - self.last_disturbance)
        counts = self.metrics.counts
        faults = {k: counts.get(k, 0) for k in ("partitions", "crashes", "restarts",
                                                "uncommitted_lost")}
        faults.update({k: self.network.counts[k] for k in ("lost", "duplicated", "reordered",
                                                           "cut")})
        faults.update({k: v for k, v in sorted(counts.items()) if k.startswith("byzantine_")})
        if cfg.faults.byzantine:
            faults["eclipsed"] = cfg.nodes - cfg.faults.byzantine - len(self.expected)
        faults["bans"] = counts.get("bans", 0)
        traffic = {"frames": self.network.counts["frames"], "bytes": self.network.counts["bytes"],
                   **self.connmgr.counts,
                   **{k: v for k, v in sorted(counts.items())
                      if k.startswith(("refused", "sessions", "sync", "timer", "writes_"))},
                   "acknowledged": self.checker.acknowledged}
        return SimResult(
            seed=cfg.seed, nodes=cfg.nodes, converged=converged, convergence_ms=convergence,
            delivery_ratio=diss.delivery_ratio, delivery_ratio_at_heal=self.delivery_at_heal,
            last_delivery_hop=diss.last_delivery_hop, mean_hop=diss.mean_hop, rmr=diss.rmr,
            bytes_per_node=self.network.counts["bytes"] // cfg.nodes,
            violations=self.violations.lines(), writes=counts.get("writes", 0), end_ms=end,
            digest=next((d for d in digests if d), None) if converged else None, faults=faults,
            traffic=traffic,
            closes=dict(sorted(self.metrics.closes.items())),
            misbehaved=dict(sorted(self.metrics.misbehaved.items())), digests=digests,
            command=command_line(cfg))


def _reachable_honest(nodes: int, edges: list[topology.Edge], byzantine: set[int]) -> set[int]:
    """The honest nodes expected to converge: the largest group that honest edges join
    (with no byzantine node, every node)."""
    links: dict[int, set[int]] = {i: set() for i in range(nodes) if i not in byzantine}
    for a, b in edges:
        if a in links and b in links:
            links[a].add(b)
            links[b].add(a)
    best: set[int] = set()
    seen: set[int] = set()
    for start in sorted(links):
        if start in seen:
            continue
        group, todo = {start}, [start]
        while todo:
            for other in links[todo.pop()]:
                if other not in group:
                    group.add(other)
                    todo.append(other)
        seen |= group
        if len(group) > len(best):
            best = group
    return best


def simulate(config: SimConfig, progress: Progress | None = None,
             hooks: Hooks | None = None) -> SimResult:
    """Run one simulation to the end and return what it found."""
    return World(config, hooks).run(progress)
