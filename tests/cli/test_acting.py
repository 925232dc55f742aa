"""The commands that act: writes, `events`, `open`, `stop`; and every command when no node
runs (exit status 3, a message naming the data directory)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from liberation_node import cli as cli_module
from liberation_node import datadir
from liberation_node.api import runfile
from liberation_node.commands import feed
from liberation_node.core import bodies
from tests.api.fakes import ME, NETWORK, OTHER

from .conftest import acli, cli, cli_env
from .fake_api import FakeApi, message

NODE_COMMANDS = [["status"], ["peers"], ["feed"], ["post", "hi"], ["ledger"], ["balance"],
                 ["balance", OTHER.text], ["claim"], ["register", "ada"],
                 ["transfer", OTHER.text, "1"], ["retract", "ab" * 32], ["topology"],
                 ["events"], ["stop"], ["open"]]


def test_every_command_is_tested_for_no_node() -> None:
    local = {"init", "id", "run", "summary", "simulate", "config", "address"}
    assert set(cli_module.main.list_commands(None)) - local == {c[0] for c in NODE_COMMANDS}  # type: ignore[arg-type]


@pytest.mark.parametrize("command", NODE_COMMANDS, ids=lambda c: " ".join(c)[:20])
@pytest.mark.parametrize("as_json", [False, True])
def test_no_node_running(tmp_path: Path, command: list[str], as_json: bool) -> None:
    data_dir = tmp_path / "node"
    datadir.init(data_dir, NETWORK)
    reading = command[0] in ("status", "peers", "feed", "ledger", "balance", "topology")
    extra = ["--json"] if as_json and reading else []
    result = cli(tmp_path, *command, *extra, "--data-dir", str(data_dir))
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == (f"Error: no node is running for {data_dir} (start one with: "
                             f"liberation-node run --data-dir {data_dir})\n")


def test_no_node_running_names_the_data_dir_from_the_environment(tmp_path: Path) -> None:
    result = cli(tmp_path, "status", LIBERATION_DATA_DIR=str(tmp_path / "elsewhere"))
    assert result.returncode == 3
    assert result.stderr == (f"Error: no node is running for {tmp_path / 'elsewhere'} (start "
                             f"one with: LIBERATION_DATA_DIR={tmp_path / 'elsewhere'} "
                             "liberation-node run)\n")
    result = cli(tmp_path, "status")
    default = tmp_path / ".local" / "share" / "liberation-node"
    assert (result.returncode, result.stderr) == (3, f"Error: no node is running for "
                                                     f"{default} (start one with: "
                                                     "liberation-node run)\n")
    assert not default.exists()  # asking created nothing


def test_a_crashed_node_is_not_running(tmp_path: Path) -> None:
    node_dir, _ = datadir.init(tmp_path / "node", NETWORK)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    runfile.write(node_dir.path, pid=int(child.stdout), control_url="http://127.0.0.1:1",
                  peer_url="")
    assert cli(tmp_path, "status", "--data-dir", str(node_dir.path)).returncode == 3


def test_channels_and_priorities_agree_with_the_core() -> None:
    assert feed.CHANNELS == bodies.CHANNELS
    assert (feed.MIN_PRIORITY, feed.MAX_PRIORITY) == (bodies.MIN_PRIORITY, bodies.MAX_PRIORITY)


# -- writes ---------------------------------------------------------------------------------


async def test_writes_send_what_the_contract_says(tmp_path: Path, served: Path,
                                                  api: FakeApi) -> None:
    async def run(*args: str) -> str:
        code, out, err = await acli(tmp_path, *args, "--data-dir", str(served))
        assert (code, err) == (0, "")
        return out.strip()

    ids = [await run("register", "ada"), await run("claim"),
           await run("transfer", OTHER.text, "12.5", "--memo", "lunch"),
           await run("transfer", OTHER.text, "7", "--cents"),
           await run("post", "hello", "--priority", "3"),
           await run("post", "psst", "--to", OTHER.text),
           await run("retract", "cd" * 32)]
    assert ids == [f"{n:064x}" for n in range(1, 8)]
    assert api.writes == [
        ("/api/v1/register", {"name": "ada"}),
        ("/api/v1/ledger/claim", None),
        ("/api/v1/ledger/transfer", {"to": OTHER.text, "amount_cents": 1250, "memo": "lunch"}),
        ("/api/v1/ledger/transfer", {"to": OTHER.text, "amount_cents": 7, "memo": ""}),
        ("/api/v1/messages", {"text": "hello", "channel": "social", "priority": 3}),
        ("/api/v1/messages", {"text": "psst", "channel": "direct", "priority": 1,
                              "to": OTHER.text}),
        ("/api/v1/messages/" + "cd" * 32 + "/retract", None)]


async def test_a_refusal_is_one_line(tmp_path: Path, served: Path, api: FakeApi) -> None:
    api.refuse = "insufficient balance"
    code, out, err = await acli(tmp_path, "transfer", OTHER.text, "5", "--data-dir", str(served))
    assert (code, out, err) == (1, "", "Error: insufficient balance (HTTP 409)\n")


async def test_retract_by_the_start_of_an_id(tmp_path: Path, served: Path,
                                             api: FakeApi) -> None:
    api.messages = [message(1, ME.text, "ada", "mine"), message(2, OTHER.text, "bob", "theirs"),
                    message(0x11, ME.text, "ada", "also mine")]
    code, out, err = await acli(tmp_path, "retract", "010101", "--data-dir", str(served))
    assert (code, err) == (0, "")
    assert api.writes[-1] == ("/api/v1/messages/" + "01" * 32 + "/retract", None)
    assert f"GET /api/v1/messages?limit=500&author={ME.text}&state=active" in api.requests
    code, out, err = await acli(tmp_path, "retract", "020202", "--data-dir", str(served))
    assert (code, out, err) == (1, "", "Error: no active post of yours starts with 020202\n")
    api.messages.append(message(1, ME.text, "ada", "same start"))
    code, out, err = await acli(tmp_path, "retract", "010101", "--data-dir", str(served))
    assert (code, out, err) == (1, "", "Error: 2 of your posts start with 010101: give more "
                                       "of the id\n")


@pytest.mark.parametrize("op_id", ["../../status", "abc", "xyzxyzxyz", "a" * 65])
def test_retract_checks_the_id_first(tmp_path: Path, op_id: str) -> None:
    result = cli(tmp_path, "retract", "--data-dir", str(tmp_path / "n"), "--", op_id)
    assert result.returncode == 2
    assert "Invalid value for OP_ID" in result.stderr


@pytest.mark.parametrize("amount", ["1.234", "-1", "0", "0.00", "1e3", "1,000", "$5", ""])
def test_amounts_are_checked_before_calling(tmp_path: Path, amount: str) -> None:
    result = cli(tmp_path, "transfer", "--data-dir", str(tmp_path / "n"), "--", OTHER.text,
                 amount)
    assert result.returncode == 2
    assert "Invalid value for AMOUNT" in result.stderr


# -- events ---------------------------------------------------------------------------------


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT at its default, as in a terminal: a test suite started in the background
    by a shell without job control inherits SIGINT ignored, and so would `events`
    (Python keeps an ignored SIGINT ignored), which then never saw the test's Ctrl-C
    and outlived it (test_events_stop_on_ctrl_c, 30 s, then a timeout)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.asynccontextmanager
async def follow(tmp_path: Path, served: Path, *args: str
                 ) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """Start `events` and wait until it says it follows (its first stderr line). A test
    that fails leaves no process behind (nor its pipes, for the next test to trip on)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "liberation_node", "events", *args, "--data-dir", str(served),
        env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=_ctrl_c_as_in_a_terminal)
    try:
        assert process.stderr is not None
        first = await asyncio.wait_for(process.stderr.readline(), 30)
        yield process, first.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


