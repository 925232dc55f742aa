#!/usr/bin/env python3
"""How long CLI commands take, wall clock, against a real daemon on 127.0.0.1 (issue #12).

Each round runs every command once, in turn (interleaved, so a busy moment of
this shared machine hits all of them alike): the baseline `python -c pass`,
then `liberation-node --version`, `status`, `status --json`, `post` and, for
scale, `python -c "import aiohttp"`. Reports the median and the fastest run of
each, and each median's ratio to the baseline's. Target: `status` and
`--version` at most 0.3 s.

    .venv/test/bin/python scripts/bench_cli.py --rounds 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.daemon.harness import Daemon

TARGET_S = 0.3


def command_line() -> list[str]:
    """The installed console script beside this Python, as a user runs it."""
    script = Path(sys.executable).parent / "liberation-node"
    return [str(script)] if script.exists() else [sys.executable, "-m", "liberation_node"]


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--posts", type=int, default=20, help="posts in a row, timed as one")
    args = parser.parse_args()
    node = command_line()
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(Path(tmp) / "node", name="bench").start(timeout=60)
        try:
            at = ["--data-dir", str(daemon.data_dir)]
            commands = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "--version": [*node, "--version"],
                "status": [*node, "status", *at],
                "status --json": [*node, "status", "--json", *at],
                "post": [*node, "post", "benchmark message", *at],
                "python -c 'import aiohttp'": [sys.executable, "-c", "import aiohttp"],
            }
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.rounds):
                for name, argv in commands.items():
                    times[name].append(timed(argv))
            started = time.perf_counter()
            for i in range(args.posts):
                subprocess.run([*node, "post", f"post {i}", *at], check=True,
                               stdout=subprocess.DEVNULL)
            posts_s = time.perf_counter() - started
        finally:
            daemon.stop()
    base = statistics.median(times["python -c pass"])
    rows = {name: {"median_s": round(statistics.median(t), 4), "min_s": round(min(t), 4),
                   "ratio_to_baseline": round(statistics.median(t) / base, 2)}
            for name, t in times.items()}
    print(f"{'command':<28} {'median s':>9} {'min s':>7} {'x python -c pass':>17}")
    for name, row in rows.items():
        print(f"{name:<28} {row['median_s']:>9.3f} {row['min_s']:>7.3f} "
              f"{row['ratio_to_baseline']:>17.2f}")
    print(f"{args.posts} posts in a row: {posts_s:.2f} s ({posts_s / args.posts:.3f} s each)")
    met = all(rows[name]["median_s"] <= TARGET_S for name in ("--version", "status"))
    print(json.dumps({"rounds": args.rounds, "commands": rows, "posts": args.posts,
                      "posts_s": round(posts_s, 2), "target_s": TARGET_S,
                      "target_met": met, "entry_point": node[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
