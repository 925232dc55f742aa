"""The node's read side: what the control API, the page, `status` and /metrics show of a
running node (docs/api.md; protocols/ops.md §5.4 for the clock).

A mixin of `Node` (node.py), which owns every attribute named below: apart so that the
driver stays about driving, and what is shown stays in one place.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from . import __version__, clock, datadir
from .core.identity import id_to_text
from .core.ops import MAX_CLOCK_SKEW_MS
from .core.peering import Dial
from .store.sizes import store_sizes

if TYPE_CHECKING:

    from .api._http import Refusals
    from .bus import EventBus
    from .config import NodeConfig
    from .core.identity import Identity
    from .core.mesh import Mesh
    from .core.peering import Peering
    from .core.queries import Index, Topology
    from .core.reading import Reader
    from .core.views import Views
    from .datadir import DataDir
    from .discovery.mdns import LanDiscovery
    from .health import Health
    from .traffic import Traffic
    from .transport import Link, WebRtcTransport
    from .writer import StoreWriter


def clock_warning(offset_ms: int | None) -> str | None:
    """Past half the skew bound, peers may soon refuse our ops and records, or we
    theirs (protocols/ops.md §5.4): say so while there is time to fix the clock."""
    if offset_ms is None or abs(offset_ms) <= MAX_CLOCK_SKEW_MS // 2:
        return None
    return (f"this node's clock is {abs(offset_ms) / 60_000:.1f} min "
            f"{'ahead of' if offset_ms > 0 else 'behind'} its peers; at "
            f"{MAX_CLOCK_SKEW_MS // 60_000} min their ops and records are refused: set the "
            "clock right (NTP)")



class NodeReports:
    """Status, health, peers, topology, counters and views of a running node."""

    # Owned and set by Node (node.py).
    config: NodeConfig
    dir: DataDir
    identity: Identity
    mesh: Mesh
    peering: Peering
    health: Health
    bus: EventBus
    traffic: Traffic
    refusals: Refusals
    reader: Reader
    stopping: bool
    started_at: float
    peer_url: str
    _index: Index
    _writer: StoreWriter | None
    _links: dict[int, Link]
    _transport: WebRtcTransport | None
    _lan: LanDiscovery | None

    def info(self) -> dict[str, Any]:
        return {"node_id": self.identity.text, "network": self.config.network,
                "version": __version__, "protocol": self.config.mesh.session.protocol_version,
                "urls": list(self.mesh.config.urls)}

    # -- the control port (api/control.py NodeControl) --------------------------------------

    def writes_refused(self) -> str | None:
        """Why local writes are refused now (503), or None."""
        if self.stopping:
            return "the node is stopping"
        if self._writer is not None and self._writer.error is not None:
            return (f"the store cannot commit ({self._writer.error}); writes are paused "
                    "until it can")
        return self.mesh.writable()

    def clock_offset_ms(self) -> int | None:
        return self.mesh.clock_offset()

    def status(self) -> dict[str, Any]:
        replica = self.mesh.replica
        peers = []
        for conn, peer in sorted(self.mesh.peers().items()):
            session = self.mesh.session(conn)
            link = self._links.get(conn)
            peers.append({"id": id_to_text(peer), "conn": conn,
                          "rtt_ms": session.rtt_ms if session else None,
                          "address": link.remote_address if link else None})
        refused = self.writes_refused()
        offset = self.clock_offset_ms()
        writer = self._writer
        assert writer is not None
        return {
            "node_id": self.identity.text, "network": self.config.network,
            "version": __version__, "peers": peers, "ops": len(replica.ops),
            "authors": len(replica.feeds), "records": len(replica.records),
            "pending": len(replica.pending), "digest": replica.digest().hex(),
            "pool_available_cents": replica.ledger.pool_available,
            "humans": sum(1 for a in replica.ledger.accounts.values()
                          if a.registered_at is not None),
            "uptime_s": round(clock.monotonic_s() - self.started_at, 1),
            "peer_url": self.peer_url, "health": self.bus.last.get("system.health.check"),
            "transport": "ready" if self._transport is not None else "loading",
            "name": self.mesh.config.name, "data_dir": str(self.dir.path),
            "join_urls": [f"{url}#{self.identity.text}" for url in self.mesh.config.urls],
            "writable": refused is None, "write_error": refused, "clock_offset_ms": offset,
            "clock_skew_bound_ms": MAX_CLOCK_SKEW_MS, "clock_warning": clock_warning(offset),
            "store": {"ok": writer.error is None, "error": writer.error,
                      "queued_ops": writer.queued_ops, "purge_pending": writer.purge_pending,
                      **store_sizes(replica, self.dir.path / datadir.STORE_FILE)},
            "rejected": dict(sorted(self.mesh.rejected.items())),
            "candidates": dict(sorted(Counter(c.source.name.lower()
                                              for c in self.peering.candidates.values()).items())),
            "mdns": self._lan.status() if self._lan is not None else None,
        }

    def health_report(self) -> dict[str, Any]:
        checks = self.health.check()
        return {"ok": all(part["ok"] for part in checks.values()), "checks": checks}

    def peers(self) -> list[dict[str, Any]]:
        """Open sessions and links still in their handshake (docs/api.md, peers)."""
        open_peers = self.mesh.peers()
        out = []
        for conn, link in sorted(self._links.items()):
            session = self.mesh.session(conn)
            if session is None or session.closed:
                continue
            node_id = open_peers.get(conn) or (
                link.tag.node_id if isinstance(link.tag, Dial) else None)
            stats = self.traffic.links.get(conn)
            out.append({
                "id": id_to_text(node_id) if node_id else None,
                "name": self._index.node_name(node_id) if node_id else "",
                "state": "open" if conn in open_peers else "connecting",
                "rtt_ms": session.rtt_ms, "address": link.remote_address,
                "bytes_in": stats.bytes_in if stats else 0,
                "bytes_out": stats.bytes_out if stats else 0,
                "since_ms": stats.since_ms if stats else None,
                "found_by": stats.found_by if stats else None,
                "direction": stats.direction if stats else None})
        return out

    def topology(self) -> Topology:
        rtts = {}
        for conn, peer in self.mesh.peers().items():
            session = self.mesh.session(conn)
            rtts[peer] = session.rtt_ms if session else None
        return self._index.topology(clock.now_ms(), rtts)

    def counters(self) -> dict[str, Any]:
        return {**self.traffic.counters(), "events_published": self.bus.published,
                "events_dropped": self.bus.dropped, "bans": self.refusals.bans,
                "penalties": dict(self.mesh.scores.penalties),
                "signals_dropped": dict(self.mesh.relay.dropped),
                "rejections": dict(sorted(self.mesh.rejected.items()))}

    def now_ms(self) -> int:
        return clock.now_ms()

    def index(self) -> Index:
        return self._index

    def views(self) -> Views:
        from .core.views import build_views  # only the API's views route needs it

        return build_views(self.mesh.replica, self.identity.public_key, clock.now_ms(),
                           self.reader)