async def test_events_follow_the_stream(tmp_path: Path, served: Path, api: FakeApi) -> None:
    async with follow(tmp_path, served, "--json", "--count", "2",
                      "--type", "truth.", "--type", "user.") as (process, first):
        assert first == f"following the events of the node for {served} (Ctrl-C stops)\n"
        events = [{"type": "mesh.node.connected", "peer": OTHER.text},
                  {"type": "truth.spread", "op": "ab" * 32, "author": OTHER.text},
                  {"type": "user.action", "action": "post", "op": "cd" * 32},
                  {"type": "truth.spread", "op": "ef" * 32, "author": ME.text}]
        for event in events:
            api.events.put_nowait(event)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    assert [json.loads(line) for line in out.decode().splitlines()] == events[1:3]


async def test_events_as_text_until_the_node_closes(tmp_path: Path, served: Path,
                                                    api: FakeApi) -> None:
    async with follow(tmp_path, served) as (process, _):
        api.events.put_nowait({"type": "truth.spread", "op": "ab" * 32,
                               "author": OTHER.text})
        api.events.put_nowait({"type": "system.health.check", "ok": True,
                               "loop": {"ok": True}})
        api.events.put_nowait(None)  # the node stops: it closes the stream
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    first, second = out.decode().splitlines()
    assert first.split()[1:] == ["truth.spread", "op=" + "ab" * 6, "author=" + OTHER.text[:10]]
    assert second.split()[1:] == ["system.health.check", "ok=True", 'loop={"ok":true}']
    assert err.decode() == "the node closed the event stream (it is stopping)\n"


async def test_events_stop_on_ctrl_c(tmp_path: Path, served: Path, api: FakeApi) -> None:
    async with follow(tmp_path, served) as (process, _):
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert (process.returncode, out, err) == (0, b"", b"")


