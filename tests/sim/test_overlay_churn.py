"""The overlay the real connection manager builds (core/connections.py over
core/peering.py) in the simulator: nodes must not shed one another in a loop.

At 1000 nodes, degree 8, the manager closed 3,087 sessions as `too_many_peers` (issue
10); at 100 nodes, 261 in the first 4 s. A full node took every newcomer beyond its
high mark and then shed the newcomer itself, its RTT not yet measured counting as the
worst (transport.md §7.5, §7.6), and the node it shed dialed it again a second later.
"""

from __future__ import annotations

from liberation_node.sim import NetworkOptions, SimConfig, simulate


def test_booting_a_mesh_sheds_few_sessions() -> None:
    nodes = 100
    result = simulate(SimConfig(nodes=nodes, seed=1, degree=8, ops=5, boot_ms=3_000,
                                write_interval_ms=1_000, duration_ms=8_000,
                                liveness_ms=10_000, memo_verify=True,
                                network=NetworkOptions(latency_ms=(10, 100))))
    assert result.converged and not result.violations
    shed = result.closes.get("too_many_peers", 0)
    assert shed <= nodes // 10, result.closes
