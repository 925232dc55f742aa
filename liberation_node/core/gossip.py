"""Dissemination of new ops and records: Plumtree-style eager/lazy push on one shared
tree, shaped by hop counts (protocols/sync.md §5; Leitão, Pereira, Rodrigues,
"Epidemic Broadcast Trees", SRDS 2007).

A new op or record is pushed whole over the *eager* links and announced by id
(IHAVE, batched) over the *lazy* ones. Each copy carries its hop count, the
number of links it crossed from its author. When a push brings something we
already had, the link is redundant: we PRUNE it (both ends turn it lazy), and
the eager links settle into a spanning tree, so each op crosses each node
about once. When an IHAVE names an item we lack and no push brings it within
the graft timeout (scaled by the measured round-trip time, jittered), we GRAFT
it from the announcer, which also turns that link eager: the tree heals.

Which links form the tree decides how deep it is. Left to the order in which
the first copies happen to arrive, it follows one moment's latencies and ends
up twice as deep as the graph; every source pays for that on every op. So the
shared tree is shaped by the hop counts of one source that every node agrees
on, the **beacon**: the node with the lowest id among those whose presence
record is held (its records are republished every minute, so the tree is
re-shaped as the mesh changes). The beacon's newest record, the tracked item, is
pushed to every peer, so that each node hears all its neighbours' hop counts as
soon as it has gone round (the tree must form fast: writes start while the
overlay forms). For the beacon's items, a node takes as its way
in the link that offers the fewest hops — by a duplicate push, or by an IHAVE
from a lazy peer (Plumtree's §3.8 optimisation), grafting that link and
pruning the longer one — and announces its improved hop count to its peers, who
do the same (a Bellman-Ford relaxation over the real links). The result is a
breadth-first tree around the beacon: any two nodes are at most twice its
eccentricity apart in it. Items of other authors follow the tree as it is and
never reshape it, so concurrent writers cannot tear it apart. An author pushes its
own new ops to every peer, though, so that they enter the tree at each of them and
take the shorter way from whichever is nearest (sync.md §5.2).

Two rules keep concurrent broadcasts from pruning a node off the tree: a
duplicate never prunes a node's last way in from the side its first copy came
(the link that brought that first copy was pruned since), and ops that reached
us by anti-entropy or a request (not by gossip) are *repair*: announced to every
peer but pushed to none, so a repair never makes a tree link look redundant.

Pure bookkeeping: this module decides *what* to send to whom; mesh.py sends it.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field

from .announcements import Announcements
from .events import ConnId
from .frames import MAX_HOPS, Announced, Ref


@dataclass(frozen=True)
class GossipConfig:
    # Announcements are batched for a typical round-trip time of our links (`ihave_rtts`
    # times it), at least `ihave_delay_ms` and at most `ihave_max_ms` (sync.md §5.4).
    ihave_delay_ms: int = 50
    ihave_rtts: float = 1.0
    ihave_max_ms: int = 1_000
    # Wait this long for a push before grafting, or `graft_rtts` times the typical
    # round-trip time of our links when that is longer (jittered x0.75-1.25).
    graft_timeout_ms: int = 500
    graft_rtts: float = 3.0
    max_missing: int = 10_000  # announced-but-missing ops tracked at once
    # The beacon's items reshape the tree when another link offers at least this
    # many hops fewer. 0: the tree is never reshaped (plain Plumtree).
    tree_hops: int = 1
    # Hysteresis: a link that brought a first copy within this window is not pruned
    # for a duplicate (0: no hysteresis).
    keep_useful_ms: int = 0
    remember: int = 16_384  # items whose hop count and first sender are remembered
    # A new link starts eager while the node has no eager link (it must be reached),
    # lazy once it has: the tree it is in already reaches it, and a new eager link would
    # only make a cycle, whose duplicates prune some link (sync.md §5.1). False: all
    # new links start lazy (the tree is built by grafts alone).
    start_eager: bool = True
    # An author pushes its own new ops to every peer, eager and lazy: the op enters the
    # shared tree at each of them rather than at one or two (sync.md §5.2). False: to
    # eager peers only (plain Plumtree).
    author_fanout: bool = True


# Records of the beacon, or of a node with a lower id (the beacon to be), announced, not
# held yet: the lowest authors' are kept.
_EARLY_ITEMS = 8


@dataclass
class _Missing:
    deadline: int
    announcers: list[ConnId] = field(default_factory=list)  # next one to graft from first
    ref: Ref | None = None


@dataclass(slots=True)
class _Seen:
    """How an item first reached us."""

    hops: int  # our distance from its author: the hop count we forward it with
    source: ConnId | None  # the link it came by (None: our own, or unknown)
    eager: bool  # by gossip (a push, or a GRAFT answer), not by repair


@dataclass
class Reshape:
    """What the tree around the beacon needs: GRAFT these links without refs (our new
    way in), PRUNE these (the longer one)."""

    graft: set[ConnId] = field(default_factory=set)
    prune: set[ConnId] = field(default_factory=set)


class Gossip:
    """Links are eager or lazy both ways (a tree is undirected: a node's own new ops
    must go up the link its peers' come down). The tree around the beacon is kept in
    `parent` (our way in from the beacon) and `children` (peers whose way in we are):
    those links are never pruned for a duplicate."""

    def __init__(self, config: GossipConfig) -> None:
        self.config = config
        self.eager: set[ConnId] = set()
        self.lazy: set[ConnId] = set()
        self._beacon: bytes | None = None
        self.parent: ConnId | None = None
        self.children: set[ConnId] = set()
        self.distance: int | None = None  # our hops from the beacon, by `parent`
        self._tracked: Ref | None = None  # the beacon item whose hop counts we compare
        self._offers: dict[ConnId, int] = {}  # distance each peer offers for it
        # Offers in IHAVEs of the beacon's records not held yet (by record id: author,
        # offers), or of a lower id's (not known to be the beacon yet): one may be the
        # new tracked item, whose push comes later, the long way round.
        self._early: dict[bytes, tuple[bytes, dict[ConnId, int]]] = {}
        self.announcements = Announcements(config.ihave_delay_ms, config.ihave_rtts,
                                           config.ihave_max_ms, config.remember)
        self._missing: dict[bytes, _Missing] = {}  # op id -> who announced it
        self._deadlines: list[tuple[int, bytes]] = []  # heap of (deadline, op id)
        self._seen: OrderedDict[bytes, _Seen] = OrderedDict()  # bounded, oldest first
        self._useful: dict[ConnId, int] = {}  # link -> when it last brought a first copy
        self._prune_sent: set[ConnId] = set()  # lazy links we sent PRUNE on since
        self._reshape = Reshape()  # GRAFT/PRUNE owed for the tree (taken by `reshaped`)
        self.counts = {"pruned": 0, "reshaped": 0, "grafted": 0}

    # -- links ----------------------------------------------------------------------------

    def peer_up(self, conn: ConnId, now: int) -> None:
        if self.config.start_eager and not self.eager:
            self.eager.add(conn)
        else:
            self.lazy.add(conn)
        # Tell the new peer how far we are from the beacon: it may be its shorter way.
        if self._tracked is not None and self.distance is not None:
            self.announcements.queue({conn}, None, self._tracked, self.distance, now,
                                     prompt=True)

    def peer_down(self, conn: ConnId, now: int) -> None:
        self.eager.discard(conn)
        self.lazy.discard(conn)
        self.children.discard(conn)
        self._offers.pop(conn, None)
        self.announcements.forget(conn)
        self._useful.pop(conn, None)
        self._prune_sent.discard(conn)
        for missing in self._missing.values():
            if conn in missing.announcers:
                missing.announcers.remove(conn)
        if conn == self.parent:
            self.parent = self.distance = None
            self._reparent(now)

    def pruned(self, conn: ConnId, now: int = 0, *, by_peer: bool = False) -> None:
        """We send PRUNE, or the peer did (`by_peer`): lazy both ways."""
        if conn in self.eager:
            self.eager.discard(conn)
            self.lazy.add(conn)
        if not by_peer and conn in self.lazy:
            self._prune_sent.add(conn)
        self.children.discard(conn)
        if by_peer and conn == self.parent:
            # Our parent never prunes a child: it sent this before our GRAFT reached it
            # (they crossed). We still want it: say so again.
            self.grafted(conn)
            self._reshape.graft.add(conn)

    def grafted(self, conn: ConnId, now: int = 0, *, child: bool = False) -> None:
        """The peer sent GRAFT (or we send it one): eager both ways. A GRAFT without refs
        says we are its way in from the beacon (`child`)."""
        if conn in self.lazy or conn in self.eager:
            self.lazy.discard(conn)
            self.eager.add(conn)
            self._prune_sent.discard(conn)
            if child:
                self.children.add(conn)
                if conn == self.parent:
                    self._leave_loop(conn, now)

    def _leave_loop(self, conn: ConnId, now: int) -> None:
        """Our parent took us for its way in: each of us took the other's offer while the
        other's GRAFT was on its way (both offers older than the GRAFTs). Nothing would
        ever undo it: distances are not announced to one's parent, so the two stay at
        the distance they took, cut off from the beacon's tree, and reached by whatever
        eager link happens to join them to it (1000 nodes: three nodes 1-2 hops deeper
        than their distance, on every op). Leave it for the best other offer, which
        prunes this link; with none, stay (the peer, seeing the same, leaves) (§5.9)."""
        best = self._best_offer()
        if best is not None:
            self._take(*best, now)
            self._announce_distance(now)

    def reshaped(self) -> Reshape:
        """The GRAFTs (without refs) and PRUNEs the tree needs sent since the last call."""
        out, self._reshape = self._reshape, Reshape()
        return out

    # -- the tree around the beacon -------------------------------------------------------

    @property
    def beacon(self) -> bytes | None:
        """Whose items shape the tree (the mesh sets it from the presence records)."""
        return self._beacon

    @beacon.setter
    def beacon(self, beacon: bytes | None) -> None:
        if beacon != self._beacon:  # distances to another node say nothing: start over
            self._beacon = beacon
            # The parent stays until another is taken, which prunes it (`_take`): dropped
            # here, its link stayed eager for good outside the tree.
            self.distance = self._tracked = None
            self._offers = {}
            self.children.clear()
            if beacon is not None:  # offers for the new beacon's records still count
                self._early = {i: e for i, e in self._early.items() if e[0] <= beacon}

    def track(self, ref: Ref, now: int) -> None:
        """`ref` names the beacon's newest presence record, now held: the item whose hop
        counts shape the tree (one item, so that all nodes compare the same counts).
        Peers that announced it before it was held made offers too (sync.md §5.9)."""
        if self._tracked is None or self._tracked[2] != ref[2]:
            self._tracked, self._offers = ref, {}
            for conn, hops in self._early.pop(ref[2], (b"", {}))[1].items():
                if conn in self.eager or conn in self.lazy:
                    self._offer(conn, hops, now)

    def _tree_item(self, item: bytes) -> bool:
        return self._tracked is not None and self._tracked[2] == item \
            and self.config.tree_hops > 0

    def _offer(self, conn: ConnId, hops: int, now: int) -> None:
        """`conn` is `hops` from the beacon (by the tracked item): if that is our shorter
        way in, make it our parent, and tell our peers (Bellman-Ford)."""
        # A child gets the item from us and never sends or announces it back: one that
        # does has another way in now (its PRUNE was lost to a restart, a new beacon...).
        self.children.discard(conn)
        if hops >= MAX_HOPS or self.distance == 0:
            self._tell(conn, hops, now)
            return
        offered = hops + 1
        self._offers[conn] = offered
        if conn == self.parent and self.distance is not None:
            if offered != self.distance:
                # Our way in got longer (or shorter): another peer may offer better now.
                self.distance = offered
                self._choose(now)
                self._announce_distance(now)
        elif self.distance is None or offered + self.config.tree_hops <= self.distance:
            # With no distance (a new beacon) even our parent is taken anew: it started
            # over too, and counts us as a child only when our GRAFT says so.
            self._take(conn, offered, now)
            self._announce_distance(now)
        else:
            self._tell(conn, hops, now)

    def _take(self, conn: ConnId, offered: int, now: int) -> None:
        old = self.parent
        self.parent, self.distance = conn, offered
        self.grafted(conn)
        self._reshape.graft.add(conn)
        if old is not None and old != conn and (old in self.eager or old in self.lazy):
            # Always tell the old parent, eager or not: it counts us as a child.
            self.pruned(old)
            self._reshape.prune.add(old)
        self.counts["reshaped"] += 1

    def _choose(self, now: int) -> None:
        """Our parent's offer changed: take the peer with the shortest offer if it is at
        least `tree_hops` shorter (children's offers are stale: they hang below us)."""
        assert self.parent is not None and self.distance is not None
        best = self._best_offer()
        if best is not None and best[0] != self.parent \
                and best[1] + self.config.tree_hops <= self.distance:
            self._take(*best, now)

    def _tell(self, conn: ConnId, hops: int, now: int) -> None:
        """`conn` offers `hops` when we are closer by two or more: our announcement came
        when it could not use it (before it held the item or knew the beacon). Tell it
        again: Bellman-Ford relaxes only over offers that arrive where they can be used
        (sync.md §5.9). Once per offer of the peer's, which makes one per change."""
        if self._tracked is None or self.distance is None or hops <= self.distance + 1:
            return
        self.announcements.queue({conn}, None, self._tracked, self.distance, now,
                                 prompt=True)

    def _reparent(self, now: int) -> None:
        """Our parent is gone: the peer that offered the fewest hops is our way in."""
        best = self._best_offer()
        if best is not None:
            self.parent, self.distance = best
            self.grafted(best[0])
            self._reshape.graft.add(best[0])
            self._announce_distance(now)

    def _best_offer(self) -> tuple[ConnId, int] | None:
        """The linked peer offering the fewest hops, and its offer (the lower link id on a
        tie). Children's offers do not count: they hang below us."""
        offers = [(d, c) for c, d in self._offers.items()
                  if (c in self.eager or c in self.lazy) and c not in self.children]
        if not offers:
            return None
        hops, conn = min(offers)
        return conn, hops

    def _announce_distance(self, now: int) -> None:
        if self._tracked is not None and self.distance is not None:
            self.announcements.queue(self.eager | self.lazy, self.parent, self._tracked,
                                     self.distance, now, prompt=True)

    def _protected(self, conn: ConnId) -> bool:
        return conn == self.parent or conn in self.children

    # -- what arrives ---------------------------------------------------------------------

    def first(self, item: bytes, conn: ConnId | None, hops: int, *, eager: bool,
              now: int) -> None:
        """The first copy of `item` (an op or record id) came on `conn` with `hops` (the
        sender's hop count); `eager`: by a push, or an answer to our GRAFT."""
        eager = eager or self._missing.pop(item, None) is not None
        self._remember(item, _Seen(min(MAX_HOPS, hops + 1), conn, eager))
        if conn is not None and eager:
            self._useful[conn] = now
        if conn is not None and self._tree_item(item):
            # A repair's hop count is an offer as good as a push's (the sender's distance,
            # `hops`): at boot the beacon's record mostly comes by the rounds that start
            # with each session, and a node that took it so had no distance (§5.9).
            self._offer(conn, hops, now)

    def own(self, item: bytes) -> None:
        """`item` is ours: hop 0."""
        self._remember(item, _Seen(0, None, True))
        if self._tree_item(item):  # we are the beacon
            self.parent, self.distance = None, 0

    def duplicate(self, item: bytes, conn: ConnId, hops: int, now: int, *,
                  by_author: bool = False) -> ConnId | None:
        """A push on `conn` brought `item` again, with hop count `hops`; `by_author`: the
        peer on `conn` is the op's author. Returns the link to PRUNE, if any (lazy now):
        the duplicate's, unless that link is part of the tree around the beacon (then
        the one the first copy came by, if it is not), or our last way in from the side
        the first copy came."""
        seen = self._seen.get(item)
        self.announcements.holders.add(item, conn)
        if self._tree_item(item):
            self._offer(conn, hops, now)
        if conn not in self.eager:
            if self._tree_item(item) or by_author:
                return None  # pushed to every peer on purpose (`delivered`)
            # Lazy here, yet the peer pushes: the two ends started the link differently
            # (§5.1: it had no eager link, we had one), or our PRUNE is on its way.
            # Nothing else would ever tell it: PRUNE once, until the link is eager again.
            if conn in self.lazy and conn not in self._prune_sent:
                self._prune_sent.add(conn)
                return conn
            return None
        if self._protected(conn):
            # The tree brought it too, after a link outside the tree: that shortcut is
            # the redundant one (the tree spans every node).
            first = seen.source if seen is not None else None
            if first is None or first == conn or first not in self.eager \
                    or self._protected(first):
                return None
            self.pruned(first)
            self.counts["pruned"] += 1
            return first
        if seen is not None:
            if not seen.eager:
                return None  # the first copy was a repair: says nothing about the tree
            if seen.source is not None and seen.source not in self.eager:
                # The link the first copy came by was pruned since (for another item's
                # sake, by either end): this one is our way in from that side now.
                # Pruning it too would cut us off from it (concurrent broadcasts).
                seen.source = conn
                return None
        keep = self.config.keep_useful_ms
        if keep and now - self._useful.get(conn, -keep) < keep:
            return None  # it brought first copies lately: keep it (hysteresis)
        self.pruned(conn)
        self.counts["pruned"] += 1
        return conn

    def announced(self, conn: ConnId, refs: list[Announced], have: set[bytes], now: int,
                  timeout: int) -> None:
        """IHAVE from `conn`; `have` are the ids among `refs` we already hold or await.
        `timeout`: how long to wait for a push before grafting (scaled by the caller).
        An announcement of the beacon's item may offer us a shorter way in (§3.8)."""
        for ref in refs:
            op_id = ref[2]
            self.announcements.holders.add(op_id, conn)
            if op_id in have:
                if self._tree_item(op_id):
                    self._offer(conn, ref[3], now)
                continue
            if ref[1] == 0 and self.config.tree_hops > 0 \
                    and (self._beacon is None or ref[0] <= self._beacon):
                # Perhaps the beacon's next tracked item (or the first of a beacon with a
                # lower id, whose record we do not hold yet): keep the offer for `track`.
                early = self._early.setdefault(op_id, (ref[0], {}))[1]
                early[conn] = min(ref[3], early.get(conn, MAX_HOPS))
                while len(self._early) > _EARLY_ITEMS:
                    del self._early[max(self._early, key=lambda i: (self._early[i][0], i))]
            missing = self._missing.get(op_id)
            if missing is None:
                if len(self._missing) >= self.config.max_missing:
                    continue  # anti-entropy will find it; never grow without bound
                # Graft at once when nothing is on its way: with no eager link but the
                # announcer's, which pushes whatever it has by gossip (it got this by
                # repair, §5.4), or none at all.
                wait = timeout if self.eager - {conn} else 0
                missing = self._missing[op_id] = _Missing(now + wait, ref=ref[:3])
                heapq.heappush(self._deadlines, (missing.deadline, op_id))
            if conn not in missing.announcers:
                missing.announcers.append(conn)

    # -- what to send ---------------------------------------------------------------------

    def delivered(self, items: list[tuple[bytes, Ref | None]], source: ConnId | None,
                  now: int) -> dict[ConnId, list[tuple[bytes, int]]]:
        """Items new to us, in the order applied: `(id, ref)` with `ref` what names the
        item in IHAVE (an op's (author, seq, id); a record's (author, 0, id)), or None to
        never announce it. Returns what to push eagerly, per peer, as `(id, hops)`;
        queues announcements: gossip to lazy peers, repair (not by gossip) to every
        peer. The tracked item is pushed to every peer (§5.9), and so are our own ops
        (`author_fanout`, §5.2)."""
        push: dict[ConnId, list[tuple[bytes, int]]] = {}
        for item, ref in items:
            self._missing.pop(item, None)
            seen = self._seen.get(item)
            hops = self.hops(item)
            if self._tree_item(item):
                # One record a minute for the whole mesh: each copy is an offer, so every
                # node hears each neighbour's distance at once, and the tree is
                # breadth-first as soon as the record has gone round. Sent like the
                # rest, by the tree and IHAVE-then-GRAFT, it went round while the overlay
                # formed in 1-2 s, and ops written meanwhile crossed 13-15 links.
                for conn in self.eager | self.lazy:
                    if conn != source:
                        push.setdefault(conn, []).append((item, hops))
                continue
            if seen is not None and not seen.eager:  # repair: announce to all, push to none
                if ref is not None:
                    self.announcements.queue(self.eager | self.lazy, source, ref, hops, now)
                continue
            if hops == 0 and ref is not None and ref[1] > 0 and self.config.author_fanout:
                # Our own op: into the tree at every peer, each a hop from us. Nothing
                # is left to announce.
                for conn in self.eager | self.lazy:
                    push.setdefault(conn, []).append((item, hops))
                continue
            for conn in self.eager:
                if conn != source:
                    push.setdefault(conn, []).append((item, hops))
            if ref is not None:
                self.announcements.queue(self.lazy, source, ref, hops, now)
        return push

    def hops(self, item: bytes) -> int:
        """The hop count to send `item` with (MAX_HOPS when unknown): for the tracked
        item, our distance from the beacon."""
        if self.distance is not None and self._tree_item(item):
            return self.distance
        seen = self._seen.get(item)
        return seen.hops if seen is not None else MAX_HOPS

    def timer(self) -> int | None:
        while self._deadlines:
            deadline, op_id = self._deadlines[0]
            missing = self._missing.get(op_id)
            if missing is not None and missing.deadline == deadline:
                # Even with no announcer left: the last one was grafted and its answer
                # is on the way, and it must be taken as gossip (§5.1). `due` forgets
                # the item at this deadline.
                break
            heapq.heappop(self._deadlines)  # stale: arrived or rescheduled
        candidates = [t for t in (self.announcements.timer(),
                                  self._deadlines[0][0] if self._deadlines else None)
                      if t is not None]
        return min(candidates) if candidates else None

    def due(self, now: int, timeout: int) -> tuple[dict[ConnId, list[Announced]],
                                                   dict[ConnId, list[Ref]]]:
        """(announcements to flush as IHAVE, refs to GRAFT) per peer, at `now`; `timeout`
        until the next announcer is tried."""
        tracked = self._tracked[2] if self._tracked is not None else None
        announce = self.announcements.due(now, tracked)
        graft: dict[ConnId, list[Ref]] = {}
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, op_id = heapq.heappop(self._deadlines)
            missing = self._missing.get(op_id)
            if missing is None or missing.deadline != deadline:
                continue
            if not missing.announcers:
                del self._missing[op_id]
                continue
            conn = missing.announcers.pop(0)
            assert missing.ref is not None
            graft.setdefault(conn, []).append(missing.ref)
            self.grafted(conn)
            self.counts["grafted"] += 1
            missing.deadline = now + timeout  # then try the next one
            heapq.heappush(self._deadlines, (missing.deadline, op_id))
        return announce, graft

    def _remember(self, item: bytes, seen: _Seen) -> None:
        self._seen[item] = seen
        self._seen.move_to_end(item)
        while len(self._seen) > self.config.remember:
            self._seen.popitem(last=False)
