"""The CLI against real daemons on 127.0.0.1 (tests/daemon/harness.py): what the node offers
today, a node started from config.toml and the environment alone, and `stop`.

Reading commands whose endpoint the running node lacks (an older control API)
are skipped with the endpoint named: they run as soon as the node serves it.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from liberation_node.api.client import ControlClient, ControlError
from tests.daemon.harness import NETWORK, Daemon, wait_until

from .conftest import cli, cli_env


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    daemon = Daemon(tmp_path_factory.mktemp("cli") / "node", name="ada").start()
    try:
        yield daemon
    finally:
        daemon.kill()


def run(node: Daemon, *args: str) -> str:
    result = cli(node.data_dir.parent, *args, "--data-dir", str(node.data_dir))
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def needs(node: Daemon, path: str) -> None:
    """Skip unless the running node serves `path` (the control API grows in steps)."""
    try:
        ControlClient(node.data_dir).get(path)
    except ControlError as exc:
        if "the running node has no" in str(exc):
            pytest.skip(f"the node does not serve {path} yet")


def test_status(node: Daemon) -> None:
    info = json.loads(run(node, "status", "--json"))
    assert info["node_id"] == run(node, "id").strip()
    assert info["network"] == NETWORK
    lines = run(node, "status").splitlines()
    assert lines[0].split()[-1].strip("()") == info["node_id"]
    assert lines[1].split()[:2] == ["network", NETWORK]
    assert any(line.startswith("ledger    ") and "available" in line and "$" in line
               for line in lines)


def test_address_of_a_running_node(node: Daemon) -> None:
    urls = run(node, "address").splitlines()
    node_id = run(node, "id").strip()
    assert urls and all(url.endswith(f"#{node_id}") for url in urls)
    assert any(url.startswith(node.peer_url) for url in urls)
    assert json.loads(run(node, "address", "--json")) == {"join_urls": urls, "running": True}


def test_writes_reach_the_replica(node: Daemon) -> None:
    before = node.status()["ops"]
    run(node, "register", "ada")
    run(node, "claim")
    posted = run(node, "post", "hello from the command line").strip()
    run(node, "retract", posted)
    other = node.data_dir.parent / "other"
    other_id = cli(other.parent, "init", "--data-dir", str(other), "--network",
                   NETWORK).stdout.strip()
    paid = run(node, "transfer", other_id, "12.50", "--memo", "lunch").strip()
    assert len(paid) == 64
    assert node.status()["ops"] == before + 5


def test_ledger_and_balance(node: Daemon) -> None:
    needs(node, "/api/v1/ledger")
    out = run(node, "ledger")
    assert "$" in out and "ada" in out
    assert json.loads(run(node, "balance", "--json"))["human"]["name"] == "ada"


def test_feed(node: Daemon) -> None:
    needs(node, "/api/v1/messages")
    run(node, "post", "a message for the feed")
    assert "a message for the feed" in run(node, "feed")
    assert json.loads(run(node, "feed", "--json"))["messages"][0]["text"] == \
        "a message for the feed"


def test_peers_and_topology(node: Daemon) -> None:
    needs(node, "/api/v1/peers")
    assert json.loads(run(node, "peers", "--json")) == {"peers": []}
    needs(node, "/api/v1/topology")
    assert any(n["me"] for n in json.loads(run(node, "topology", "--json"))["nodes"])


def test_open(node: Daemon) -> None:
    try:
        ControlClient(node.data_dir).login()
    except ControlError as exc:
        if "the running node has no" in str(exc):
            pytest.skip("the node does not serve /api/v1/login yet")
    url = run(node, "open", "--no-browser").strip()
    assert url.startswith(node.run["control_url"].replace("0.0.0.0", "127.0.0.1"))


def test_events_show_a_post(node: Daemon) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "liberation_node", "events", "--json", "--count", "1",
         "--type", "user.action", "--data-dir", str(node.data_dir)],
        env=cli_env(node.data_dir.parent), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        assert process.stderr is not None
        assert process.stderr.readline().startswith("following the events of the node")
        posted = run(node, "post", "seen on the stream").strip()
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == 0, err
    assert json.loads(out) == {"type": "user.action", "action": "post", "op": posted}


# -- a node from config.toml and the environment, stopped by `stop` ---------------------------


class Lines:
    """A process's stderr lines, read by a thread, waited for with a timeout."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stderr is not None
        stream = process.stderr
        threading.Thread(target=lambda: [self.lines.put(x) for x in stream],
                         daemon=True).start()

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            self.seen.append(line)
            if text in line:
                return line


def test_a_node_runs_from_its_config_file_and_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    assert cli(tmp_path, "init", "--data-dir", str(data_dir), "--network", NETWORK).returncode == 0
    with (data_dir / "config.toml").open("a") as file:
        file.write('name = "from-file"\npeer_host = "127.0.0.1"\npeer_port = 0\n'
                   "control_port = 0\nmdns = false\nhealth_interval_s = 0.2\n"
                   '[peering]\nlow = 1\nhigh = 3\n[transport]\nice_addresses = ["127.0.0.1"]\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "liberation_node", "run", "--data-dir", str(data_dir)],
        env=cli_env(tmp_path, LIBERATION_LOG_JSON="true", PYTHONUNBUFFERED="1"),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lines = Lines(process)
        up = json.loads(lines.wait_for(" up on network "))  # env: JSON logs
        assert up["level"] == "INFO"
        run_info = json.loads((data_dir / "run.json").read_text())
        assert run_info["peer_url"].startswith("http://127.0.0.1:")  # file: peer_host
        assert not run_info["control_url"].endswith(":7412")  # file: control_port = 0

        def health() -> dict[str, Any] | None:
            out = cli(tmp_path, "status", "--json", "--data-dir", str(data_dir)).stdout
            report: dict[str, Any] | None = json.loads(out)["health"]
            return report

        wait_until(lambda: health() is not None, 30, "a health check")  # every 0.2 s
        report = health()
        assert report is not None
        degree = report.get("checks", report)["degree"]
        assert (degree["low"], degree["high"]) == (1, 3)  # file: [peering]
        result = cli(tmp_path, "stop", "--data-dir", str(data_dir))
        assert (result.returncode, result.stderr) == (
            0, f"stopped the node for {data_dir} (pid {process.pid})\n")
        assert process.poll() == 0  # `stop` returned after the node had exited, cleanly
        assert not (data_dir / "run.json").exists()
        lines.wait_for('"msg": "stopped"', 10)  # it drained: the daemon's last word
    finally:
        if process.poll() is None:
            os.kill(process.pid, 9)
        process.communicate()
    result = cli(tmp_path, "stop", "--data-dir", str(data_dir))
    assert result.returncode == 3  # nothing left to stop
