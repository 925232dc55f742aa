"""Memoized decoding of records and frames, for large runs.

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

Frames are the same story on a shorter time scale: a node that pushes records or
announces ids sends the same bytes to several peers at once (a RECORDS push to each
eager peer, one IHAVE per lazy peer with the same rows), and `frames.decode` is a
pure function of the bytes (its frames are immutable). The frames decoded lately
are kept (the cache is emptied when it holds `FRAMES_KEPT`), so a copy that
arrives at another peer a few milliseconds later is not decoded again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..core import frames, replica
from ..core.errors import Rejection
from ..core.frames import Frame
from ..core.records import Record, check_times, decode_record

K = TypeVar("K")
T = TypeVar("T")


def _cached(cache: dict[K, T | Rejection], key: K, stats: dict[str, int],
            decode: Callable[[], T], keep: int | None = None) -> T:
    """`decode()`'s result or rejection for `key`, decoded once (while kept: with `keep`,
    the cache is emptied when it holds that many); a rejection is raised afresh each
    time (a raised exception keeps its traceback)."""
    hit = cache.get(key)
    if hit is None:
        stats["misses"] += 1
        try:
            hit = decode()
        except Rejection as rejection:
            hit = rejection
        if keep is not None and len(cache) >= keep:
            cache.clear()
        cache[key] = hit
    else:
        stats["hits"] += 1
    if isinstance(hit, Rejection):
        raise Rejection(hit.reason, hit.detail)
    return hit


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
        record = _cached(cache, (wire, network), stats,
                         lambda: decode_record(wire, network, None))
        if now is not None:
            check_times(record, now)
        return record

    saved = getattr(replica, "decode_record")  # noqa: B009 (a name mypy sees as private)
    setattr(replica, "decode_record", decode)  # noqa: B010
    try:
        yield stats
    finally:
        setattr(replica, "decode_record", saved)  # noqa: B010


FRAMES_KEPT = 4_096


@contextlib.contextmanager
def memoized_frames(enabled: bool = True) -> Iterator[dict[str, int]]:
    """Within the block, `frames.decode` is memoized over the frames decoded lately;
    yields hit/miss counts."""
    stats = {"hits": 0, "misses": 0}
    if not enabled:
        yield stats
        return
    real = frames.decode
    cache: dict[bytes, Frame | Rejection] = {}

    def decode(data: bytes) -> Frame:
        if type(data) is not bytes:
            return real(data)
        return _cached(cache, data, stats, lambda: real(data), keep=FRAMES_KEPT)

    frames.decode = decode
    try:
        yield stats
    finally:
        frames.decode = real
