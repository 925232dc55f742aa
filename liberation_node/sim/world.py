"""The world: N real nodes on a virtual clock, a seeded faulty network, and the
phases of a run (DESIGN §6; the shape of TigerBeetle's VOPR).

    boot      every node starts from its (empty) store knowing a few bootstrap
              entries; its connection manager (the production one) dials them,
              then others it learns of from presence records
    safety    users write ops; partitions, crashes, loss (retransmissions),
              broken connections and byzantine injections happen; checkers watch
    liveness  at `duration_ms` every fault stops: partitions heal, crashed nodes
              restart, the network only delays; all replicas must converge
              within `liveness_ms`: the same ops, and every node's presence
              records at most one refresh behind (they keep being republished)

Everything happens as actions on one event queue. Each concern draws from its
own RNG stream split off the seed, so a change in one (say, how many frames
the network sees) does not reshuffle the others (who writes what, when
crashes hit). The driver loop is the one in core/mesh.py's docstring: input,
then `datagrams_to_send` (with the connection's send buffer as the budget, as
node.py does), then drain `next_event` (handing each to the connection manager),
then dial what it asks for, then re-arm the timer.

Dials: a URL names a node (`node_url`); the offer takes a round trip of signaling,
and fails when the node is down, refuses (no room: `Connections.accepts`, as the
daemon's peer port answers 503) or is on the far side of a partition (after the
transport's connect timeout). A dial without a URL goes by relayed signaling:
the offer and answer travel in real SIGNAL frames through the mesh (sync.md
§7.2). A dial that succeeds opens a connection a round trip later (ICE).

Dials are carried out in dialing.py, writes and faults in disturbances.py: mixins of
`World`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..core.events import (
    Banned,
    Changed,
    ConnId,
    Event,
    ForkFound,
    Misbehaved,
    PeerDown,
    PeerUp,
    SignalReceived,
    SyncFinished,
    WritesOpened,
)
from ..core.identity import Identity
from ..core.peering import Dial, PeeringConfig
from ..store.base import Store, StoreError
from ..store.memory import MemoryStore
from .byzantine import Adversary
from .checkers import Checker, Registry, Violations, records_converged
from .clock import Clock, EventQueue
from .decodecache import memoized_frames, memoized_records
from .dialing import WorldDialing
from .disturbances import Disturbances
from .metrics import Metrics
from .network import Endpoint, Network
from .node import ReplicaHook, SimNode, run_sync
from .options import SimConfig
from .report import SimResult, command_line
from .sigcache import memoized_verify

# The collector's thresholds during a run. A run holds millions of long-lived objects
# (every node's replica) and allocates a few short-lived ones per frame; examining
# the young generation less often leaves the middle one nearly empty (300 nodes for
# 10 virtual s: 1 collection of it instead of 17, 0.26 s instead of 0.84 s of CPU).
# Cycles are still collected: crashed nodes' meshes are cyclic garbage.
GC_THRESHOLDS = (100_000, 20, 50)
Progress = Callable[[int, int], None]  # (virtual ms done, virtual ms at most)


@contextlib.contextmanager
def collector(thresholds: tuple[int, int, int]) -> Iterator[None]:
    """The garbage collector's thresholds within the block, restored after it."""
    saved = gc.get_threshold()
    gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def node_url(index: int) -> str:
    """The signaling URL simulated node `index` announces: a private unicast address,
    in scope for every node (core/scope.py)."""
    n = index + 1
    return f"http://10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}:7400/v1/signal"


@dataclass(frozen=True)
class Hooks:
    """Test injection: what a run builds for a node, replaced (core stays untouched)."""

    replica: ReplicaHook | None = None  # called with every replica a node (re)builds
    store: Callable[[int], Store] | None = None  # the store of node i


