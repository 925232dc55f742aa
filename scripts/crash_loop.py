#!/usr/bin/env python3
"""Crash loop (issue #7): a writer posts through a node's API as fast as it can while
the node is SIGKILLed at random moments and restarted on the same data directory,
with a peer connected throughout. After each kill it counts the acknowledged (201)
posts missing from the node's SQLite file, and at the end those missing at the peer
and the ops a fork voided (any means an identity equivocated).

    .venv/test/bin/python scripts/crash_loop.py --kills 20
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.daemon.harness import Daemon, converged, wait_until


def held(store: Path) -> tuple[set[bytes], int]:
    db = sqlite3.connect(f"{store.absolute().as_uri()}?mode=ro", uri=True)
    try:
        ids = {bytes(r[0]) for r in db.execute("SELECT id FROM ops")}
        voided = int(db.execute("SELECT count(*) FROM excluded_ops").fetchone()[0])
    finally:
        db.close()
    return ids, voided


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    acked: list[bytes] = []
    target: list[Daemon] = []
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            if not target:
                time.sleep(0.01)
                continue
            n += 1
            try:
                status, body = target[0].call("POST", "/api/v1/messages", {"text": f"w {n}"},
                                              timeout=5)
            except OSError:
                time.sleep(0.01)
                continue
            if status == 201:
                acked.append(bytes.fromhex(body["id"]))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        peer = Daemon(root / "peer", name="peer").start()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        lost_on_disk = 0
        node = None
        try:
            for kill in range(1, args.kills + 1):
                node = Daemon(root / "victim", name="victim", bootstrap=[peer.peer_url]).start()
                target.append(node)
                before = len(acked)
                wait_until(lambda b=before: len(acked) > b + 5, 60, "writes to be accepted")
                time.sleep(rng.uniform(0, 0.3))
                node.kill()
                target.clear()
                ids, _ = held(root / "victim" / "replica.sqlite3")
                missing = sum(1 for op in acked if op not in ids)
                lost_on_disk = max(lost_on_disk, missing)
                print(f"kill {kill}: {len(acked)} acknowledged so far, {missing} not on disk",
                      flush=True)
            node = Daemon(root / "victim", name="victim", bootstrap=[peer.peer_url]).start()
            try:
                wait_until(lambda: converged([node, peer]), 60, "convergence")
                converged_ok = True
            except TimeoutError:
                converged_ok = False
        finally:
            stop.set()
            for d in (node, peer):
                if d is not None:
                    d.kill()
        at_peer, voided = held(root / "peer" / "replica.sqlite3")
        missing_at_peer = sum(1 for op in acked if op not in at_peer)
        print(f"{args.kills} kills, {len(acked)} acknowledged writes: at most {lost_on_disk} "
              f"missing from the node's disk after a kill, {missing_at_peer} missing at the "
              f"peer, {voided} ops voided by a fork; converged: {converged_ok}")


if __name__ == "__main__":
    main()
