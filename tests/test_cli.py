"""The command line (cli.py), run as a user runs it: `python -m liberation_node ...`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from liberation_node import datadir
from liberation_node.core.bodies import Claim, Register
from liberation_node.core.identity import id_from_text
from liberation_node.core.ledger import (
    POOL_TOTAL_CENTS,
    REGISTER_GRANT_CENTS,
    WEEKLY_FLOW_CENTS,
    iso_week,
)
from liberation_node.core.replica import Replica

NOW = 1_795_000_000_000


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env.update(HOME=str(home), LIBERATION_DATA_DIR=str(home / "node"))
    return subprocess.run([sys.executable, "-m", "liberation_node", *args], env=env, cwd=home,
                          capture_output=True, text=True, timeout=60, check=False)


def test_init_prints_the_id_and_keeps_it(tmp_path: Path) -> None:
    first = cli(tmp_path, "init")
    assert first.returncode == 0, first.stderr
    node_id = first.stdout.strip()
    assert len(id_from_text(node_id)) == 32  # the full, checksummed text form
    assert "created" in first.stderr
    again = cli(tmp_path, "init")
    assert (again.returncode, again.stdout.strip()) == (0, node_id)
    assert "already exists" in again.stderr
    shown = cli(tmp_path, "id")
    assert (shown.returncode, shown.stdout.strip()) == (0, node_id)
    assert (tmp_path / "node" / "replica.sqlite3").exists()


async def test_summary_of_the_replica(tmp_path: Path) -> None:
    node_dir, _ = datadir.init(tmp_path / "node", "cli-test")
    replica = Replica("cli-test")
    ops = [replica.append(node_dir.identity, Register("me"), NOW).applied[0],
           replica.append(node_dir.identity, Claim(iso_week(NOW)), NOW + 1).applied[0]]
    async with node_dir.open_store() as store:
        await store.write(ops)
    result = cli(tmp_path, "summary", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary == {
        "node_id": node_dir.identity.text, "network": "cli-test",
        "data_dir": str(tmp_path / "node"), "ops": 2, "authors": 1, "records": 0,
        "digest": replica.digest().hex(), "humans": 1,
        "pool_available_cents": replica.ledger.pool_available,
    }
    assert replica.ledger.pool_available == \
        POOL_TOTAL_CENTS - REGISTER_GRANT_CENTS - WEEKLY_FLOW_CENTS  # printed below in dollars
    text = cli(tmp_path, "summary")
    assert text.returncode == 0, text.stderr
    assert f"node id    {node_dir.identity.text}\n" in text.stdout
    assert "pool       $18,999,999,791,200.00 available\n" in text.stdout
    assert "humans     1 registered\n" in text.stdout


@pytest.mark.parametrize(("setup", "args", "code", "message"), [
    ("none", ["id"], 1, "no data directory at"),
    ("none", ["id", "--data-dir", "elsewhere"], 1, "no data directory at elsewhere"),
    ("bad-key", ["run"], 1, "identity.key is corrupt"),
    ("open-key", ["id"], 1, "chmod 600"),
    ("bad-config", ["run"], 1, "config.toml is not valid TOML"),
    ("none", ["run", "--network", "Bad Name"], 2, "is not a network name"),
])
def test_errors_are_one_line_without_traceback(tmp_path: Path, setup: str, args: list[str],
                                               code: int, message: str) -> None:
    node = tmp_path / "node"
    if setup != "none":
        datadir.init(node)
    if setup == "bad-key":
        (node / "identity.key").write_text("0123\n")
    if setup == "open-key":
        (node / "identity.key").chmod(0o644)
    if setup == "bad-config":
        (node / "config.toml").write_text("network = ")
    result = cli(tmp_path, *args)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    if code == 1:
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")


def test_summary_of_a_missing_data_dir_creates_nothing(tmp_path: Path) -> None:
    # A typo in --data-dir must not make a new identity that nobody asked for.
    result = cli(tmp_path, "summary", "--data-dir", str(tmp_path / "nodee"))
    assert result.returncode == 1
    assert result.stderr == (f"Error: no data directory at {tmp_path / 'nodee'}; create one "
                             f"with: liberation-node init --data-dir {tmp_path / 'nodee'}\n")
    assert not (tmp_path / "nodee").exists()
