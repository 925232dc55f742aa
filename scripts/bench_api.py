"""Control API read cost on a large replica: paged endpoints vs rebuilding every view.

Builds a replica of N signed ops (registrations, claims, transfers, posts from
many authors), serves it with the real control app on 127.0.0.1, and times each
read over HTTP (median of R requests). The baseline is GET /api/v1/health,
measured in the same run: a request that does constant work. A paged read should
cost a small multiple of it, whatever N is; `build_views` (what /api/v1/views
does on a cache miss, and what every read cost before the paged endpoints)
grows with N.

    .venv/test/bin/python scripts/bench_api.py --ops 20000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from liberation_node.api._http import make_runner
from liberation_node.api.control import control_app
from liberation_node.core.bodies import Claim, Post, Register, Transfer
from liberation_node.core.identity import Identity
from liberation_node.core.ledger import iso_week
from liberation_node.core.views import build_views
from tests.api.fakes import ME, ReplicaNode

TOKEN = "be" * 32


def populate(node: ReplicaNode, ops: int, authors: int) -> None:
    people = [ME, *(Identity.from_seed(i.to_bytes(32, "big")) for i in range(1, authors))]
    replica, made = node.replica, 0

    def write(who: Identity, body: object) -> None:
        nonlocal made
        node.now += 7
        replica.append(who, body, node.now)  # type: ignore[arg-type]
        made += 1

    for who in people:
        write(who, Register(f"person {made}"))
        write(who, Claim(iso_week(node.now)))
    i = 0
    while made < ops:
        who, to = people[i % authors], people[(i * 7 + 1) % authors]
        if i % 4 == 0 and who is not to:
            write(who, Transfer(to.public_key, 1 + i % 500, f"memo {i}"))
        else:
            write(who, Post(("social", "billboard", "media")[i % 3], f"post {i} " * 8, 1, None))
        i += 1


async def timed(session: aiohttp.ClientSession, url: str, repeat: int) -> tuple[float, float]:
    """(first request ms, median of the rest ms)."""
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            await response.read()
            assert response.status in (200, 503), (url, response.status)
        times.append((time.perf_counter() - start) * 1000)
    return times[0], statistics.median(times[1:] or times)


async def main(ops: int, authors: int, repeat: int) -> None:
    node = ReplicaNode()
    start = time.perf_counter()
    populate(node, ops, authors)
    print(f"replica: {len(node.replica.ops)} ops from {authors} authors "
          f"(built in {time.perf_counter() - start:.1f} s)")
    app = control_app(node, TOKEN)
    runner: web.AppRunner = make_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as session:
            t = time.perf_counter()
            async with session.get(f"{base}/api/v1/messages?limit=50&state=all",
                                   headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                deep = (await r.json())["next_cursor"]
            print(f"first paged read (builds the index once): "
                  f"{(time.perf_counter() - t) * 1000:.0f} ms")
            _, health = await timed(session, f"{base}/api/v1/health", repeat)
            rows = [("health (baseline)", f"{base}/api/v1/health")]
            rows += [(name, base + path) for name, path in [
                ("status", "/api/v1/status"),
                ("ledger", "/api/v1/ledger"),
                ("ledger/humans?limit=50", "/api/v1/ledger/humans?limit=50"),
                ("ledger/transactions?limit=50", "/api/v1/ledger/transactions?limit=50"),
                ("messages?limit=50", "/api/v1/messages?limit=50"),
                ("messages?limit=50&cursor=…", f"/api/v1/messages?limit=50&cursor={deep}"),
                ("messages?channel=media&limit=50", "/api/v1/messages?channel=media&limit=50"),
                ("messages?author=…&limit=50", f"/api/v1/messages?author={ME.text}&limit=50"),
                ("topology", "/api/v1/topology"),
                ("views (cached within 1 s)", "/api/v1/views")]]
            print(f"{'GET':34} {'first ms':>9} {'median ms':>10} {'x health':>9}")
            for name, url in rows:
                first, median = await timed(session, url, repeat)
                print(f"{name:34} {first:9.2f} {median:10.2f} {median / health:9.1f}")
            built = []
            for _ in range(3):
                t = time.perf_counter()
                build_views(node.replica, ME.public_key, node.now)
                built.append((time.perf_counter() - t) * 1000)
            views_ms = statistics.median(built)
            print(f"{'build_views (every read, before)':34} {'':9} {views_ms:10.2f} "
                  f"{views_ms / health:9.1f}")
            t = time.perf_counter()
            node.now += 2000  # a new second: the views cache misses once
            await asyncio.gather(*(timed(session, f"{base}/api/v1/views", 0)
                                   for _ in range(6)))
            print(f"6 parallel /api/v1/views after a change: {(time.perf_counter() - t) * 1000:.0f}"
                  f" ms wall, {node.views_built} view builds in the whole run")
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--authors", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.ops, args.authors, args.repeat))
