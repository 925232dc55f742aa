"""Memoized record decoding, for the whole of a run.

Every node decodes every presence record it is sent: at 300 nodes each record's
exact bytes are decoded by every node, most of them more than once, and the
boot of a 300-node mesh decodes 180,000 records for its 600 keys. Decoding
(`records.decode_record`) is a pure function of the bytes and the network name,
except its last checks, which compare the record's times with the receiver's
clock (ops.md §7.5). So the simulator decodes each distinct wire once, keeps the
immutable `Record` (or the rejection), and runs only the clock checks
(`records.check_times`) per receiver: every node gets the same outcome, with the
same reason, as if it had decoded the bytes itself. The core modules are not
edited: `replica.decode_record` is swapped for the memoized one during the run and
restored afterwards, as sigcache.py does for signature checks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..core import replica
from ..core.errors import Rejection
from ..core.records import Record, check_times, decode_record


@contextlib.contextmanager
def memoized_records(enabled: bool = True) -> Iterator[dict[str, int]]:
    """Within the block, the replica's record decoding is memoized; yields hit/miss
    counts. Off by default, with signature memoization (SimConfig.memo_verify)."""
    stats = {"hits": 0, "misses": 0}
    if not enabled:
        yield stats
        return
    cache: dict[tuple[bytes, str], Record | Rejection] = {}

    def decode(wire: bytes, network: str, now: int | None, *,
               verdict: tuple[bytes, bool] | None = None) -> Record:
        if verdict is not None or type(wire) is not bytes:
            return decode_record(wire, network, now, verdict=verdict)
        key = (wire, network)
        hit = cache.get(key)
        if hit is None:
            stats["misses"] += 1
            try:
                hit = decode_record(wire, network, None)
            except Rejection as rejection:
                hit = rejection
            cache[key] = hit
        else:
            stats["hits"] += 1
        if isinstance(hit, Rejection):  # a fresh one: a raised exception keeps its traceback
            raise Rejection(hit.reason, hit.detail)
        if now is not None:
            check_times(hit, now)
        return hit

    saved = getattr(replica, "decode_record")  # noqa: B009 (a name mypy sees as private)
    setattr(replica, "decode_record", decode)  # noqa: B010
    try:
        yield stats
    finally:
        setattr(replica, "decode_record", saved)  # noqa: B010
