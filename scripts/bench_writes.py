#!/usr/bin/env python3
"""Local write rate through the control API, and restart-to-serving time (issue #7).

  writes   one real daemon on 127.0.0.1; W writer threads (default 1 and 8) each post
           messages over their own keep-alive HTTP connection as fast as the node
           answers; prints ops/s acknowledged (201) for each W. Baseline in the same
           run: the rate of GET /api/v1/health answers, the HTTP round trip alone.
  restart  a store with N ops (default 100,000) on disk: time from `run` until the
           control API answers, best of K.

    .venv/test/bin/python scripts/bench_writes.py writes --ops 2000
    .venv/test/bin/python scripts/bench_writes.py restart --ops 100000
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.daemon.harness import Daemon


def _writer(url: str, token: str, count: int, tag: str, out: list[int]) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    done = 0
    for i in range(count):
        body = json.dumps({"text": f"{tag} {i}", "channel": "social"})
        conn.request("POST", "/api/v1/messages", body, headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status == 201:
            done += 1
    conn.close()
    out.append(done)


def _rate(url: str, token: str, writers: int, per_writer: int) -> float:
    results: list[int] = []
    threads = [threading.Thread(target=_writer, args=(url, token, per_writer, f"w{w}", results))
               for w in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return sum(results) / elapsed


def _gets(url: str, token: str, count: int) -> float:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    start = time.perf_counter()
    for _ in range(count):
        conn.request("GET", "/api/v1/status", headers=headers)
        conn.getresponse().read()
    return count / (time.perf_counter() - start)


def writes(args: argparse.Namespace, root: Path) -> None:
    node = Daemon(root / "w", name="w").start()
    try:
        url, token = node.run["control_url"], node.token
        _rate(url, token, 1, 50)  # warm up
        print(f"baseline: GET /api/v1/status round trips {_gets(url, token, 500):,.0f}/s")
        for writers in args.writers:
            rate = _rate(url, token, writers, args.ops // writers)
            print(f"writers {writers}: {rate:,.0f} acknowledged posts/s "
                  f"({args.ops // writers * writers} posts)")
    finally:
        node.stop()


def restart(args: argparse.Namespace, root: Path) -> None:
    import asyncio

    from liberation_node import datadir
    from liberation_node.core.bodies import Post
    from liberation_node.core.identity import Identity
    from liberation_node.core.ops import create_op

    path = root / "r"
    node_dir, _ = datadir.init(path, "e2e")
    authors = [Identity.from_seed(bytes([i + 1]) * 32) for i in range(100)]

    async def fill() -> None:
        async with node_dir.open_store() as store:
            heads: dict[bytes, tuple[int, bytes | None]] = {}
            batch = []
            for i in range(args.ops):
                who = authors[i % len(authors)]
                seq, prev = heads.get(who.public_key, (0, None))
                op = create_op(who, network="e2e", seq=seq + 1, prev=prev, deps=(),
                               timestamp=1_790_000_000_000 + i,
                               body=Post("social", f"message {i}", 1, None))
                heads[who.public_key] = (seq + 1, op.id)
                batch.append(op)
                if len(batch) == 4096:
                    await store.write(batch)
                    batch = []
            await store.write(batch)

    asyncio.run(fill())
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        node = Daemon(path, name="r").start(timeout=300)
        node.status()
        times.append(time.perf_counter() - start)
        node.stop()
    print(f"restart with {args.ops:,} ops on disk: best {min(times):.2f} s, "
          f"all {', '.join(f'{t:.2f}' for t in times)} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["writes", "restart"])
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        {"writes": writes, "restart": restart}[args.what](args, Path(tmp))


if __name__ == "__main__":
    main()
