"""The mesh's time: one timer for the driver, the earliest of every connection's (kept
in a heap, so quiet peers cost nothing) and the mesh-wide ones: gossip announcements
and GRAFTs (protocols/sync.md §5.4, §5.5), anti-entropy rounds (§6.6), requests for
missing past and post contents (§7.1, §7.4), record refresh and expiry (§5.6, ops.md
§8.5). Waits on the network scale with the typical round-trip time.

A mixin of `Mesh` (mesh.py); the state it shares: meshstate.py.
"""

from __future__ import annotations

import heapq

from .events import Changed
from .frames import MAX_REFS, Graft, IHave, Want
from .meshstate import MeshState
from .session import State

_OPEN = State.OPEN  # read on every input: a global, not an enum class attribute


class Timers(MeshState):
    """When the mesh next needs the driver, and what it does then."""

    def _typical_rtt(self, now: int) -> int:
        """The median smoothed RTT of our sessions (0 before any is known; a session not
        measured yet counts with the RTT its driver saw while connecting), recomputed at
        most once a second: what the timers that wait on the network scale with."""
        at, rtt = self._rtt
        if now - at >= 1_000 or at < 0:
            rtts = sorted(r for p in self._peers.values()
                          if (r := p.session.rtt_estimate_ms) is not None)
            rtt = rtts[len(rtts) // 2] if rtts else 0
            self._rtt = (now, rtt)
            self.gossip.announcements.measured(rtt)
        return rtt

    def _graft_timeout(self, now: int) -> int:
        cfg = self.config.gossip
        return self.sync.jitter(max(cfg.graft_timeout_ms,
                                    int(cfg.graft_rtts * self._typical_rtt(now))))

    def _settle_ms(self, now: int) -> int:
        return max(self.config.settle_ms, int(self.config.settle_rtts * self._typical_rtt(now)))

    def _retime(self) -> None:
        """Recompute the timers of the connections touched since the last call."""
        peers, dues, sync = self._peers, self._due, self.sync
        for conn in self._touched:
            peer = peers.get(conn)
            due = None
            if peer is not None:
                session = peer.session
                due = session.timer()
                if due is not None and session.state is _OPEN:
                    due = min(due, sync.timer(peer))
                if peer.owed.answers:
                    ready = peer.owed.ready_at(self._now, self.config.serve)
                    if ready is not None and due is not None:  # answers waiting for budget
                        due = min(due, ready)
            if due is None:
                dues.pop(conn, None)
            elif dues.get(conn) != due:
                dues[conn] = due
                heapq.heappush(self._timers, (due, conn))
        self._touched.clear()

    def get_timer(self) -> int | None:
        self._retime()
        timers, dues = self._timers, self._due
        while timers and dues.get(timers[0][1]) != timers[0][0]:
            heapq.heappop(timers)  # stale: the connection's timer moved, or it is gone
        first = min(self._next_records, self._next_want_sweep)
        if timers and timers[0][0] < first:
            first = timers[0][0]
        for t in (self.gossip.timer(), self.own.timer(), self.bodies.timer()):
            if t is not None and t < first:
                first = t
        return first

    def handle_timer(self, now: int) -> None:
        self._retime()
        timers = self._timers
        while timers and timers[0][0] <= now:
            due, conn = heapq.heappop(timers)
            if self._due.get(conn) != due:
                continue
            del self._due[conn]
            self._touched.add(conn)
            self._dirty[conn] = None  # its serve budget may have refilled
            peer = self._peers[conn]
            peer.session.handle_timer(now)
            if peer.session.state is State.OPEN:
                self.sync.handle_timer(peer, now)
        if self.own.expire(now):
            self._writes_opened()
        self._reshape()
        announce, graft = self.gossip.due(now, self._graft_timeout(now))
        for conn, rows in announce.items():
            target = self._peers.get(conn)
            for i in range(0, len(rows), MAX_REFS):  # each frame under 64 KiB
                if target is not None:
                    target.session.send(IHave(tuple(rows[i : i + MAX_REFS])))
        for conn, refs in graft.items():
            target = self._peers.get(conn)
            for i in range(0, len(refs), MAX_REFS):
                if target is not None:
                    target.session.send(Graft(tuple(refs[i : i + MAX_REFS])))
        if now >= self._next_want_sweep:
            for conn, want in self.catchup.sweep([p.conn for p in self._open_peers()], now):
                self._peers[conn].session.send(want)
            self._next_want_sweep = now + self.config.want_retry_ms
        self._fetch_contents(now)
        if now >= self._next_records:
            dropped = tuple(self.replica.prune_records(now))
            expired = tuple(self.replica.expire_contents(now))  # retention by age
            if dropped or expired:
                self._events.append(Changed((), (), (), dropped, None, contents=expired))
            if dropped:
                self.gossip.beacon = min((a for a, k in self.replica.records
                                          if k == "node.info"), default=None)
            self.publish_presence(now)
            self._next_records = now + self.sync.jitter(self.config.record_refresh_ms)

    def _fetch_contents(self, now: int) -> None:
        """Ask peers for contents this node wants and lacks, a few per peer (sync.md §7.4)."""
        timer = self.bodies.timer()
        if timer is None or timer > now:
            return
        peers = {p.conn: p for p in self._open_peers()}
        for conn, refs in self.bodies.due(now, sorted(peers)).items():
            peers[conn].session.send(Want(0, tuple((r.author, r.seq, r.seq) for r in refs),
                                          (), ()))
