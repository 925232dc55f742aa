"""Small runs for tests: a few nodes, short phases, the rest as in SimConfig."""

from __future__ import annotations

from typing import Any

from liberation_node.sim import FaultOptions, NetworkOptions, SimConfig


def small(*, network: NetworkOptions | None = None, faults: FaultOptions | None = None,
          **kw: Any) -> SimConfig:
    base: dict[str, Any] = {"nodes": 8, "seed": 1, "degree": 3, "ops": 40,
                            "duration_ms": 10_000, "liveness_ms": 40_000}
    base.update(kw)
    return SimConfig(network=network or NetworkOptions(), faults=faults or FaultOptions(),
                     **base)
