"""The mesh's peer table: one `Peer` per transport connection, from `connection_made`
to its `PeerDown` (protocols/sync.md §4: sessions; §4.2: two connections to one peer;
§4.4: clock offsets from the heartbeat; §4.7: bans by node id and by address).

A mixin of `Mesh` (mesh.py); the state it shares: meshstate.py.
"""

from __future__ import annotations

from .events import ConnId, PeerDown, PeerUp
from .meshstate import MeshState
from .peer import Peer
from .scoring import address_key
from .session import CloseReason, Session, State

_OPEN = State.OPEN  # read on every input: a global, not an enum class attribute


class PeerTable(MeshState):
    """Connections and their sessions: who is connected, open, banned."""

    def connection_made(self, conn: ConnId, binding: bytes, now: int, *, initiator: bool,
                        address: str | None = None, rtt_hint: int | None = None) -> None:
        """The transport to a peer is up; `binding` is the value both ends sign (sync.md
        §4.1); `rtt_hint`, a round-trip time measured while connecting, if known.
        `address` names where it comes from (the driver's choice of key, e.g. an IP
        address): scores and bans hold for it as for the peer's node id (§4.7)."""
        nonce = int.from_bytes(self._entropy(6), "big")
        session = Session(self.identity, self.network, binding, now, self.config.session, nonce,
                          rtt_hint=rtt_hint, notify=lambda: self._mark(conn),
                          changed=lambda: self._state_changed(conn))
        self._peers[conn] = Peer(conn, session, initiator, address)
        self._mark(conn)
        if address is not None and self.scores.banned(address_key(address), now):
            session.close(CloseReason.BANNED, "this address is banned for a while")

    def connection_lost(self, conn: ConnId, now: int) -> None:
        peer = self._peers.get(conn)
        if peer is not None:
            peer.session.transport_lost()
            self._drop(peer, now)

    def close(self, conn: ConnId, reason: str = CloseReason.SHUTDOWN, detail: str = "") -> None:
        peer = self._peers.get(conn)
        if peer is not None:
            peer.session.close(reason, detail)

    def peers(self) -> dict[ConnId, bytes]:
        """Open sessions: connection -> peer node id."""
        return {c: p.session.peer for c, p in self._peers.items()
                if p.session.state is _OPEN and p.session.peer is not None}

    def peer_count(self) -> int:
        """How many sessions are open: `len(peers())`, without a look at each (the
        connection manager asks after every input)."""
        return len(self._open)

    def handshakes(self) -> int:
        """Connections whose session handshake is under way."""
        return sum(p.session.state is State.HANDSHAKE for p in self._peers.values())

    def banned(self, address: str, now: int) -> bool:
        """Is `address` (as the driver names addresses) banned now? (sync.md §4.7)"""
        return self.scores.banned(address_key(address), now)

    def clock_offset(self) -> int | None:
        """Our clock minus the median of our peers' clocks (ms), from their PONGs;
        None before any peer answered a PING (sync.md §4.4)."""
        offsets = sorted(p.session.clock_offset_ms for p in self._open_peers()
                         if p.session.clock_offset_ms is not None)
        if not offsets:
            return None
        mid = len(offsets) // 2
        median = offsets[mid] if len(offsets) % 2 else (offsets[mid - 1] + offsets[mid]) // 2
        return -median

    def session(self, conn: ConnId) -> Session | None:
        peer = self._peers.get(conn)
        return peer.session if peer else None

    def _drop(self, peer: Peer, now: int) -> None:
        self._peers.pop(peer.conn, None)
        self._open.pop(peer.conn, None)
        self._dirty.pop(peer.conn, None)
        self._due.pop(peer.conn, None)
        self.gossip.peer_down(peer.conn, now)
        self._reshape()
        self.catchup.peer_gone(peer.conn)
        self.sync.peer_gone(peer)
        reason, detail, by_peer = peer.session.close_reason or (CloseReason.SHUTDOWN, "", False)
        self.conduct.closed(peer, reason, by_peer, now)
        self._events.append(PeerDown(peer.conn, peer.session.peer, reason, detail, by_peer))

    def _state_changed(self, conn: ConnId) -> None:
        peer = self._peers.get(conn)
        if peer is not None and peer.session.state is _OPEN:
            self._open[conn] = None
        else:
            self._open.pop(conn, None)

    def _opened(self, peer: Peer, now: int) -> None:
        assert peer.session.peer is not None
        if self.conduct.banned(peer, now):
            peer.session.close(CloseReason.BANNED, "this node is banned for a while")
            return
        lonely = True
        for other in self._peers.values():
            if other is peer or other.session.state is not State.OPEN:
                continue
            lonely = False
            if other.session.peer == peer.session.peer:
                # Two connections to one peer (both dialed): keep the one dialed by the
                # lower node id, so both ends pick the same one (sync.md §4.2).
                me_lower = self.identity.public_key < peer.session.peer
                keep_new = peer.initiator == me_lower
                loser = other if keep_new else peer
                loser.session.close(CloseReason.DUPLICATE_PEER, "already connected")
                if loser is peer:
                    return
        self.gossip.peer_up(peer.conn, now)
        self._events.append(PeerUp(peer.conn, peer.session.peer))
        # Records are not sent in bulk here: the round that starts now (or the peer's)
        # exchanges what differs (sync.md §5.6). A node that had no peer republishes its
        # presence at once, so that it spreads over the gossip tree.
        self.sync.peer_opened(peer, now)
        if lonely:
            self._next_records = now

    def _open_peers(self) -> list[Peer]:
        return [p for p in self._peers.values() if p.session.state is State.OPEN]
