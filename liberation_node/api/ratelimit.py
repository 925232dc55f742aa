"""Per-address token buckets for the peer port (DESIGN §7: requests per second are bounded).

Each remote address has a bucket of `burst` tokens refilled at `rate` per
second; a request takes one or waits. Time is an argument (`now`, seconds on a
monotonic clock), so tests step it by hand.

The table is bounded too: at most `max_keys` buckets, least recently used
dropped first. Dropping a bucket forgives its debt, so an attacker would need
more than `max_keys` addresses to gain anything; IPv6 clients are keyed by their
/64, the block one host usually holds, so that one host cannot be thousands.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict


def client_key(remote: str | None) -> str:
    """The bucket a remote address belongs to: an IPv4 address, or an IPv6 /64."""
    if not remote:
        return "unknown"
    try:
        addr = ipaddress.ip_address(remote.split("%", 1)[0])  # drop an IPv6 zone
    except ValueError:
        return remote
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class RateLimiter:
    """Token buckets by key: `take(key, now)` is 0.0 when allowed, else seconds to wait."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10_000) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate > 0, burst >= 1 and max_keys >= 1 are required")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, key: str, now: float) -> float:
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)  # most recently used last
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)
