"""Dissemination of new ops: Plumtree-style eager/lazy push (protocols/sync.md §5).

Every link starts *eager*: a newly applied op is pushed whole to eager peers and
announced by id (IHAVE, batched) to *lazy* ones. When an eager push brings us an
op we already had, the link is redundant for dissemination: we PRUNE it (the
sender turns it lazy). When an IHAVE names an op we lack and the op has not
come by push within `graft_timeout_ms`, we GRAFT it from the announcer, which
also turns that link eager again. The eager links settle into a spanning tree,
so each op crosses each node about once (Leitão et al., "Epidemic Broadcast
Trees", 2007); lazy announcements plus anti-entropy (reconcile.py) make sure no
op is ever lost when the tree breaks.

Pure bookkeeping: this module decides *what* to send to whom; mesh.py sends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .events import ConnId

Ref = tuple[bytes, int, bytes]  # (author, seq, op id)


@dataclass(frozen=True)
class GossipConfig:
    ihave_delay_ms: int = 50  # batch announcements for this long
    graft_timeout_ms: int = 500  # wait this long for a push before grafting
    max_missing: int = 10_000  # announced-but-missing ops tracked at once


@dataclass
class _Missing:
    deadline: int
    announcers: list[ConnId] = field(default_factory=list)  # next one to graft from first
    ref: Ref | None = None


class Gossip:
    def __init__(self, config: GossipConfig) -> None:
        self.config = config
        self.eager: set[ConnId] = set()
        self.lazy: set[ConnId] = set()
        self._announce: dict[ConnId, list[Ref]] = {}
        self._announce_due: int | None = None
        self._missing: dict[bytes, _Missing] = {}  # op id -> who announced it

    def peer_up(self, conn: ConnId) -> None:
        self.eager.add(conn)
        self.lazy.discard(conn)

    def peer_down(self, conn: ConnId) -> None:
        self.eager.discard(conn)
        self.lazy.discard(conn)
        self._announce.pop(conn, None)
        for missing in self._missing.values():
            if conn in missing.announcers:
                missing.announcers.remove(conn)

    def delivered(self, refs: list[Ref], source: ConnId | None,
                  now: int) -> dict[ConnId, list[Ref]]:
        """Ops new to us: returns what to push eagerly, per peer; queues announcements."""
        push: dict[ConnId, list[Ref]] = {}
        if not refs:
            return push
        for conn in self.eager:
            if conn != source:
                push[conn] = refs
        for conn in self.lazy:
            if conn != source:
                self._announce.setdefault(conn, []).extend(refs)
                if self._announce_due is None:
                    self._announce_due = now + self.config.ihave_delay_ms
        for ref in refs:
            self._missing.pop(ref[2], None)
        return push

    def duplicate_push(self, source: ConnId) -> bool:
        """An eager push brought an op we had: True if we should PRUNE `source`."""
        if source in self.eager:
            self.eager.discard(source)
            self.lazy.add(source)
            return True
        return False

    def pruned(self, conn: ConnId) -> None:
        if conn in self.eager:
            self.eager.discard(conn)
            self.lazy.add(conn)

    def grafted(self, conn: ConnId) -> None:
        if conn in self.lazy or conn in self.eager:
            self.lazy.discard(conn)
            self.eager.add(conn)

    def announced(self, conn: ConnId, refs: list[Ref], have: set[bytes], now: int) -> None:
        """IHAVE from `conn`; `have` are the ids among `refs` we already hold or await."""
        for ref in refs:
            if ref[2] in have:
                continue
            missing = self._missing.get(ref[2])
            if missing is None:
                if len(self._missing) >= self.config.max_missing:
                    continue  # anti-entropy will find it; never grow without bound
                missing = self._missing[ref[2]] = _Missing(
                    now + self.config.graft_timeout_ms, ref=ref)
            if conn not in missing.announcers:
                missing.announcers.append(conn)

    def timer(self) -> int | None:
        deadlines = [m.deadline for m in self._missing.values() if m.announcers]
        if self._announce_due is not None:
            deadlines.append(self._announce_due)
        return min(deadlines) if deadlines else None

    def due(self, now: int) -> tuple[dict[ConnId, list[Ref]], dict[ConnId, list[Ref]]]:
        """(announcements to flush as IHAVE, refs to GRAFT) per peer, at `now`."""
        announce: dict[ConnId, list[Ref]] = {}
        if self._announce_due is not None and now >= self._announce_due:
            announce, self._announce = self._announce, {}
            self._announce_due = None
        graft: dict[ConnId, list[Ref]] = {}
        for op_id, missing in list(self._missing.items()):
            if now < missing.deadline:
                continue
            if not missing.announcers:
                del self._missing[op_id]
                continue
            conn = missing.announcers.pop(0)
            assert missing.ref is not None
            graft.setdefault(conn, []).append(missing.ref)
            self.grafted(conn)
            missing.deadline = now + self.config.graft_timeout_ms  # then try the next one
        return announce, graft