class World(WorldDialing, Disturbances):
    def __init__(self, config: SimConfig, hooks: Hooks | None = None) -> None:
        config.check()
        self.config = config
        self.hooks = hooks or Hooks()
        seed = random.Random(config.seed)
        streams = [random.Random(seed.getrandbits(64)) for _ in range(6)]
        topo_rng, net_rng, self._dial_rng, self._work_rng, self._fault_rng, byz_rng = streams
        self.clock = Clock(config.epoch_ms)
        self.queue = EventQueue()
        self.violations = Violations()
        self.registry = Registry()
        self.checker = Checker(self.registry, self.violations)
        self.metrics = Metrics(config.nodes, self.registry)
        byzantine = set(self._fault_rng.sample(range(config.nodes), config.faults.byzantine))
        skew = config.faults.clock_skew_ms  # each clock is off by 0..skew: pairs differ by <= it
        skews = [self._fault_rng.randint(0, skew) if skew else 0 for _ in range(config.nodes)]
        make_store = self.hooks.store or (lambda i: MemoryStore())
        identities = [Identity.from_seed(seed.randbytes(32)) for _ in range(config.nodes)]
        self.urls = {node_url(i): i for i in range(config.nodes)}
        self._index = {identity.public_key: i for i, identity in enumerate(identities)}
        peering = PeeringConfig(low=max(1, config.degree - 2), high=config.degree + 2)
        self.nodes = []
        for i, identity in enumerate(identities):
            # As a mesh grows: each node is told of a few that joined before it (the
            # first, of a few that come after), so the bootstrap graph is connected.
            others = list(range(i)) if i else list(range(1, config.nodes))
            known = topo_rng.sample(others, min(config.bootstrap, len(others)))
            mesh = dataclasses.replace(config.mesh, urls=(node_url(i),), name=f"n{i}")
            self.nodes.append(SimNode(
                i, identity, make_store(i), random.Random(seed.getrandbits(64)), mesh,
                config.network_name, byzantine=i in byzantine, skew_ms=skews[i],
                retain_bytes=config.retain_bytes, peering=peering,
                bootstrap=tuple((identities[j].public_key, node_url(j)) for j in known)))
        # The nodes expected to converge: the honest ones. A byzantine node is banned by
        # its peers (sync.md §4.7) and may well stay apart; an honest node whose first
        # peers were liars finds others by peer exchange (transport.md §7).
        self.expected = {i for i in range(config.nodes) if i not in byzantine}
        self.network = Network(config.network, net_rng, self.clock, self.queue,
                               self._on_frame, self._on_closed)
        self.adversary = Adversary(byz_rng, config.network_name)
        self.safety_end = self.clock.at(config.duration_ms)
        self.deadline = self.safety_end + config.liveness_ms
        self.in_safety = True
        self.done = False
        self.last_disturbance = self.clock.epoch
        self.equal_since: int | None = None
        self.delivery_at_heal = 0.0
        self._drains: dict[int, int] = {}  # node -> when a drain poll is due
        self._dials: dict[int, tuple[SimNode, Dial, int]] = {}  # relay nonce -> dial
        self._dial_tag: dict[ConnId, Dial] = {}  # dialer's end -> the dial it serves
        self.counts = {"dials": 0, "dial_failures": 0, "relayed_dials": 0, "connects": 0}

    # -- the run ----------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> SimResult:
        memo = self.config.memo_verify
        with memoized_verify(memo), memoized_records(memo), memoized_frames(memo), \
                collector(GC_THRESHOLDS):
            self._schedule()
            total = self.deadline - self.clock.epoch
            step = max(1, total // 200)
            shown = 0
            pop, clock, deadline = self.queue.pop, self.clock, self.deadline
            while self.queue and not self.done:
                at, action = pop()
                if at > deadline:
                    break
                clock.now = at
                action()
                if progress is not None and at - clock.epoch >= shown + step:
                    shown = at - clock.epoch
                    progress(shown, total)
            if progress is not None:
                progress(total, total)
            return self._result()

    def _schedule(self) -> None:
        cfg, faults, rng = self.config, self.config.faults, self._fault_rng
        push, at = self.queue.push, self.clock.at
        for node in self.nodes:
            push(at(self._dial_rng.randint(0, cfg.boot_ms // 2)),
                 functools.partial(self._boot, node))
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
        for _ in range(faults.breaks):
            push(at(rng.randint(cfg.boot_ms, cfg.duration_ms - 1)), self._break)
        for node in self.nodes:
            if node.byzantine:
                push(at(cfg.boot_ms + rng.randint(0, faults.byzantine_interval_ms)),
                     functools.partial(self._byzantine, node))
        push(self.safety_end, self._end_safety)
        push(at(sample_from), self._sample)

    def _boot(self, node: SimNode) -> None:
        self._start(node)

    def _start(self, node: SimNode) -> bool:
        try:
            # A node that starts again did not just make its identity: it checks its own
            # feed with its peers before writing (sync.md §10.2).
            node.start(self.clock.now, self.hooks.replica, check_own=node.starts > 0)
        except StoreError as exc:
            self.violations.add(self.clock.elapsed, f"node {node.index} cannot start from its "
                                f"store: {exc}")
            return False
        self._flush(node)
        return True

    # -- driving one node ---------------------------------------------------------------

    def _flush(self, node: SimNode) -> None:
        """After any input: send what the mesh wants sent, act on its events, dial what
        the connection manager asks for, re-arm."""
        mesh, conns = node.mesh, node.connections
        if mesh is None or conns is None:
            return
        local = node.now(self.clock.now)
        net = self.network
        high = self.config.network.high_water
        send = net.send
        for conn, data in mesh.datagrams_to_send(
                local, budget=lambda c: max(0, high - net.buffered(c))):
            send(conn, data)
        while (event := mesh.next_event()) is not None:
            self._on_event(node, event)
        for dial in conns.step(local):
            self._dial(node, dial)
        self._arm(node)
        self._poll_drain(node)

    def _poll_drain(self, node: SimNode) -> None:
        """Bulk data waits for the send buffer (the driver's budget); a real transport
        says when the buffer drained below its low-water mark, and so do we."""
        assert node.mesh is not None
        ends = self.network.endpoints
        backlog = [c for c in node.mesh.backlogged() if c in ends]
        if not backlog or node.index in self._drains:
            return
        low = self.config.network.low_water
        due = max(self.clock.now + 1, min(self.network.drained_at(c, low) for c in backlog))
        self._drains[node.index] = due
        self.queue.push(due, functools.partial(self._drained, node, node.starts))

    def _drained(self, node: SimNode, starts: int) -> None:
        self._drains.pop(node.index, None)
        if node.starts == starts:
            self._flush(node)

    def _arm(self, node: SimNode) -> None:
        assert node.mesh is not None and node.connections is not None
        times = [t for t in (node.mesh.get_timer(), node.connections.timer()) if t is not None]
        if not times:
            return
        due = max(min(times) - node.skew_ms, self.clock.now)  # the node's clock to the world's
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
        assert node.connections is not None
        node.connections.on_event(event, node.now(self.clock.now))
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
            self.metrics.count("sessions_up")
        elif isinstance(event, PeerDown):
            self.network.close(event.conn)
            self.checker.closed(at, node.index, event)
            key = f"{event.reason}{' (by peer)' if event.by_peer else ''}"
            self.metrics.closes[key] = self.metrics.closes.get(key, 0) + 1
        elif isinstance(event, Misbehaved):
            self.metrics.misbehaved[event.reason] = self.metrics.misbehaved.get(event.reason, 0) + 1
            self.checker.blamed(at, node.index, event)
        elif isinstance(event, SyncFinished):
            self.metrics.count("sync_rounds")
        elif isinstance(event, SignalReceived):
            self._on_signal(node, event)
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
            batches, acked, ticket = node.commit()
        except StoreError as exc:
            self.violations.add(at, f"node {node.index}: store refused a write: {exc}")
            return
        for changed in batches:
            self.checker.persisted(node.index, changed, at)
        for op in acked:
            self.checker.wrote(at, node.index, op, byzantine=node.byzantine)
        node.mesh.stored(ticket, node.now(self.clock.now))
        self._flush(node)

    # -- network callbacks --------------------------------------------------------------

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
        """Converged: every honest node alive, the same ops (op digests), and presence
        records that agree by content (checkers.records_converged). A byzantine node is
        left out: its peers ban it (sync.md §4.7), so it may well stay apart."""
        first: bytes | None = None
        for node in self.nodes:
            if node.index not in self.expected:
                continue
            if node.mesh is None:
                return False
            digest = node.mesh.replica.ops_digest()
            if first is None:
                first = digest
            elif digest != first:
                return False
        return records_converged([n.replica for n in self.nodes if n.index in self.expected],
                                 self.config.mesh.record_refresh_ms) is True

    def _result(self) -> SimResult:
        cfg = self.config
        replicas = {n.index: n.replica for n in self.nodes if n.alive and n.index in self.expected}
        end = self.clock.elapsed
        self.checker.final(end, replicas, cfg.mesh.record_refresh_ms)
        for n in self.nodes:
            if n.alive:
                if n.unstored:  # what the writer would commit within commit_ms anyway
                    self._commit(n, n.starts)
                store = n.store
                blob = store.stored_bytes() if isinstance(store, MemoryStore) else None
                held = run_sync(store.load_contents())
                self.checker.contents(end, n.index, n.identity, n.replica, blob,
                                      [row[3] for row in held])
        diss = self.metrics.dissemination(list(replicas.values()), {
            n.identity.public_key for n in self.nodes if n.index in self.expected})
        converged = len(replicas) == len(self.expected) and self._all_equal()
        digests = [n.replica.ops_digest().hex() if n.alive and n.index in self.expected else ""
                   for n in self.nodes]
        convergence = None
        if converged and self.equal_since is not None:
            convergence = max(0, self.equal_since - self.last_disturbance)
        counts = self.metrics.counts
        faults = {k: counts.get(k, 0) for k in ("partitions", "crashes", "restarts",
                                                "uncommitted_lost", "breaks")}
        faults.update({k: self.network.counts[k] for k in ("lost", "retransmitted", "cut",
                                                           "broken", "overflow")})
        faults.update({k: v for k, v in sorted(counts.items()) if k.startswith("byzantine_")})
        degrees = [len(n.mesh.peers()) for n in self.nodes if n.mesh is not None]
        faults["bans"] = counts.get("bans", 0)
        traffic = {"frames": self.network.counts["frames"], "bytes": self.network.counts["bytes"],
                   **self.counts,
                   **{k: v for k, v in sorted(counts.items())
                      if k.startswith(("refused", "sessions", "sync", "timer", "writes_"))},
                   "acknowledged": self.checker.acknowledged,
                   "mean_degree_x100": 100 * sum(degrees) // max(1, len(degrees))}
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
            command=command_line(cfg), p99_hop=diss.p99_hop)


def simulate(config: SimConfig, progress: Progress | None = None,
             hooks: Hooks | None = None) -> SimResult:
    """Run one simulation to the end and return what it found."""
    return World(config, hooks).run(progress)
