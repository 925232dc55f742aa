"""Durability with real daemons (issue #7, DESIGN §8, protocols/sync.md §10): an
acknowledged write survives SIGKILL, a node never forks its own feed (not after
a crash, a restored backup, or a second process on its data directory), a full
disk pauses writes without losing any, and start-up failures are one line.

Each test cleans up its processes (by PID)."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .harness import Daemon, converged, run_args, start, wait_until

_READ = """
import json, sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(json.dumps([[bytes(i).hex(), bytes(a).hex(), s]
                  for i, a, s in db.execute("SELECT id, author, seq FROM ops")]))
"""


def stored(store: Path, mount_ns_of: int | None = None) -> dict[bytes, tuple[bytes, int]]:
    """Op id -> (author, seq) of what an SQLite store file holds (read-only). With
    `mount_ns_of` (a pid), the file is read inside that process's mount namespace
    (SQLite resolves symbolic links such as /proc/PID/root, so it cannot go through it)."""
    if mount_ns_of is None:
        db = sqlite3.connect(f"{store.absolute().as_uri()}?mode=ro", uri=True)
        try:
            return {bytes(i): (bytes(a), s)
                    for i, a, s in db.execute("SELECT id, author, seq FROM ops")}
        finally:
            db.close()
    out = subprocess.run(["nsenter", "--target", str(mount_ns_of), "--mount", sys.executable,
                          "-c", _READ, str(store)], capture_output=True, text=True, check=True)
    return {bytes.fromhex(i): (bytes.fromhex(a), s) for i, a, s in json.loads(out.stdout)}


def forensic(store: Path) -> int:
    """Ops a fork voided (store/base.py): any at all means some author equivocated."""
    db = sqlite3.connect(f"{store.absolute().as_uri()}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM excluded_ops").fetchone()[0])
    finally:
        db.close()


def integrity(store: Path) -> str:
    db = sqlite3.connect(store)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def writable(d: Daemon) -> bool:
    return bool(d.status()["writable"])


class Writer(threading.Thread):
    """Posts through one node's API as fast as it answers; remembers what got a 201."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.node: Daemon | None = None
        self.acked: list[bytes] = []
        self.refused: dict[int, int] = {}
        self.stop = threading.Event()
        self.n = 0

    def run(self) -> None:
        while not self.stop.is_set():
            node = self.node
            if node is None:
                time.sleep(0.01)
                continue
            self.n += 1
            try:
                status, body = node.call("POST", "/api/v1/messages",
                                         {"text": f"write {self.n}"}, timeout=5)
            except OSError:  # the node is down (killed) or not up yet
                time.sleep(0.01)
                continue
            if status == 201:
                self.acked.append(bytes.fromhex(body["id"]))
            else:
                self.refused[status] = self.refused.get(status, 0) + 1


