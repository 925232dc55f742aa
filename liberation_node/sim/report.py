"""What a run reports: one `SimResult`, as JSON or as a short human summary, and the
command line that reproduces it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from .options import FaultOptions, NetworkOptions, SimConfig


@dataclass
class SimResult:
    seed: int
    nodes: int
    converged: bool
    convergence_ms: int | None  # from the last disturbance (write, heal, fault) to agreement
    delivery_ratio: float  # at the end
    delivery_ratio_at_heal: float  # when the safety phase ended, before the quiet period
    last_delivery_hop: int
    mean_hop: float
    rmr: float
    bytes_per_node: int
    violations: list[str]
    writes: int
    end_ms: int  # virtual time when the run stopped
    digest: str | None  # the common op digest, when converged
    faults: dict[str, int] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    closes: dict[str, int] = field(default_factory=dict)
    misbehaved: dict[str, int] = field(default_factory=dict)
    digests: list[str] = field(default_factory=list)  # per node, not in the JSON
    command: str = ""
    p99_hop: int = 0

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "digests"}
        for key in ("delivery_ratio", "delivery_ratio_at_heal", "mean_hop", "rmr"):
            out[key] = round(out[key], 6)
        return out

    def summary(self) -> list[str]:
        ok = "no violations" if not self.violations else f"{len(self.violations)} VIOLATION(S)"
        conv = f"converged after {self.convergence_ms} ms" if self.converged else "NOT converged"
        faults = ", ".join(f"{k} {v}" for k, v in self.faults.items() if v) or "none"
        lines = [
            f"seed {self.seed}: {self.nodes} nodes, {self.writes} ops written, "
            f"{self.end_ms} ms simulated: {conv}, {ok}",
            f"delivery   {self.delivery_ratio:.4%} at the end "
            f"({self.delivery_ratio_at_heal:.4%} when faults stopped)",
            f"hops       last {self.last_delivery_hop}, p99 {self.p99_hop}, "
            f"mean {self.mean_hop:.2f}",
            f"redundancy rmr {self.rmr:.3f}",
            f"traffic    {self.bytes_per_node:,} bytes per node, "
            f"{self.traffic.get('frames', 0):,} frames",
            f"faults     {faults}",
        ]
        lines += [f"violation  {v}" for v in self.violations]
        return lines


def command_line(config: SimConfig) -> str:
    """The `liberation-node simulate` invocation that runs `config` again.

    Covers every option the command has; a config that sets other fields (tests,
    scripts) is reproduced by the same `SimConfig` instead.
    """
    net, f = config.network, config.faults
    d_net, d_f, d = NetworkOptions(), FaultOptions(), SimConfig()
    args = ["liberation-node", "simulate", "--nodes", str(config.nodes), "--seed",
            str(config.seed), "--degree", str(config.degree), "--ops", str(config.ops),
            "--duration-ms", str(config.duration_ms)]
    if net.latency_ms != d_net.latency_ms:
        args += ["--latency-ms", f"{net.latency_ms[0]}:{net.latency_ms[1]}"]
    if net.jitter_ms is not None:
        args += ["--jitter-ms", str(net.jitter_ms)]
    if net.loss != d_net.loss:
        args += ["--loss", repr(net.loss)]
    if net.bandwidth_bytes_s != d_net.bandwidth_bytes_s:
        args += ["--bandwidth", str(net.bandwidth_bytes_s or 0)]
    if f.partition_at_ms is not None:
        args += ["--partition-at", str(f.partition_at_ms), "--heal-at", str(f.heal_at_ms)]
    if f.breaks != d_f.breaks:
        args += ["--breaks", str(f.breaks)]
    if f.crashes != d_f.crashes:
        args += ["--crash", str(f.crashes)]
    if f.byzantine != d_f.byzantine:
        args += ["--byzantine", str(f.byzantine)]
    if f.clock_skew_ms != d_f.clock_skew_ms:
        args += ["--clock-skew-ms", str(f.clock_skew_ms)]
    if config.bootstrap != d.bootstrap:
        args += ["--bootstrap", str(config.bootstrap)]
    if config.liveness_ms != d.liveness_ms:
        args += ["--liveness-ms", str(config.liveness_ms)]
    if config.memo_verify:
        args.append("--memo-verify")
    return shlex.join(args)
