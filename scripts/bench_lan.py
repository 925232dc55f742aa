#!/usr/bin/env python3
"""LAN discovery and healing between real hosts (network namespaces; needs root).

  mesh       N hosts (default 10) on one LAN, no bootstrap, all launched at once: time
             from launch to a connected mesh by mDNS alone (target <= 5 s); baseline:
             time from launch to every daemon up (process start, imports, ports)
  join       one more host on that LAN: time from its launch to its first peer
             (target <= 2 s); baseline: its own time to be up
  heal       that host cut off (nft on the bridge) until both sides have dropped each
             other, one op written on each side, then healed: time from the heal to
             equal digests everywhere (target <= 2 s); baseline: time for one op
             written in the connected mesh to reach every node

Times are measured by polling the nodes' control APIs (a round every 100 ms; 50 ms
after a heal), so they carry up to one round of error; "up" times come from the
daemons' own JSON logs (millisecond times).

    sudo .venv/test/bin/python scripts/bench_lan.py [--hosts 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.meshlab import (
    Daemon,
    Lab,
    cleanup_stale,
    connected,
    converged,
    unavailable,
    wait_until,
)

POLL = 0.1


def since(t0: float) -> float:
    return time.monotonic() - t0


def watch(daemons: list[Daemon], done: Callable[[], bool], what: str,
          timeout: float = 60.0) -> tuple[float, float]:
    """Poll until `done()`; return (seconds from the launch to the last daemon logging
    that it is up, seconds from the launch to `done`). The daemons log JSON with
    millisecond times, read afterwards, so that watching costs one poll per round."""
    t0, wall0 = time.monotonic(), time.time()
    wait_until(lambda: _safely(done), timeout, what, POLL)
    finished = since(t0)
    ups = []
    for d in daemons:
        d.wait_up()
        line = next(x for x in d.log() if " up on network " in x)
        ups.append(json.loads(line)["ts"] - wall0)
    return max(ups), finished


def bench_once(hosts: int, partition_s: float) -> dict[str, float]:
    figures = {}
    with Lab() as lab:
        nodes = [lab.add_host() for _ in range(hosts)]
        daemons = [lab.start(h, wait=False, extra=["--log-json"]) for h in nodes]
        figures["mesh_up"], figures["mesh"] = watch(
            daemons, lambda: connected(daemons), "a connected mesh")

        joiner = lab.start(lab.add_host(), wait=False, extra=["--log-json"])
        figures["join_up"], figures["join"] = watch(
            [joiner], lambda: bool(joiner.peer_ids()), "the new host's first peer")
        everyone = [*daemons, joiner]

        wait_until(lambda: converged(everyone), 30, "equal digests", POLL)
        t0 = time.monotonic()
        daemons[0].post("one op")
        wait_until(lambda: converged(everyone, ops=1), 30, "the op everywhere", POLL)
        figures["spread"] = since(t0)

        lab.partition([joiner.host])
        joiner_id = joiner.status()["node_id"]
        wait_until(lambda: not joiner.peer_ids(), 30, "the cut host to drop its peers", POLL)
        wait_until(lambda: all(joiner_id not in d.peer_ids() for d in daemons), 30,
                   "the others to drop the cut host", POLL)
        joiner.post("alone")
        daemons[0].post("without it")
        time.sleep(partition_s)  # the fault's length is the experiment's parameter
        lab.heal()
        t0 = time.monotonic()
        wait_until(lambda: bool(joiner.peer_ids()), 60, "a link after the heal", POLL / 2)
        figures["relink"] = since(t0)
        wait_until(lambda: converged(everyone, ops=3), 60, "equal digests after the heal",
                   POLL / 2)
        figures["heal"] = since(t0)
    return figures


def _safely(condition: Callable[[], bool]) -> bool:
    """False while a daemon is not answering yet (no token file, port closed)."""
    try:
        return condition()
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--partition", type=float, default=5.0,
                        help="seconds the cut stays after both sides noticed it")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        print(f"bench_lan: {reason}", file=sys.stderr)
        return 2
    cleanup_stale()
    runs = [bench_once(args.hosts, args.partition) for _ in range(args.repeat)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print(f"{args.hosts} hosts on one LAN, mDNS only; median of {len(runs)} run(s)")
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"  (load average at the end: {load} on {os.cpu_count()} cores)")
    rows = [
        ("connected mesh from launch", "mesh", "mesh_up", "all daemons up", 5.0),
        ("new host's first peer from launch", "join", "join_up", "its daemon up", 2.0),
        ("heal to equal digests", "heal", "spread", "one op to all", 2.0),
    ]
    for label, key, base, base_label, target in rows:
        value = med(key)
        verdict = "ok" if value <= target else "MISSED"
        print(f"  {label:<36} {value:6.2f} s  (target <= {target:g} s: {verdict}); "
              f"{base_label} {med(base):.2f} s, ratio {value / med(base):.2f}")
    print(f"  after the last daemon is up: mesh {med('mesh') - med('mesh_up'):.2f} s, "
          f"join {med('join') - med('join_up'):.2f} s; heal to a first link "
          f"{med('relink'):.2f} s")
    if len(runs) > 1:
        for key in ("mesh", "join", "heal"):
            print(f"  {key}: " + " ".join(f"{r[key]:.2f}" for r in runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
