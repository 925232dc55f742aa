"""What a simulation run does: every knob in one place, as frozen dataclasses.

`NetworkOptions` is the faulty network (like TigerBeetle's PacketSimulatorOptions),
`FaultOptions` the faults scheduled against nodes, `SimConfig` the whole run.
A run is these options plus `SimConfig.seed`; nothing else decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.ops import MAX_CLOCK_SKEW_MS

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class NetworkOptions:
    """How frames travel between two connected nodes.

    Each frame takes a latency drawn uniformly from `latency_ms` (inclusive), or,
    with `jitter_ms`, its connection's fixed base latency plus a jitter.
    With `fifo` (the default) a connection delivers in order, like the reliable,
    ordered WebRTC data channel it stands for: a frame never overtakes the one
    sent before it in the same direction. `reorder` is then the chance that a
    frame ignores that order and takes up to `latency_ms[1]` more; without
    `fifo` the latency jitter alone reorders. `loss` drops a frame, `duplicate`
    delivers it twice (the copy with its own latency).
    """

    latency_ms: tuple[int, int] = (10, 100)
    # None: every frame draws its latency from `latency_ms`. A number J: each
    # connection draws a base latency from `latency_ms` once, and every frame on
    # it adds 0..J ms: links keep their speed, as real ones mostly do.
    jitter_ms: int | None = None
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    fifo: bool = True

    def check(self) -> None:
        lo, hi = self.latency_ms
        if not 0 <= lo <= hi:
            raise ValueError(f"latency {lo}:{hi} ms: want 0 <= LO <= HI")
        if self.jitter_ms is not None and self.jitter_ms < 0:
            raise ValueError(f"jitter {self.jitter_ms} ms: want >= 0")
        for name in ("loss", "duplicate", "reorder"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} probability {p}: want 0 <= P < 1")

    @property
    def faulty(self) -> bool:
        return bool(self.loss or self.duplicate or self.reorder)


@dataclass(frozen=True)
class FaultOptions:
    """Faults against nodes, all within the safety phase (times are ms into the run).

    A partition splits the nodes into two random halves at `partition_at_ms`
    and heals at `heal_at_ms`. `crashes` crash events hit random honest nodes
    at random times; each stays down for a time drawn from `downtime_ms` and
    restarts from its store. `byzantine` nodes run the real node and also
    inject forged, altered, replayed and equivocating ops and garbage frames,
    one about every `byzantine_interval_ms`.
    """

    partition_at_ms: int | None = None
    heal_at_ms: int | None = None
    crashes: int = 0
    downtime_ms: tuple[int, int] = (1_000, 8_000)
    byzantine: int = 0
    byzantine_interval_ms: int = 1_000
    # Each node's clock is off the world's by a fixed 0..clock_skew_ms, so any two
    # differ by at most this: keep it under MAX_CLOCK_SKEW_MS (ops.md §5.4).
    clock_skew_ms: int = 0

    @property
    def any(self) -> bool:
        return self.partition_at_ms is not None or self.crashes > 0 or self.byzantine > 0


@dataclass(frozen=True)
class SimConfig:
    """One run. Phases: boot (nodes dial each other), safety (writes and faults, until
    `duration_ms`), liveness (faults stop; replicas must converge within `liveness_ms`)."""

    nodes: int = 10
    seed: int = 0
    degree: int = 4
    ops: int = 100
    duration_ms: int = 20_000
    liveness_ms: int = 60_000
    boot_ms: int = 1_000
    # None: writes at random times in the safety phase. A number: one write every
    # so many ms from the end of boot (one broadcast at a time, for dissemination).
    write_interval_ms: int | None = None
    network: NetworkOptions = field(default_factory=NetworkOptions)
    faults: FaultOptions = field(default_factory=FaultOptions)
    check_interval_ms: int = 100  # how often convergence is sampled
    # A node's writer commits what queued up meanwhile this long after the first
    # change (a group commit); a crash loses what is not committed yet.
    commit_ms: int = 2
    # Presence records change the digest whenever they are republished; the
    # defaults keep them still during a run so that "same digest" is reachable
    # (the core's defaults are 60 s and 5 min). Restarts still republish.
    presence_refresh_ms: int = 10 * 60_000
    record_ttl_ms: int = DAY_MS
    epoch_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z: what node clocks read at start
    network_name: str = "sim"
    # Memoize Ed25519 verification (exact inputs -> result) for speed at scale;
    # results are identical, see sim/sigcache.py.
    memo_verify: bool = False
    # Each node keeps other people's post contents within this many bytes, newest
    # first (ops.md §12.5: its retention); None: every node keeps every content.
    retain_bytes: int | None = None

    def check(self) -> None:
        """Refuse options that cannot make a meaningful run (ValueError, one line)."""
        self.network.check()
        f = self.faults
        if self.nodes < 2:
            raise ValueError("a mesh needs at least 2 nodes")
        if not 1 <= self.degree < self.nodes:
            raise ValueError(f"degree {self.degree}: want 1 <= degree < nodes ({self.nodes})")
        if self.ops < 0 or self.duration_ms <= self.boot_ms or self.liveness_ms <= 0:
            raise ValueError("want ops >= 0, duration-ms > boot-ms and liveness-ms > 0")
        if self.write_interval_ms is not None and (
                self.write_interval_ms <= 0
                or self.boot_ms + (self.ops - 1) * self.write_interval_ms >= self.duration_ms):
            raise ValueError("evenly spaced writes must all fall within duration-ms")
        if (f.partition_at_ms is None) != (f.heal_at_ms is None):
            raise ValueError("--partition-at and --heal-at go together")
        if f.partition_at_ms is not None and f.heal_at_ms is not None \
                and not 0 <= f.partition_at_ms < f.heal_at_ms <= self.duration_ms:
            raise ValueError("want 0 <= partition-at < heal-at <= duration-ms")
        if f.crashes < 0 or not 0 <= f.byzantine < self.nodes - 1:
            raise ValueError("want crashes >= 0 and 0 <= byzantine < nodes - 1")
        if not 0 < f.downtime_ms[0] <= f.downtime_ms[1] or f.byzantine_interval_ms <= 0:
            raise ValueError("want 0 < downtime LO <= HI and a positive byzantine interval")
        if not 0 <= f.clock_skew_ms < MAX_CLOCK_SKEW_MS or self.commit_ms < 0:
            raise ValueError(f"want 0 <= clock skew < {MAX_CLOCK_SKEW_MS} ms and commit-ms >= 0")

    @property
    def faulty(self) -> bool:
        return self.network.faulty or self.faults.any


def parse_latency(text: str) -> tuple[int, int]:
    """`LO:HI` (or a single `MS`) in milliseconds, as given on the command line."""
    lo, sep, hi = text.partition(":")
    try:
        pair = (int(lo), int(hi if sep else lo))
    except ValueError:
        raise ValueError(f"latency {text!r}: want LO:HI in ms, e.g. 10:100") from None
    if not 0 <= pair[0] <= pair[1]:
        raise ValueError(f"latency {text!r}: want 0 <= LO <= HI")
    return pair
