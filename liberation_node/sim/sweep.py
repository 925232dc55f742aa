"""Seed sweeps: the same run with every fault on, over many seeds (VOPR's way of
searching), so a failure is found as a seed and reproduced by it.

scripts/seed_sweep.py runs many seeds and prints the failing ones; a test runs
a small fixed set of them on every CI run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from .options import FaultOptions, NetworkOptions, SimConfig
from .report import SimResult
from .world import simulate


def all_faults(seed: int, nodes: int = 12, *, ops: int = 60, duration_ms: int = 15_000,
               memo_verify: bool = False) -> SimConfig:
    """Every fault at once: loss (retransmissions), broken connections, a partition,
    crashes (each losing its uncommitted writes), byzantine nodes and clocks up to 10
    minutes apart, each at a rate the protocol must survive, with the production
    connection manager finding and keeping every node's peers. `memo_verify`: memoize
    signature checks (the same results; for runs of hundreds of nodes, sim/sigcache.py)."""
    return SimConfig(
        nodes=nodes, seed=seed, degree=4, ops=ops, duration_ms=duration_ms,
        memo_verify=memo_verify,
        network=NetworkOptions(loss=0.05),
        faults=FaultOptions(partition_at_ms=duration_ms // 4, heal_at_ms=duration_ms // 2,
                            breaks=max(1, nodes // 3), crashes=max(1, nodes // 5),
                            byzantine=max(1, nodes // 6), byzantine_interval_ms=500,
                            clock_skew_ms=10 * 60_000))


def sweep(seeds: Iterable[int], make: Callable[[int], SimConfig] = all_faults
          ) -> Iterator[SimResult]:
    for seed in seeds:
        yield simulate(make(seed))
