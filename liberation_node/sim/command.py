"""`liberation-node simulate`: the click command, registered by cli.py.

Thin: it turns options into a `SimConfig`, runs it, prints the result. Exit
status 0 when every checker passed, 3 on any violation (the seed and the
command line that reproduces the run go to stderr), 2 for bad options.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import click

from ..runtime import tune_gc
from .options import FaultOptions, NetworkOptions, SimConfig, parse_latency
from .world import simulate as run_simulation

VIOLATION_EXIT = 3


def _latency(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    try:
        return parse_latency(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_probability = click.FloatRange(0.0, 1.0, max_open=True)


@click.command()
@click.option("--nodes", type=click.IntRange(2), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Decides everything in the run; the same seed gives the same run.")
@click.option("--degree", type=click.IntRange(1), default=4, show_default=True,
              help="Peers per node the connection manager aims at (between degree - 2 "
                   "and degree + 2).")
@click.option("--bootstrap", type=click.IntRange(1), default=3, show_default=True,
              help="Other nodes each node knows at start; it finds the rest by peer "
                   "exchange.")
@click.option("--ops", type=click.IntRange(0), default=100, show_default=True,
              help="Ops written by random nodes during the run.")
@click.option("--loss", type=_probability, default=0.0,
              help="Chance a frame is lost on the way and retransmitted (1 s later, then "
                   "doubling; ten losses in a row break the connection, as SCTP does).")
@click.option("--bandwidth", type=click.IntRange(0), default=None,
              help="Bytes per second each way on a connection; 0: unlimited "
                   "[default: 2500000].")
@click.option("--breaks", type=click.IntRange(0), default=0,
              help="Connections that break (their association dies) at random times.")
@click.option("--latency-ms", default="10:100", show_default=True, callback=_latency,
              help="Per-frame latency, uniform in LO:HI ms.")
@click.option("--jitter-ms", type=click.IntRange(0), default=None,
              help="Give each connection a fixed latency from --latency-ms, plus 0..J ms "
                   "per frame [default: every frame draws from --latency-ms].")
@click.option("--partition-at", type=click.IntRange(0), default=None,
              help="Split the nodes in two halves at this time (ms).")
@click.option("--heal-at", type=click.IntRange(0), default=None, help="Heal the split (ms).")
@click.option("--crash", "crashes", type=click.IntRange(0), default=0,
              help="Crash-and-restart events against random nodes.")
@click.option("--byzantine", type=click.IntRange(0), default=0,
              help="Nodes that also forge, alter, replay, equivocate and send garbage.")
@click.option("--clock-skew-ms", type=click.IntRange(0), default=0, show_default=True,
              help="Each node's clock is off by 0..this many ms (keep it under 900000).")
@click.option("--duration-ms", type=click.IntRange(1), default=20_000, show_default=True,
              help="Length of the phase with writes and faults.")
@click.option("--liveness-ms", type=click.IntRange(1), default=60_000, show_default=True,
              help="After it, how long replicas get to converge.")
@click.option("--memo-verify", is_flag=True,
              help="Memoize signature checks (same results; faster at hundreds of nodes).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr [default: when stderr is a terminal].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def simulate(nodes: int, seed: int, degree: int, bootstrap: int, ops: int, loss: float,
             bandwidth: int | None, breaks: int, latency_ms: tuple[int, int],
             jitter_ms: int | None, partition_at: int | None, heal_at: int | None,
             crashes: int, byzantine: int, clock_skew_ms: int, duration_ms: int,
             liveness_ms: int,
             memo_verify: bool, progress: bool | None, as_json: bool) -> None:
    """Run N real nodes on a virtual clock over a seeded faulty network, and check them.

    Exits 3 if a checker found a violation (the seed and the command that
    reproduces the run are printed on stderr).
    """
    network = NetworkOptions(latency_ms=latency_ms, jitter_ms=jitter_ms, loss=loss)
    if bandwidth is not None:
        network = dataclasses.replace(network, bandwidth_bytes_s=bandwidth or None)
    config = SimConfig(
        nodes=nodes, seed=seed, degree=degree, bootstrap=bootstrap, ops=ops,
        duration_ms=duration_ms, liveness_ms=liveness_ms, memo_verify=memo_verify,
        network=network,
        faults=FaultOptions(partition_at_ms=partition_at, heal_at_ms=heal_at, breaks=breaks,
                            crashes=crashes, byzantine=byzantine,
                            clock_skew_ms=clock_skew_ms))
    try:
        config.check()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    tune_gc()
    if progress if progress is not None else sys.stderr.isatty():
        with click.progressbar(length=duration_ms + liveness_ms, label="simulating",
                               file=sys.stderr) as bar:
            def advance(done: int, total: int) -> None:
                bar.update(done - bar.pos)

            result = run_simulation(config, advance)
    else:
        result = run_simulation(config)
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        for line in result.summary():
            click.echo(line)
    if result.violations:
        click.echo(f"seed {seed}: {len(result.violations)} violation(s); reproduce with:\n"
                   f"  {result.command}", err=True)
        sys.exit(VIOLATION_EXIT)
