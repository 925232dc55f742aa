"""Deterministic multi-node simulation (DESIGN §6): the production core, N nodes, one
virtual clock, a seeded faulty network, checkers for safety and liveness.

    from liberation_node.sim import SimConfig, simulate
    result = simulate(SimConfig(nodes=20, seed=7))

The same `SimConfig` (seed included) always gives the same `SimResult`.
"""

from .options import FaultOptions, NetworkOptions, SimConfig
from .report import SimResult, command_line
from .world import Hooks, World, simulate

__all__ = ["FaultOptions", "Hooks", "NetworkOptions", "SimConfig", "SimResult", "World",
           "command_line", "simulate"]
