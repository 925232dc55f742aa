"""What a simulation run does: every knob in one place, as frozen dataclasses.

`NetworkOptions` is the faulty network (like TigerBeetle's PacketSimulatorOptions),
`FaultOptions` the faults scheduled against nodes, `SimConfig` the whole run.
A run is these options plus `SimConfig.seed`; nothing else decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.mesh import MeshConfig
from ..core.ops import MAX_CLOCK_SKEW_MS


@dataclass(frozen=True)
class NetworkOptions:
    """How frames travel between two connected nodes: a reliable, ordered channel, as the
    WebRTC data channel (SCTP) it stands for.

    Each frame waits for the connection's bandwidth (`bandwidth_bytes_s` per direction;
    None: unlimited), then takes a latency drawn uniformly from `latency_ms` (inclusive)
    or, with `jitter_ms`, its connection's fixed base latency plus a jitter, and never
    arrives before the frame sent ahead of it. `loss` is the chance that a frame needs a
    retransmission: it arrives `rto_min_ms` later (doubling for each further loss, at
    most `rto_max_ms`) and holds up the frames behind it; a frame lost more than
    `max_retransmits` times breaks the connection (aiortc: 1 s, 60 s, 10). The driver's
    flow control sees the send buffer (`high_water`, `low_water` as the daemon's
    transport); a send buffer past `max_buffer_bytes` breaks the connection.
    """

    latency_ms: tuple[int, int] = (10, 100)
    # None: every frame draws its latency from `latency_ms`. A number J: each
    # connection draws a base latency from `latency_ms` once, and every frame on
    # it adds 0..J ms: links keep their speed, as real ones mostly do.
    jitter_ms: int | None = None
    loss: float = 0.0
    bandwidth_bytes_s: int | None = 2_500_000  # 20 Mbit/s each way
    high_water: int = 1024 * 1024
    low_water: int = 256 * 1024
    max_buffer_bytes: int = 16 * 1024 * 1024
    rto_min_ms: int = 1_000
    rto_max_ms: int = 60_000
    max_retransmits: int = 10

    def check(self) -> None:
        lo, hi = self.latency_ms
        if not 0 <= lo <= hi:
            raise ValueError(f"latency {lo}:{hi} ms: want 0 <= LO <= HI")
        if self.jitter_ms is not None and self.jitter_ms < 0:
            raise ValueError(f"jitter {self.jitter_ms} ms: want >= 0")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError(f"loss probability {self.loss}: want 0 <= P < 1")
        if self.bandwidth_bytes_s is not None and self.bandwidth_bytes_s <= 0:
            raise ValueError("bandwidth: want a positive number of bytes per second")
        if not 0 <= self.low_water < self.high_water <= self.max_buffer_bytes:
            raise ValueError("want 0 <= low water < high water <= max buffer")

    @property
    def faulty(self) -> bool:
        return bool(self.loss)


@dataclass(frozen=True)
class FaultOptions:
    """Faults against nodes, all within the safety phase (times are ms into the run).

    A partition splits the nodes into two random halves at `partition_at_ms`
    and heals at `heal_at_ms`. `breaks` connections break at random times (the
    association dies: both ends are told, no CLOSE). `crashes` crash events hit
    random honest nodes at random times; each stays down for a time drawn from
    `downtime_ms` and restarts from its store. `byzantine` nodes run the real node and also
    inject forged, altered, replayed and equivocating ops and garbage frames,
    one about every `byzantine_interval_ms`.
    """

    partition_at_ms: int | None = None
    heal_at_ms: int | None = None
    breaks: int = 0
    crashes: int = 0
    downtime_ms: tuple[int, int] = (1_000, 8_000)
    byzantine: int = 0
    byzantine_interval_ms: int = 1_000
    # Each node's clock is off the world's by a fixed 0..clock_skew_ms, so any two
    # differ by at most this: keep it under MAX_CLOCK_SKEW_MS (ops.md §5.4).
    clock_skew_ms: int = 0

    @property
    def any(self) -> bool:
        return (self.partition_at_ms is not None or self.crashes > 0 or self.byzantine > 0
                or self.breaks > 0)


@dataclass(frozen=True)
class SimConfig:
    """One run. Phases: boot (nodes dial each other), safety (writes and faults, until
    `duration_ms`), liveness (faults stop; replicas must converge within `liveness_ms`)."""

    nodes: int = 10
    seed: int = 0
    # The connection manager keeps each node's peers between degree - 2 and degree + 2
    # (core/peering.py's low and high marks); each node starts knowing `bootstrap`
    # random nodes that joined before it, and finds the rest by peer exchange (their
    # presence records).
    degree: int = 4
    bootstrap: int = 3
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
    # The nodes' engine settings: the production defaults (record timers included)
    # unless a test or a benchmark says otherwise.
    mesh: MeshConfig = field(default_factory=MeshConfig)
    epoch_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z: what node clocks read at start
    network_name: str = "sim"
    # Memoize Ed25519 verification (exact inputs -> result) and record decoding for
    # speed at scale; results are identical, see sim/sigcache.py, sim/decodecache.py.
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
        if f.crashes < 0 or f.breaks < 0 or not 0 <= f.byzantine < self.nodes - 1:
            raise ValueError("want crashes >= 0, breaks >= 0 and 0 <= byzantine < nodes - 1")
        if self.bootstrap < 1:
            raise ValueError("want bootstrap >= 1: a node must know someone to start")
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
