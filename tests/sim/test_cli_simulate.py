"""`liberation-node simulate`, run as a user runs it."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

from liberation_node.sim import FaultOptions, NetworkOptions, SimConfig, command_line


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "liberation_node", "simulate", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_json_result() -> None:
    done = simulate("--nodes", "5", "--seed", "3", "--ops", "20", "--duration-ms", "5000",
                    "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["seed"] == 3 and data["nodes"] == 5 and data["converged"] is True
    assert data["violations"] == [] and data["delivery_ratio"] == 1.0
    assert {"convergence_ms", "last_delivery_hop", "rmr", "bytes_per_node"} <= set(data)
    assert done.stderr == ""  # no progress bar when stderr is not a terminal


def test_human_summary_and_progress_on_request() -> None:
    done = simulate("--nodes", "5", "--seed", "3", "--ops", "20", "--duration-ms", "5000",
                    "--progress")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("seed 3: 5 nodes, 20 ops written")
    assert "delivery" in done.stdout and "simulating" in done.stderr


def test_a_violation_exits_nonzero_with_the_seed_and_the_command() -> None:
    # No time at all to converge after heavy loss: the liveness checker must object.
    done = simulate("--nodes", "6", "--seed", "4", "--ops", "30", "--duration-ms", "4000",
                    "--loss", "0.3", "--liveness-ms", "1", "--json")
    assert done.returncode == 3
    assert json.loads(done.stdout)["violations"]
    assert "seed 4:" in done.stderr
    command = done.stderr.strip().splitlines()[-1].strip()
    assert command.startswith("liberation-node simulate --nodes 6 --seed 4 ")
    again = simulate(*shlex.split(command)[2:], "--json")  # the command reproduces the run
    assert again.returncode == 3 and again.stdout == done.stdout


def test_bad_options_are_usage_errors() -> None:
    for args in (["--partition-at", "1000"], ["--latency-ms", "9:3"], ["--loss", "1.5"],
                 ["--nodes", "3", "--degree", "3"], ["--partition-at", "9000", "--heal-at",
                                                     "99000"]):
        done = simulate(*args)
        assert done.returncode == 2, args
        assert "Error" in done.stderr


def test_command_line_names_every_option_that_differs() -> None:
    config = SimConfig(nodes=9, seed=2, degree=3, ops=7, duration_ms=9000, liveness_ms=500,
                       memo_verify=True,
                       bootstrap=2,
                       network=NetworkOptions(latency_ms=(1, 9), jitter_ms=2, loss=0.1,
                                              bandwidth_bytes_s=1000),
                       faults=FaultOptions(partition_at_ms=1, heal_at_ms=2, crashes=3,
                                           breaks=4, byzantine=1))
    assert command_line(config) == (
        "liberation-node simulate --nodes 9 --seed 2 --degree 3 --ops 7 --duration-ms 9000 "
        "--latency-ms 1:9 --jitter-ms 2 --loss 0.1 --bandwidth 1000 --partition-at 1 "
        "--heal-at 2 --breaks 4 --crash 3 --byzantine 1 --bootstrap 2 --liveness-ms 500 "
        "--memo-verify")
