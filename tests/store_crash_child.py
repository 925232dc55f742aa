"""The child process of tests/test_store.py's crash test (not a test module itself).

`python store_crash_child.py DB` writes batch after batch of ops to the SQLite
store at DB and prints ``stored N`` each time `write` has returned for batch N,
until it is killed. The ops are deterministic (fixed seeds and clock; Ed25519
signatures are deterministic too), so the parent regenerates them with
`batches` and knows exactly which bytes every acknowledged batch held.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

from liberation_node.core.bodies import Post, Register
from liberation_node.core.identity import Identity
from liberation_node.core.ops import Op
from liberation_node.core.replica import Replica
from liberation_node.store import SqliteStore

NETWORK = "crash-test"
BATCH = 150
NOW = 1_795_000_000_000
AUTHORS = [Identity.from_seed(bytes([n]) * 32) for n in range(1, 4)]


def batches() -> Iterator[list[Op]]:
    """An endless series of batches, each `BATCH` new ops from three authors."""
    replica = Replica(NETWORK)
    n = 0
    while True:
        batch: list[Op] = []
        for _ in range(BATCH):
            author = AUTHORS[n % len(AUTHORS)]
            body = Register(f"author {n}") if n < len(AUTHORS) else \
                Post("social", f"message {n}", 1 + n % 10, None)
            batch.append(replica.append(author, body, NOW + n).applied[0])
            n += 1
        yield batch


async def main(path: str) -> None:
    async with SqliteStore(path) as store:
        for number, batch in enumerate(batches(), 1):
            await store.write(batch)
            print(f"stored {number}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