def test_acknowledged_writes_survive_sigkill_and_no_restart_forks(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    peer = start(daemons, tmp_path, "peer")
    rng = random.Random(7)
    writer = Writer()
    writer.start()
    kills = 0
    node: Daemon | None = None
    try:
        for _ in range(20):
            node = Daemon(tmp_path / "victim", name="victim", bootstrap=[peer.peer_url])
            daemons.append(node)
            node.start()
            me = node.status()["node_id"]
            wait_until(lambda n=node: writable(n), 30, "the restarted node to check its feed")
            writer.node = node
            before = len(writer.acked)
            wait_until(lambda b=before: len(writer.acked) > b + 5, 30, "some writes")
            time.sleep(rng.uniform(0, 0.3))  # the fault lands at a random moment
            node.kill()  # SIGKILL, in the middle of writes
            writer.node = None
            kills += 1
            store = tmp_path / "victim" / "replica.sqlite3"
            assert integrity(store) == "ok"
            held = stored(store)
            missing = [op for op in writer.acked if op not in held]
            assert missing == [], f"kill {kills}: {len(missing)} acknowledged ops not on disk"
            own = sorted(seq for author, seq in held.values() if author.hex() == _hex(me))
            assert own == list(range(1, len(own) + 1))  # a gap-free chain, no fork
        node = Daemon(tmp_path / "victim", name="victim", bootstrap=[peer.peer_url])
        daemons.append(node)
        node.start()
        wait_until(lambda: converged([node, peer]), 30, "the peer to hold everything")
    finally:
        writer.stop.set()
        writer.join(10)
    at_peer = stored(tmp_path / "peer" / "replica.sqlite3")
    assert [op for op in writer.acked if op not in at_peer] == []
    assert forensic(tmp_path / "peer" / "replica.sqlite3") == 0
    assert forensic(tmp_path / "victim" / "replica.sqlite3") == 0
    for d in (node, peer):
        assert not any("equivocated" in line for line in d.read_log())
    print(f"\n{kills} kills, {len(writer.acked)} acknowledged writes, 0 lost; "
          f"refused meanwhile: {writer.refused}")


def _hex(text_id: str) -> str:
    from liberation_node.core.identity import id_from_text

    return id_from_text(text_id).hex()


def test_a_restored_backup_waits_for_its_own_feed_and_never_forks(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    peer = start(daemons, tmp_path, "peer")
    node = start(daemons, tmp_path, "node", bootstrap=[peer.peer_url])
    for i in range(5):
        node.api("POST", "/api/v1/messages", {"text": f"before the backup {i}"})
    wait_until(lambda: converged([node, peer], ops=5), 30, "the peer to hold the first ops")
    backup = tmp_path / "backup"
    shutil.copytree(node.data_dir, backup, ignore=shutil.ignore_patterns("run.json", "lock"))
    for i in range(10):
        node.api("POST", "/api/v1/messages", {"text": f"after the backup {i}"})
    wait_until(lambda: converged([node, peer], ops=15), 30, "the peer to hold all 15")
    node.kill()
    shutil.rmtree(node.data_dir)
    shutil.copytree(backup, node.data_dir)

    restored = Daemon(node.data_dir, name="node", bootstrap=[peer.peer_url])
    daemons.append(restored)
    restored.start()
    status, body = restored.call("POST", "/api/v1/messages", {"text": "too early"})
    assert status == 503 and "own feed" in body["error"]
    wait_until(lambda: writable(restored), 30, "the own feed to be checked with the peer")
    assert restored.status()["ops"] == 15  # the 10 ops the backup lacked came back first
    restored.api("POST", "/api/v1/messages", {"text": "after the restore"})
    wait_until(lambda: converged([restored, peer], ops=16), 30, "both to hold 16 ops")
    assert forensic(peer.data_dir / "replica.sqlite3") == 0
    assert any("behind the network by 10" in line for line in restored.read_log())
    assert not any("equivocated" in line for line in restored.read_log() + peer.read_log())


def test_a_second_node_on_one_data_dir_exits_at_once(tmp_path: Path,
                                                      daemons: list[Daemon]) -> None:
    first = start(daemons, tmp_path, "n")
    pid = first.run["pid"]
    second = subprocess.run(run_args(first.data_dir), capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"pid {pid}" in lines[0] and first.run["control_url"] in lines[0]
    assert "--data-dir" in lines[0] and "Traceback" not in second.stderr
    assert first.call("POST", "/api/v1/messages", {"text": "still here"})[0] == 201
    assert (first.data_dir / "run.json").exists()  # the second did not remove it


@pytest.mark.parametrize("damage", ["garbage", "empty", "missing"])
def test_a_bad_replica_is_one_line_and_exit_1(tmp_path: Path, daemons: list[Daemon],
                                              damage: str) -> None:
    d = start(daemons, tmp_path, "n")
    d.api("POST", "/api/v1/messages", {"text": "hello"})
    d.stop()
    store = d.data_dir / "replica.sqlite3"
    for extra in ("-wal", "-shm"):
        Path(f"{store}{extra}").unlink(missing_ok=True)
    if damage == "garbage":
        store.write_bytes(b"this is not a database" * 100)
    elif damage == "empty":
        store.write_bytes(b"")
    else:
        store.unlink()
    result = subprocess.run(run_args(d.data_dir), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    if damage == "garbage":
        assert "is not a liberation-node store" in lines[0]
    else:
        assert f"is {damage}" in lines[0] and "--recover" in lines[0]
        assert not store.exists() or store.stat().st_size == 0  # nothing made afresh


def test_recover_rebuilds_the_replica_from_a_peer(tmp_path: Path,
                                                  daemons: list[Daemon]) -> None:
    peer = start(daemons, tmp_path, "peer")
    node = start(daemons, tmp_path, "node", bootstrap=[peer.peer_url])
    for i in range(3):
        node.api("POST", "/api/v1/messages", {"text": f"mine {i}"})
    wait_until(lambda: converged([node, peer], ops=3), 30, "the peer to hold them")
    node.kill()
    for name in ("replica.sqlite3", "replica.sqlite3-wal", "replica.sqlite3-shm"):
        (node.data_dir / name).unlink(missing_ok=True)
    again = Daemon(node.data_dir, name="node", bootstrap=[peer.peer_url], extra=["--recover"])
    daemons.append(again)
    again.start()
    wait_until(lambda: writable(again), 30, "the own feed to come back from the peer")
    assert again.status()["ops"] == 3
    again.api("POST", "/api/v1/messages", {"text": "mine again"})
    wait_until(lambda: converged([again, peer], ops=4), 30, "both to hold 4 ops")
    assert forensic(peer.data_dir / "replica.sqlite3") == 0


def test_a_key_missing_next_to_a_replica_is_refused(tmp_path: Path,
                                                    daemons: list[Daemon]) -> None:
    d = start(daemons, tmp_path, "n")
    d.api("POST", "/api/v1/messages", {"text": "hello"})
    d.stop()
    (d.data_dir / "identity.key").unlink()
    result = subprocess.run(run_args(d.data_dir), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no identity.key" in result.stderr
    assert not (d.data_dir / "identity.key").exists()  # no new identity was made


def needs(what: str, ok: bool) -> None:
    """Skip a test this machine cannot run; in CI (CI=true) that is a failure."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must be able to run this test: {what}")
    pytest.skip(what)


def test_a_full_disk_pauses_writes_and_loses_nothing(tmp_path: Path,
                                                     daemons: list[Daemon]) -> None:
    needs("needs root and unshare(1) for a private mount namespace with a small tmpfs",
          os.geteuid() == 0 and shutil.which("unshare") is not None)
    peer = start(daemons, tmp_path, "peer")
    data = tmp_path / "small"
    data.mkdir()
    # The node's data dir is a 4 MiB tmpfs mounted in a mount namespace of its own:
    # this process sees it through /proc/PID/root.
    mount = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
             'mount -t tmpfs -o size=4m,mode=0700 tmpfs "$1" && shift && exec "$@"', 'sh',
             str(data)]
    node = Daemon(data, name="small", bootstrap=[peer.peer_url], prefix=mount,
                  root=Path("/proc/PID/root"))
    daemons.append(node)
    node.start()
    seen = node.visible_dir
    wait_until(lambda: len(node.status()["peers"]) == 1, 30, "the peer to connect")
    free = os.statvfs(seen).f_bavail * os.statvfs(seen).f_frsize
    filler = seen / "filler"
    filler.write_bytes(b"\0" * (free - 256 * 1024))  # leave 256 KiB for the store

    acked: list[bytes] = []
    for i in range(20_000):
        status, body = node.call("POST", "/api/v1/messages", {"text": f"filling {i:05d} " * 8})
        if status == 201:
            acked.append(bytes.fromhex(body["id"]))
            continue
        assert status == 503 and "cannot commit" in body["error"], (status, body)
        break
    else:
        pytest.fail("the disk never filled")
    assert node.proc is not None
    store, pid = data / "replica.sqlite3", node.proc.pid
    held = stored(store, pid)
    assert [op for op in acked if op not in held] == []  # every 201 is on disk
    status, body = node.call("POST", "/api/v1/messages", {"text": "while full"})
    assert status == 503 and "cannot commit" in body["error"]
    info = node.status()  # reads still work, and say why writes do not
    assert info["writable"] is False and info["store"]["ok"] is False
    assert len(info["peers"]) == 1  # and the peer is still served

    filler.unlink()
    wait_until(lambda: node.call("POST", "/api/v1/messages", {"text": "after"})[0] == 201, 30,
               "writes to resume once space is free")
    held = stored(store, pid)
    assert [op for op in acked if op not in held] == []
    wait_until(lambda: converged([node, peer]), 30, "the peer to catch up")
    at_peer = stored(peer.data_dir / "replica.sqlite3")
    assert [op for op in acked if op not in at_peer] == []
    assert forensic(peer.data_dir / "replica.sqlite3") == 0
    assert node.status()["store"]["ok"] is True


FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def test_clocks_apart_by_just_under_the_bound_converge(tmp_path: Path,
                                                       daemons: list[Daemon]) -> None:
    needs("needs libfaketime (Debian package faketime) to shift a daemon's wall clock",
          FAKETIME.exists())
    a = start(daemons, tmp_path, "a")
    # b's wall clock runs 14 minutes ahead (the bound is 15: MAX_CLOCK_SKEW_MS);
    # its monotonic clock is left alone, as a wrong wall clock does.
    b = start(daemons, tmp_path, "b", bootstrap=[a.peer_url],
              env={"LD_PRELOAD": str(FAKETIME), "FAKETIME": "+14m",
                   "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    for d in (a, b):
        d.api("POST", "/api/v1/register", {"name": d.name})
        d.api("POST", "/api/v1/messages", {"text": f"from {d.name}"})
    # Equal digests include both nodes' presence records: b must not drop a's as expired.
    wait_until(lambda: converged([a, b], ops=4) and a.status()["records"] == 4, 30,
               "equal digests, records included")
    wait_until(lambda: b.status()["clock_offset_ms"] is not None
               and a.status()["clock_offset_ms"] is not None, 30, "a ping each way")
    assert abs(b.status()["clock_offset_ms"] - 14 * 60_000) < 5_000
    assert abs(a.status()["clock_offset_ms"] + 14 * 60_000) < 5_000
    assert "ahead of its peers" in b.status()["clock_warning"]


def test_a_restore_with_no_peer_in_reach_forks_and_says_so(tmp_path: Path,
                                                           daemons: list[Daemon]) -> None:
    """What the check guards against, and what the node says when it happens anyway:
    restored from a backup and started with no peer in reach, the node writes after
    the grace period (with a warning); meeting its peer again, both find the fork."""
    peer = start(daemons, tmp_path, "peer")
    node = start(daemons, tmp_path, "node", bootstrap=[peer.peer_url])
    for i in range(3):
        node.api("POST", "/api/v1/messages", {"text": f"before the backup {i}"})
    wait_until(lambda: converged([node, peer], ops=3), 30, "the peer to hold them")
    backup = tmp_path / "backup"
    shutil.copytree(node.data_dir, backup, ignore=shutil.ignore_patterns("run.json", "lock"))
    node.api("POST", "/api/v1/messages", {"text": "after the backup"})
    wait_until(lambda: converged([node, peer], ops=4), 30, "the peer to hold 4")
    node.kill()
    peer.stop()
    shutil.rmtree(node.data_dir)
    shutil.copytree(backup, node.data_dir)
    alone = start(daemons, tmp_path, "node")  # no bootstrap, the peer is down
    alone.wait_for_line(lambda line: "no peer could be reached" in line, 30)
    alone.api("POST", "/api/v1/messages", {"text": "a second op at seq 4"})
    again = Daemon(peer.data_dir, name="peer", bootstrap=[alone.peer_url])
    daemons.append(again)
    again.start()
    alone.wait_for_line(lambda line: "THIS NODE'S IDENTITY HAS EQUIVOCATED" in line, 30)
    again.wait_for_line(lambda line: " WARNING " in line and "equivocated at seq 4" in line,
                        30)
    status, body = alone.call("POST", "/api/v1/messages", {"text": "refused for good"})
    assert status == 409 and "equivocated" in body["error"]


def test_read_only_commands_work_beside_the_running_node(tmp_path: Path,
                                                         daemons: list[Daemon]) -> None:
    node = start(daemons, tmp_path, "n")
    node.api("POST", "/api/v1/messages", {"text": "hello"})
    cli = [sys.executable, "-m", "liberation_node"]
    summary = subprocess.run([*cli, "summary", "--json", "--data-dir", str(node.data_dir)],
                             capture_output=True, text=True, timeout=60)
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["ops"] == 1
    status = subprocess.run([*cli, "status", "--json", "--data-dir", str(node.data_dir)],
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and json.loads(status.stdout)["ops"] == 1
    assert node.call("POST", "/api/v1/messages", {"text": "still writing"})[0] == 201
