"""A command that talks to the running node loads none of the daemon's heavy modules.

How fast the commands are is measured by scripts/bench_cli.py; this checks the
cause of slowness that code changes bring back unnoticed: imports. Each command
runs as a user runs it, under `python -X importtime`, against a control port
that answers (tests/cli/fake_api.py), and every module it imported is listed.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.fakes import OTHER

from .conftest import cli_env

# The daemon's stack: the HTTP server and client, WebRTC, crypto, msgpack, SQLite,
# the event loop, and the protocol core (no reading command needs it).
HEAVY = ("aiohttp", "yarl", "multidict", "aiortc", "av", "aioice", "nacl", "cryptography",
         "msgpack", "aiosqlite", "sqlite3", "asyncio", "uvloop", "zeroconf",
         "liberation_node.core", "liberation_node.store", "liberation_node.node",
         "liberation_node.transport", "liberation_node.config")


def imported(stderr: str) -> set[str]:
    """Module names from `-X importtime` lines ("import time: self | cumulative | name")."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    return names


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


async def run_timed(home: Path, *args: str) -> tuple[int, str, set[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-X", "importtime", "-m", "liberation_node", *args, env=cli_env(home),
        cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), imported(err.decode())


@pytest.mark.parametrize("command", [
    ["status"], ["status", "--json"], ["peers"], ["feed"], ["ledger"], ["balance"],
    ["topology"], ["address"], ["post", "hello"], ["claim"], ["register", "ada"],
    ["transfer", OTHER.text, "1.50"], ["retract", "ab" * 32], ["open", "--no-browser"],
], ids=lambda c: " ".join(c)[:20])
async def test_commands_that_talk_to_the_node_stay_light(tmp_path: Path, served: Path,
                                                         command: list[str]) -> None:
    code, out, modules = await run_timed(tmp_path, *command, "--data-dir", str(served))
    assert code == 0 and out
    assert "liberation_node.api.client" in modules  # it did talk to the node
    assert heavy(modules) == []


def test_version_stays_light(tmp_path: Path) -> None:
    for args in (["--version"], ["status", "--help"]):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", "liberation_node",
                                 *args], env=cli_env(tmp_path), capture_output=True, text=True,
                                check=True, timeout=60)
        assert result.stdout
        assert heavy(imported(result.stderr)) == []


def test_the_check_sees_heavy_imports(tmp_path: Path) -> None:
    # The daemon's command does load the stack: the check is not blind.
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "liberation_node",
                             "summary", "--data-dir", str(tmp_path / "none")],
                            env=cli_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert heavy(imported(result.stderr)) == []  # it failed before needing the stack
    result = subprocess.run([sys.executable, "-X", "importtime", "-c",
                             "import liberation_node.node"], capture_output=True, text=True,
                            check=True, timeout=60)
    assert {"aiohttp", "nacl", "msgpack", "liberation_node.core"} <= set(
        heavy(imported(result.stderr)))