async def test_events_with_a_wrong_token(tmp_path: Path, served: Path, api: FakeApi) -> None:
    api.token = "another"
    code, out, err = await acli(tmp_path, "events", "--data-dir", str(served))
    assert (code, out) == (1, "")
    assert err == ("Error: a valid 'Authorization: Bearer <control token>' is required "
                   "(HTTP 401)\n")


# -- open -----------------------------------------------------------------------------------


def browser(tmp_path: Path) -> tuple[str, Path]:
    """A $BROWSER that writes down the URL it was asked to open."""
    seen = tmp_path / "opened"
    script = tmp_path / "browser"
    script.write_text(f"#!/bin/sh\nprintf '%s' \"$1\" > {seen}\n")
    script.chmod(0o755)
    return f"{script} %s", seen


async def test_open_prints_the_link_and_opens_a_browser(tmp_path: Path, served: Path,
                                                        api: FakeApi) -> None:
    command, seen = browser(tmp_path)
    code, out, err = await acli(tmp_path, "open", "--data-dir", str(served), BROWSER=command)
    assert (code, out, err) == (0, api.login_url + "\n", "")
    assert "POST /api/v1/login" in api.requests
    assert seen.read_text() == api.login_url


async def test_open_without_a_browser_only_prints(tmp_path: Path, served: Path,
                                                  api: FakeApi) -> None:
    command, seen = browser(tmp_path)
    code, out, err = await acli(tmp_path, "open", "--no-browser", "--data-dir", str(served),
                                BROWSER=command)
    assert (code, out, err) == (0, api.login_url + "\n", "")
    code, out, err = await acli(tmp_path, "open", "--data-dir", str(served))  # no desktop
    assert (code, out, err) == (0, api.login_url + "\n", "")
    assert not seen.exists()


async def test_open_refuses_a_link_that_is_not_one(tmp_path: Path, served: Path,
                                                   api: FakeApi) -> None:
    api.login_url = "javascript:alert(1)"
    code, out, err = await acli(tmp_path, "open", "--data-dir", str(served))
    assert (code, out) == (1, "")
    assert err == "Error: the node answered /api/v1/login without a login link\n"


# -- stop -----------------------------------------------------------------------------------

SLEEPER = """
import pathlib, signal, sys, time
def stop(signum, frame):
    pathlib.Path(sys.argv[1]).write_text("SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(120)
"""


def sleeper(tmp_path: Path, name: str) -> tuple[subprocess.Popen[str], Path]:
    """A process that records the SIGTERM it gets; `name` is its script's file name."""
    script = tmp_path / name
    script.write_text(SLEEPER)
    mark = tmp_path / f"{name}.got"
    process = subprocess.Popen([sys.executable, str(script), str(mark)], text=True,
                               stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process, mark


def test_stop_sends_sigterm_and_waits(tmp_path: Path) -> None:
    node_dir, _ = datadir.init(tmp_path / "node", NETWORK)
    process, mark = sleeper(tmp_path, "liberation_node_standin.py")
    try:
        runfile.write(node_dir.path, pid=process.pid, control_url="http://127.0.0.1:1",
                      peer_url="")
        result = cli(tmp_path, "stop", "--data-dir", str(node_dir.path))
        assert result.returncode == 0, result.stderr
        assert result.stderr == f"stopped the node for {node_dir.path} (pid {process.pid})\n"
        assert mark.read_text() == "SIGTERM"  # written before it exited: stop waited
    finally:
        process.kill()
        process.communicate()  # reaps it and closes its pipe


def test_stop_leaves_a_process_that_is_not_a_node_alone(tmp_path: Path) -> None:
    # run.json left by a crash, its pid since reused by some other program
    node_dir, _ = datadir.init(tmp_path / "node", NETWORK)
    process, mark = sleeper(tmp_path, "unrelated.py")
    try:
        runfile.write(node_dir.path, pid=process.pid, control_url="http://127.0.0.1:1",
                      peer_url="")
        result = cli(tmp_path, "stop", "--data-dir", str(node_dir.path))
        assert result.returncode == 1
        assert f"process {process.pid} named in" in result.stderr
        assert "is not a liberation-node; not stopping it" in result.stderr
        assert process.poll() is None and not mark.exists()
    finally:
        process.kill()
        process.communicate()  # reaps it and closes its pipe


def test_stop_gives_up_after_the_timeout(tmp_path: Path) -> None:
    node_dir, _ = datadir.init(tmp_path / "node", NETWORK)
    script = tmp_path / "liberation_stubborn.py"
    script.write_text("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                      "print('ready', flush=True)\ntime.sleep(120)\n")
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        runfile.write(node_dir.path, pid=process.pid, control_url="http://127.0.0.1:1",
                      peer_url="")
        result = cli(tmp_path, "stop", "--timeout", "0.2", "--data-dir", str(node_dir.path))
        assert result.returncode == 1
        assert result.stderr == (f"Error: the node (pid {process.pid}) is still running after "
                                 f"0.2 s; `kill -KILL {process.pid}` forces it\n")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate()
