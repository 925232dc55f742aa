"""The connection manager: the mesh's sessions and the peering decisions, together
(DESIGN §4; protocols/transport.md §7).

`Peering` (peering.py) decides whom to dial and whom to drop from what it is told;
this module tells it, from the mesh's own events, and acts on its answers, so that
the daemon (node.py) and the simulator drive the very same logic:

    conns.on_event(event, now)      # every event drained from the mesh
    conns.link_opened(dial, conn, now) / conns.dial_failed(key, now)
    for dial in conns.step(now): ...   # dial these (closes surplus sessions itself)
    conns.accepts(connecting, now)   # may an incoming offer become a connection?
    conns.timer()                    # when `step` may have something new

Peer exchange: every `node.info` record the replica takes in names a candidate and
its URLs (only those in scope, transport.md §7.7); the URLs refused are reported
once each (`refused()`), for the log. A dial that reached another node than it
expected keeps that node as an ordinary peer (`Misdirected`, §7.4).

Pure: time comes in as `now`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .candidates import Source
from .events import Changed, Event, PeerDown, PeerUp
from .mesh import Mesh
from .peering import Dial, Misdirected, Peering
from .records import NodeInfo, Record
from .referrals import Referral, referrals, referred
from .session import CloseReason


class Connections:
    def __init__(self, mesh: Mesh, peering: Peering, *, spare: int = 2) -> None:
        """`spare`: connections accepted beyond the peering's `high` mark (open sessions
        and handshakes under way), so that a dial from a newcomer is taken and then the
        worst peer shed, rather than refused (transport.md A.4)."""
        self.mesh = mesh
        self.peering = peering
        self.spare = spare
        self._refused: list[tuple[str, str, bytes]] = []  # (url, scope, announced by)

    def learn_records(self, records: Iterable[Record], now: int) -> None:
        """Peer exchange: live `node.info` records are candidates (DESIGN §4)."""
        for record in records:
            if record.kind == "node.info" and record.expires > now \
                    and isinstance(record.body, NodeInfo):
                for url, scope in self.peering.learn(record.author, record.body.urls,
                                                     Source.RECORD, now):
                    self._refused.append((url, scope, record.author))

    def refused(self) -> list[tuple[str, str, bytes]]:
        """Announced URLs not dialed for being out of scope, each reported once."""
        out, self._refused = self._refused, []
        return out

    def on_event(self, event: Event, now: int) -> Misdirected | None:
        """Tell the peering what the mesh reported."""
        if isinstance(event, PeerUp):
            return self.peering.session_up(event.conn, event.peer, now)
        if isinstance(event, PeerDown):
            surplus = event.reason == CloseReason.TOO_MANY_PEERS
            self.peering.session_down(event.conn, now, shed=event.by_peer and surplus,
                                      surplus=surplus)
        elif isinstance(event, Changed) and event.records:
            self.learn_records(event.records, now)
        return None

    def link_opened(self, dial: Dial, conn: int, now: int) -> None:
        self.peering.link_opened(dial, conn, now)

    def dial_failed(self, key: str, now: int, full: bool = False,
                    named: Iterable[Referral] = ()) -> None:
        """`full`: the peer refused for want of room (503, transport.md §7.3); `named`:
        the peers it named in its refusal, candidates to try (core/referrals.py)."""
        referred(self.peering, named, now)
        self.peering.dial_failed(key, now, full)

    def referrals(self, dialer: bytes | None, now: int) -> list[Referral]:
        """The peers to name when refusing `dialer` for want of room (§3.3)."""
        return referrals(self.peering, dialer, now)

    def step(self, now: int) -> list[Dial]:
        """The dials due now; sessions above the high mark are closed (the worst ones:
        not protected, not newcomers, lowest score, then slowest; peering.py)."""
        count = self.mesh.peer_count()
        dials = self.peering.due(now, count, self.mesh.relay_path)
        if count <= self.peering.config.high:
            return dials
        peers = self.mesh.peers()
        by_peer = {peer: conn for conn, peer in peers.items()}
        for worst in self.peering.surplus(self._rtts(peers), now):
            self.mesh.close(by_peer[worst], CloseReason.TOO_MANY_PEERS,
                            "replacing the worst peers")
        return dials

    def _rtts(self, peers: dict[int, bytes]) -> dict[bytes, int | None]:
        rtts: dict[bytes, int | None] = {}
        for conn, peer in peers.items():
            session = self.mesh.session(conn)
            rtts[peer] = session.rtt_ms if session else None
        return rtts

    def accepts(self, connecting: int, now: int) -> bool:
        """Room for another peer? Open sessions, session handshakes under way and
        `connecting` connections being set up (dialed or answered, no link yet):
        below `high`, yes; up to `spare` more only while as many peers could be shed to
        make room, neither protected nor newcomers (transport.md §7.6). A newcomer taken
        beyond the mark when no such peer is left would be shed at once: that cost a
        handshake and a `too_many_peers` close where a refusal costs a round trip, and
        the dialer, shed again each time it came back, never got in."""
        peers = self.mesh.peers()
        taken = len(peers) + self.mesh.handshakes() + connecting
        high = self.peering.config.high
        if taken < high:
            return True
        return taken < high + self.spare \
            and self.peering.replaceable(self._rtts(peers), now) > taken - high

    def timer(self) -> int | None:
        return self.peering.timer()
