"""Optional memoization of Ed25519 verification, for large runs.

In a simulated mesh every node verifies the same signatures: each presence
record arrives at each node once per neighbour and is verified every time
(`decode_record` checks the signature before the replica sees it is a
duplicate), which at 1,000 nodes is ~16 million verifications at ~55 µs each.
Verification is a pure function of (key, message, signature), so caching its
result on those exact bytes changes no outcome: a forged or altered input is a
different key and is verified for real. The core modules are not edited; their
module-level name `verify` is swapped for the memoized one during the run and
restored afterwards. Off by default (SimConfig.memo_verify).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

from ..core import identity, ops, records, session

_USERS: tuple[ModuleType, ...] = (ops, records, session)


@contextlib.contextmanager
def memoized_verify(enabled: bool = True) -> Iterator[dict[str, int]]:
    """Within the block, core signature checks are memoized; yields hit/miss counts."""
    stats = {"hits": 0, "misses": 0}
    if not enabled:
        yield stats
        return
    real = identity.verify
    cache: dict[tuple[bytes, bytes, bytes], bool] = {}

    def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = (public_key, signature, message)
        hit = cache.get(key)
        if hit is None:
            stats["misses"] += 1
            hit = cache[key] = real(public_key, message, signature)
        else:
            stats["hits"] += 1
        return hit

    saved = [m.verify for m in _USERS]
    for module in _USERS:
        module.verify = verify  # type: ignore[attr-defined]
    try:
        yield stats
    finally:
        for module, original in zip(_USERS, saved, strict=True):
            module.verify = original  # type: ignore[attr-defined]
