"""The data directory (datadir.py): where it is, what it holds, and how it refuses."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from liberation_node import datadir
from liberation_node.datadir import DataDirError
from liberation_node.store import MIGRATIONS


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_secrets_readable_by_the_owner_only(tmp_path: Path) -> None:
    node_dir, created = datadir.init(tmp_path / "node")
    assert created
    assert mode(node_dir.path) == 0o700
    assert mode(node_dir.path / "identity.key") == 0o600
    assert mode(node_dir.path / "control.token") == 0o600
    assert len(node_dir.control_token()) == 64
    assert node_dir.config.values == {"network": "liberation"}
    assert node_dir.config.network == "liberation"


def test_init_never_overwrites(tmp_path: Path) -> None:
    first, _ = datadir.init(tmp_path, "lan-test")
    key = (tmp_path / "identity.key").read_bytes()
    again, created = datadir.init(tmp_path)
    assert not created
    assert again.identity.public_key == first.identity.public_key
    assert (tmp_path / "identity.key").read_bytes() == key
    assert again.config.network == "lan-test"
    with pytest.raises(DataDirError, match="belongs to network 'lan-test', not 'other'"):
        datadir.init(tmp_path, "other")


def test_where_the_data_dir_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    env = {"LIBERATION_DATA_DIR": "/from/env", "XDG_DATA_HOME": "/xdg"}
    assert datadir.resolve_path("/from/option", env) == Path("/from/option")
    assert datadir.resolve_path(None, env) == Path("/from/env")
    assert datadir.resolve_path(None, {"XDG_DATA_HOME": "/xdg"}) == Path("/xdg/liberation-node")
    home_default = tmp_path / "home" / ".local" / "share" / "liberation-node"
    assert datadir.resolve_path(None, {"XDG_DATA_HOME": "relative"}) == home_default
    assert datadir.resolve_path(None, {}) == home_default


@pytest.mark.parametrize("bits", [0o640, 0o604, 0o644])
def test_a_key_others_can_read_is_refused(tmp_path: Path, bits: int) -> None:
    datadir.init(tmp_path)
    (tmp_path / "identity.key").chmod(bits)
    with pytest.raises(DataDirError, match=rf"mode {bits:04o}.*chmod 600"):
        datadir.load(tmp_path)


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "this one has 0 bytes"),
    (b"ab" * 31 + b"\n", "this one has 31 bytes"),
    (b"not hex at all\n", "not hex text"),
    (b"\xff\xfe", "not hex text"),
])
def test_a_corrupt_key_is_refused(tmp_path: Path, content: bytes, problem: str) -> None:
    datadir.init(tmp_path)
    (tmp_path / "identity.key").write_bytes(content)
    with pytest.raises(DataDirError, match=rf"identity\.key is corrupt: .*{problem}"):
        datadir.load(tmp_path)


def test_a_missing_data_dir_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match=r"no data directory at .*liberation-node init"):
        datadir.load(tmp_path / "absent")
    with pytest.raises(DataDirError, match=r"has no identity\.key.*liberation-node init"):
        datadir.load(tmp_path)


@pytest.mark.parametrize(("text", "problem"), [
    ("network = [", "not valid TOML"),
    ('netwrok = "x"', "unknown setting 'netwrok'"),
    ('network = "Not Valid"', "is not a network name"),
    ("network = 7", "network: expected a string, got 7"),
])
def test_a_bad_config_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    datadir.init(tmp_path)
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(DataDirError, match=rf"config\.toml.*{problem}"):
        datadir.load(tmp_path)


async def test_a_store_from_a_newer_version_is_a_data_dir_error(tmp_path: Path) -> None:
    node_dir, _ = datadir.init(tmp_path)
    async with node_dir.open_store():
        pass
    with contextlib.closing(sqlite3.connect(node_dir.store_path)) as db, db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(DataDirError, match="upgrade liberation-node"):
        async with node_dir.open_store():
            pass


def test_one_process_holds_the_lock_until_it_lets_go(tmp_path: Path) -> None:
    node_dir, _ = datadir.init(tmp_path / "n")
    fd = datadir.lock(node_dir.path)
    try:
        # flock is per open file: a second open in this same process stands in for a
        # second process (the daemon test runs a real one).
        with pytest.raises(datadir.DataDirInUse, match=f"pid {os.getpid()}"):
            datadir.lock(node_dir.path)
    finally:
        os.close(fd)
    os.close(datadir.lock(node_dir.path))  # free again once the holder closed it


def test_a_key_is_never_made_beside_someone_elses_replica(tmp_path: Path) -> None:
    node_dir, _ = datadir.init(tmp_path / "n")
    (node_dir.path / datadir.STORE_FILE).write_bytes(b"SQLite format 3\0" + bytes(100))
    (node_dir.path / datadir.IDENTITY_FILE).unlink()
    with pytest.raises(datadir.DataDirError, match=r"no identity\.key"):
        datadir.init(node_dir.path)
    assert not (node_dir.path / datadir.IDENTITY_FILE).exists()


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_an_old_identity_on_a_missing_or_empty_replica_needs_recover(tmp_path: Path,
                                                                     state: str) -> None:
    node_dir, _ = datadir.init(tmp_path / "n")
    store = node_dir.path / datadir.STORE_FILE
    if state == "empty":
        store.write_bytes(b"")
    with pytest.raises(datadir.DataDirError, match=f"is {state}.*--recover"):
        datadir.check_replica(node_dir.path, new_identity=False, recover=False)
    datadir.check_replica(node_dir.path, new_identity=True, recover=False)  # a new key: fine
    datadir.check_replica(node_dir.path, new_identity=False, recover=True)
    assert not store.exists()  # an empty file is made room for a fresh store
