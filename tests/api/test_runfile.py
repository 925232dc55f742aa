"""<data dir>/run.json (api/runfile.py): written whole and private, trusted only while
its process lives."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liberation_node.api import runfile
from liberation_node.api.runfile import RUN_FILE, RunInfo


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


def write(path: Path, pid: int | None = None) -> RunInfo:
    return runfile.write(path, pid=os.getpid() if pid is None else pid,
                         control_url="http://127.0.0.1:7410", peer_url="http://0.0.0.0:7411",
                         started_at=1_795_000_000_000)


def test_write_then_read(tmp_path: Path) -> None:
    info = write(tmp_path)
    assert runfile.read(tmp_path) == info == RunInfo(os.getpid(), "http://127.0.0.1:7410",
                                                     "http://0.0.0.0:7411", 1_795_000_000_000)
    assert json.loads((tmp_path / RUN_FILE).read_text()) == {
        "pid": os.getpid(), "control_url": "http://127.0.0.1:7410",
        "peer_url": "http://0.0.0.0:7411", "started_at": 1_795_000_000_000}
    assert [p.name for p in tmp_path.iterdir()] == [RUN_FILE]  # no temporary file left


def test_the_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / RUN_FILE).stat().st_mode) == 0o600


def test_started_at_defaults_to_now(tmp_path: Path) -> None:
    info = runfile.write(tmp_path, pid=1, control_url="c", peer_url="p")
    assert abs(info.started_at / 1000 - time.time()) < 60


def test_write_replaces(tmp_path: Path) -> None:
    write(tmp_path, pid=1)
    assert write(tmp_path).pid == os.getpid()
    assert runfile.read(tmp_path) is not None


def test_missing_is_none(tmp_path: Path) -> None:
    assert runfile.read(tmp_path) is None
    assert runfile.read(tmp_path / "nowhere") is None


def test_a_dead_process_is_none(tmp_path: Path) -> None:
    write(tmp_path, pid=dead_pid())
    assert runfile.read(tmp_path) is None


@pytest.mark.parametrize("text", ["", "{", "[]", '{"pid": 1}', '{"pid": "1", "control_url": '
                                  '"c", "peer_url": "p", "started_at": 1}',
                                  '{"pid": 1, "control_url": "c", "peer_url": "p", '
                                  '"started_at": 1, "extra": 1}'])
def test_a_corrupt_file_is_none(tmp_path: Path, text: str) -> None:
    (tmp_path / RUN_FILE).write_text(text)
    assert runfile.read(tmp_path) is None


@pytest.mark.parametrize("pid", [0, -1])
def test_process_groups_are_not_processes(pid: int) -> None:
    assert not runfile.pid_alive(pid)


def test_pid_alive() -> None:
    assert runfile.pid_alive(os.getpid())
    assert runfile.pid_alive(1)  # init, always there (EPERM would count as alive too)
    assert not runfile.pid_alive(dead_pid())


def test_remove_only_our_own(tmp_path: Path) -> None:
    write(tmp_path, pid=1)
    runfile.remove(tmp_path)  # not ours: another node's file stays
    assert (tmp_path / RUN_FILE).exists()
    runfile.remove(tmp_path, pid=1)
    assert not (tmp_path / RUN_FILE).exists()
    write(tmp_path)
    runfile.remove(tmp_path)
    assert not (tmp_path / RUN_FILE).exists()
    runfile.remove(tmp_path)  # already gone: fine
    (tmp_path / RUN_FILE).write_text("{")
    runfile.remove(tmp_path)  # corrupt: nobody's, removed
    assert not (tmp_path / RUN_FILE).exists()
