"""Fixtures for the CLI tests: a data directory whose run.json points at a control port
served by the test (the contract's fake, tests/cli/fake_api.py), and ways to run the
command as a user does, in a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from liberation_node import datadir
from liberation_node.api import runfile
from tests.api.fakes import NETWORK

from .fake_api import FakeApi


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with HOME `home` and nothing of ours set."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LIBERATION_") and k not in ("XDG_DATA_HOME", "BROWSER",
                                                           "DISPLAY", "WAYLAND_DISPLAY")}
    return {**env, "HOME": str(home), **extra}


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "liberation_node", *args],
                          env=cli_env(home, **env), cwd=home, capture_output=True, text=True,
                          timeout=60, check=False)


async def acli(home: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """`cli` without blocking the loop that serves the node."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "liberation_node", *args, env=cli_env(home, **env), cwd=home,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
async def served(tmp_path: Path, api: FakeApi) -> AsyncIterator[Path]:
    """A data directory whose run.json points at `api`, served on 127.0.0.1."""
    node_dir, _ = datadir.init(tmp_path / "node", NETWORK)
    api.token = node_dir.control_token()
    server = TestServer(api.app(), host="127.0.0.1")
    await server.start_server()
    runfile.write(node_dir.path, pid=os.getpid(), control_url=str(server.make_url("")),
                  peer_url="http://127.0.0.1:1/v1/signal")
    try:
        yield node_dir.path
    finally:
        api.events.put_nowait(None)
        await server.close()
