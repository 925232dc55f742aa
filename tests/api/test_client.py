"""The CLI's commands that talk to a running node (api/client.py, cli.py), run as a
user runs them, against a control port served by this test on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from liberation_node import datadir
from liberation_node.api import runfile
from liberation_node.api.control import control_app

from .fakes import ME, NETWORK, OTHER, ReplicaNode


def env(home: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if k not in ("XDG_DATA_HOME", datadir.ENV_DATA_DIR)}
    out["HOME"] = str(home)
    return out


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "liberation_node", *args], env=env(home),
                          cwd=home, capture_output=True, text=True, timeout=60, check=False)


async def acli(home: Path, *args: str) -> tuple[int, str, str]:
    """`cli` without blocking the loop that serves the node."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "liberation_node", *args, env=env(home), cwd=home,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def not_running(path: Path) -> str:
    return (f"Error: no node is running for {path} (start one with: liberation-node run "
            f"--data-dir {path})\n")


def test_a_crashed_node_is_not_running(tmp_path: Path) -> None:
    node_dir, _ = datadir.init(tmp_path / "node", NETWORK)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    runfile.write(node_dir.path, pid=int(child.stdout), control_url="http://127.0.0.1:1",
                  peer_url="")
    result = cli(tmp_path, "status", "--data-dir", str(node_dir.path))
    assert (result.returncode, result.stderr) == (3, not_running(node_dir.path))


def test_a_closed_port_is_not_running(tmp_path: Path) -> None:
    node_dir, _ = datadir.init(tmp_path / "node", NETWORK)
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    runfile.write(node_dir.path, pid=os.getpid(), control_url=f"http://127.0.0.1:{free}",
                  peer_url="")
    result = cli(tmp_path, "status", "--data-dir", str(node_dir.path))
    assert (result.returncode, result.stderr) == (3, not_running(node_dir.path))


@pytest.fixture
def node() -> ReplicaNode:
    return ReplicaNode()


@pytest.fixture
async def served(tmp_path: Path, node: ReplicaNode) -> AsyncIterator[Path]:
    """A data directory whose run.json points at a control port this test serves."""
    node_dir, _ = datadir.init(tmp_path / "node", NETWORK)
    server = TestServer(control_app(node, node_dir.control_token()))
    await server.start_server()
    runfile.write(node_dir.path, pid=os.getpid(), control_url=str(server.make_url("/")),
                  peer_url="http://127.0.0.1:1/v1/signal")
    try:
        yield node_dir.path
    finally:
        await server.close()


async def test_status(tmp_path: Path, served: Path, node: ReplicaNode) -> None:
    node.peer_list = [{"id": OTHER.text, "rtt_ms": 12, "address": "127.0.0.1:5000"}]
    code, out, err = await acli(tmp_path, "status", "--json", "--data-dir", str(served))
    assert (code, err) == (0, "")
    assert json.loads(out) == node.status()
    code, out, err = await acli(tmp_path, "status", "--data-dir", str(served))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["node", ME.text]
    assert lines[1].split() == ["network", NETWORK, "version", "0.1.0", "up", "12s"]
    assert lines[3].split() == ["peers", "1", "connected"]
    assert lines[4].split() == [OTHER.text, "rtt", "12", "ms", "127.0.0.1:5000"]
    assert f"digest    {node.replica.digest().hex()}" in lines


async def test_a_node_on_every_address_is_reached_on_loopback(tmp_path: Path, served: Path,
                                                             node: ReplicaNode) -> None:
    info = runfile.read(served)
    assert info is not None
    port = info.control_url.rstrip("/").rsplit(":", 1)[1]
    runfile.write(served, pid=os.getpid(), control_url=f"http://0.0.0.0:{port}", peer_url="")
    code, out, err = await acli(tmp_path, "status", "--json", "--data-dir", str(served))
    assert (code, err) == (0, "")
    assert json.loads(out)["node_id"] == ME.text


async def test_writes_print_op_ids(tmp_path: Path, served: Path, node: ReplicaNode) -> None:
    async def run(*args: str) -> str:
        code, out, err = await acli(tmp_path, *args, "--data-dir", str(served))
        assert (code, err) == (0, "")
        op_id = out.strip()
        assert bytes.fromhex(op_id) in node.replica.ops
        return op_id

    await run("register", "ada")
    await run("claim")
    paid = await run("transfer", OTHER.text, "12.5", "--memo", "lunch")
    paid_cents = await run("transfer", OTHER.text, "7", "--cents")
    hello = await run("post", "hello", "--priority", "3")
    psst = await run("post", "psst", "--to", OTHER.text)
    await run("retract", hello)
    views = node.views()
    assert views.humans[0].name == "ada"
    amounts = {t.id: (t.amount, t.memo) for t in views.transactions}
    assert amounts[paid] == (1250, "lunch")
    assert amounts[paid_cents] == (7, "")
    messages = {m.id: m for m in views.truth_messages}
    assert (messages[hello].priority, messages[hello].channel, messages[hello].active) == \
        (3, "social", False)
    assert (messages[psst].channel, messages[psst].to) == ("direct", OTHER.text)


@pytest.mark.parametrize(("args", "error"), [
    (["claim"], "Error: register first (human.register) (HTTP 409)\n"),
    (["transfer", "lnnotanid", "1"], "Error: to: a node id has the wrong length (HTTP 400)\n"),
    (["post", "x" * 5000], "Error: text: 1 to 4096 bytes of UTF-8 (HTTP 400)\n"),
])
async def test_refusals_are_one_line(tmp_path: Path, served: Path, args: list[str],
                                     error: str) -> None:
    code, out, err = await acli(tmp_path, *args, "--data-dir", str(served))
    assert (code, out, err) == (1, "", error)


async def test_a_wrong_token_is_one_line(tmp_path: Path, node: ReplicaNode) -> None:
    node_dir, _ = datadir.init(tmp_path / "node", NETWORK)
    app: web.Application = control_app(node, "not-the-token")
    server = TestServer(app)
    await server.start_server()
    try:
        runfile.write(node_dir.path, pid=os.getpid(), control_url=str(server.make_url("/")),
                      peer_url="")
        code, out, err = await acli(tmp_path, "claim", "--data-dir", str(node_dir.path))
    finally:
        await server.close()
    assert (code, out) == (1, "")
    assert err.startswith("Error: a valid 'Authorization: Bearer <control token>' is required")
    assert err.endswith("(HTTP 401)\n") and err.count("\n") == 1
