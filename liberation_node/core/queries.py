"""Paged reads of the replica: what the control API lists (docs/api.md).

`build_views` (views.py) derives every table from every op, which is right for a
check and wrong for a page that asks twice a second: at 20,000 ops it costs
a CPU-second per call. An `Index` instead follows the replica: it keeps, per
listing, the keys of its rows in sorted order and catches up on the ops applied
since the last read, so a read costs O(page) plus the new ops.

It relies on two facts of `Replica`: `order` only grows (ops are appended as
applied), except when a fork voids ops or swaps proofs (protocols/ops.md §9),
which bumps `replica.forks_changed` (and re-folds the ledger); the index notices
the new count and rebuilds. Effects are read from the ledger at query time, never
copied.

Rows are sorted by keys every replica derives alike: `(timestamp, op id)`,
newest first. A cursor is the key of the last row handed out, encoded; the
next page is what sorts strictly after it.

A message's text comes through a `Reader` (reading.py): a row says when this
node cannot show it (a direct message for others, a dropped or retracted
content) instead of showing it.
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from .bodies import Claim, Post, PostHeader, Register, Retract, Transfer
from .identity import id_to_text
from .ledger import POOL_TOTAL_CENTS
from .ops import Op
from .reading import Reader
from .records import NodeInfo, NodeLinks
from .replica import Replica
from .routes import shortest_routes, undirected

Key = tuple[int, bytes]  # (timestamp ms, op id or node id)
T = TypeVar("T")
STATES = ("active", "retracted", "all")


class BadCursor(ValueError):
    """A cursor this index did not hand out."""


def encode_cursor(key: Key) -> str:
    raw = key[0].to_bytes(8, "big") + key[1]
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> Key:
    if len(text) > 64:
        raise BadCursor("cursor: too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise BadCursor("cursor: not one this node handed out") from None
    if len(raw) != 8 + 32:
        raise BadCursor("cursor: not one this node handed out")
    return int.from_bytes(raw[:8], "big"), raw[8:]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Pool:
    total_cents: int
    available_cents: int
    distributed_cents: int  # register grants and weekly claims handed out
    transferred_cents: int


@dataclass(frozen=True, slots=True)
class HumanRow:
    id: str
    name: str
    balance_cents: int  # claims plus every valid incoming transfer, minus outgoing
    spendable_cents: int  # acknowledged credits only (ledger.py)
    total_received_cents: int
    registered_ms: int
    last_claim_ms: int | None
    status: str  # "active" or "forked"


@dataclass(frozen=True, slots=True)
class TransactionRow:
    id: str
    human_id: str  # the author
    kind: str  # register | claim | transfer
    amount_cents: int
    counterparty: str | None
    memo: str | None
    week: int | None
    timestamp_ms: int
    status: str  # "applied" or "void"
    reason: str | None  # the void reason (protocols/ops.md §7.2)


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: str
    author: str
    author_name: str
    channel: str
    priority: int
    text: str | None  # None when this node cannot show it: `unreadable` says why
    to: str | None  # a direct message's recipient, when this node may know it
    timestamp_ms: int
    retracted: bool
    forked: bool  # its author equivocated at or before it: void (ops.md §9)
    reach: int  # nodes holding it: this node, and others whose announced frontier does
    encrypted: bool  # sealed to its recipient and author (ops.md §13)
    readable: bool
    unreadable: str | None  # dropped, retracted, not_for_this_node or invalid (reading.py)


@dataclass(frozen=True, slots=True)
class TopologyNode:
    id: str
    name: str
    me: bool
    connected: bool  # an open session with this node now
    expires_ms: int | None  # when its node.info stops counting; None: no record held


@dataclass(frozen=True, slots=True)
class TopologyLink:
    a: str
    b: str
    rtt_ms: int


@dataclass(frozen=True, slots=True)
class TopologyRoute:
    to: str
    next_hop: str
    hops: int
    latency_ms: int
    path: list[str]  # this node first, `to` last


@dataclass(frozen=True, slots=True)
class Topology:
    nodes: list[TopologyNode]
    links: list[TopologyLink]
    routes: list[TopologyRoute]


_KINDS = {Register: "register", Claim: "claim", Transfer: "transfer"}


class Index:
    """Sorted keys over one replica's ops, caught up on every read."""

    def __init__(self, replica: Replica, local: bytes, reader: Reader | None = None) -> None:
        self.replica = replica
        self.local = local
        self.reader = reader or Reader(None, replica.network)
        self._forks = -1  # `replica.forks_changed` when last caught up
        self._seen = 0
        self._frontiers: dict[bytes, dict[bytes, int]] = {}  # node.info record id -> frontier

    def _reset(self) -> None:
        self._ledger: list[Key] = []
        self._by_human: dict[bytes, list[Key]] = {}
        self._humans: list[Key] = []  # (registered at, author)
        self._posts: list[Key] = []
        self._by_channel: dict[str, list[Key]] = {}
        self._by_author: dict[bytes, list[Key]] = {}
        self._by_to: dict[bytes, list[Key]] = {}
        self._to: dict[bytes, bytes] = {}  # direct message -> its recipient, where known
        self._retracted: set[bytes] = set()
        self._retracted_keys: list[Key] = []

    def _sync(self) -> None:
        order = self.replica.order
        if self.replica.forks_changed != self._forks:  # a fork voided ops: start over
            self._reset()
            self._forks, self._seen = self.replica.forks_changed, 0
        for op in order[self._seen:]:
            self._add(op)
        self._seen = len(order)

    def _void(self, op: Op) -> bool:
        feed = self.replica.feeds.get(op.author)
        return feed is not None and feed.fork_seq is not None and op.seq >= feed.fork_seq

    def _add(self, op: Op) -> None:
        body, key = op.body, (op.timestamp, op.id)
        if isinstance(body, Register | Claim | Transfer):
            bisect.insort(self._ledger, key)
            bisect.insort(self._by_human.setdefault(op.author, []), key)
            if isinstance(body, Transfer):
                bisect.insort(self._by_human.setdefault(body.to, []), key)
            effect = self.replica.ledger.effects.get(op.id)
            if isinstance(body, Register) and effect is not None and effect.void is None:
                bisect.insort(self._humans, (op.timestamp, op.author))
        elif isinstance(body, Post | PostHeader):
            bisect.insort(self._posts, key)
            bisect.insort(self._by_channel.setdefault(body.channel, []), key)
            bisect.insort(self._by_author.setdefault(op.author, []), key)
            # A sealed message names its recipient only to its readers (ops.md §13.1).
            to = body.to if isinstance(body, Post) else \
                self.reader.read(op, self.replica.contents).to if body.channel == "direct" \
                else None
            if to is not None:
                self._to[op.id] = to
                bisect.insort(self._by_to.setdefault(to, []), key)
        elif isinstance(body, Retract) and not self._void(op):
            target = self.replica.ops.get(body.post)
            if target is not None and body.post not in self._retracted:
                self._retracted.add(body.post)
                bisect.insort(self._retracted_keys, (target.timestamp, target.id))

    # -- the ledger -----------------------------------------------------------------------

    def pool(self) -> Pool:
        ledger = self.replica.ledger
        return Pool(POOL_TOTAL_CENTS, ledger.pool_available, ledger.granted + ledger.claimed,
                    ledger.transferred)

    def humans_count(self) -> int:
        self._sync()
        return len(self._humans)

    def human(self, node_id: bytes) -> HumanRow | None:
        self._sync()
        ledger = self.replica.ledger
        acct = ledger.accounts.get(node_id)
        if acct is None or acct.registered_at is None:
            return None
        incoming = ledger.incoming(node_id)
        feed = self.replica.feeds.get(node_id)
        forked = feed is not None and feed.fork_seq is not None
        return HumanRow(id_to_text(node_id), acct.name, acct.claimed + incoming - acct.spent,
                        acct.spendable, acct.claimed + incoming, acct.registered_at,
                        acct.last_claim_at, "forked" if forked else "active")

    def humans(self, limit: int, cursor: str | None = None) -> Page[HumanRow]:
        """Registered identities, the most recently registered first."""
        self._sync()
        rows = []
        keys = _newest_first(self._humans, cursor, lambda key: True)
        for key in keys:
            row = self.human(key[1])
            if row is not None:
                rows.append((key, row))
            if len(rows) > limit:
                break
        return _page(rows, limit)

    def transactions(self, limit: int, cursor: str | None = None,
                     human: bytes | None = None) -> Page[TransactionRow]:
        """Ledger ops (register, claim, transfer), newest first; with `human`, those it
        wrote or that pay it."""
        self._sync()
        base = self._ledger if human is None else self._by_human.get(human, [])
        rows = []
        for key in _newest_first(base, cursor, lambda key: True):
            rows.append((key, self._transaction(self.replica.ops[key[1]])))
            if len(rows) > limit:
                break
        return _page(rows, limit)

    def _transaction(self, op: Op) -> TransactionRow:
        body = op.body
        assert isinstance(body, Register | Claim | Transfer)
        effect = self.replica.ledger.effects.get(op.id)
        void = effect.void if effect is not None else None
        # A void transfer shows the amount it tried to pay; a void grant or claim paid 0.
        shown = effect is not None and (isinstance(body, Transfer) or void is None)
        amount = effect.amount if shown and effect is not None else 0
        return TransactionRow(
            op.id.hex(), id_to_text(op.author), _KINDS[type(body)], amount,
            id_to_text(body.to) if isinstance(body, Transfer) else None,
            body.memo if isinstance(body, Transfer) else None,
            body.week if isinstance(body, Claim) else None,
            op.timestamp, "void" if void is not None else "applied",
            void.value if void is not None else None)

    # -- messages -------------------------------------------------------------------------

    def messages(self, limit: int, cursor: str | None = None, *, now: int,
                 channel: str | None = None, author: bytes | None = None,
                 to: bytes | None = None, state: str = "active") -> Page[MessageRow]:
        """Posts, newest first, filtered; `state` is active, retracted or all."""
        if state not in STATES:
            raise ValueError(f"state: one of {', '.join(STATES)}")
        self._sync()
        # Scan the narrowest list that holds every match; check the other filters per row.
        if author is not None:
            base = self._by_author.get(author, [])
        elif to is not None:
            base = self._by_to.get(to, [])
        elif state == "retracted":
            base = self._retracted_keys
        elif channel is not None:
            base = self._by_channel.get(channel, [])
        else:
            base = self._posts
        ops = self.replica.ops

        def wanted(key: Key) -> bool:
            op = ops[key[1]]
            body = op.body
            assert isinstance(body, Post | PostHeader)
            if (channel is not None and body.channel != channel) or \
                    (author is not None and op.author != author) or \
                    (to is not None and self._to.get(op.id) != to):
                return False
            if state == "all":
                return True
            retracted = op.id in self._retracted
            return retracted if state == "retracted" else not (retracted or self._void(op))

        picked = []
        for key in _newest_first(base, cursor, wanted):
            picked.append(key)
            if len(picked) > limit:
                break
        frontiers = self._live_frontiers(now)
        rows = [(key, self._message(ops[key[1]], frontiers)) for key in picked]
        return _page(rows, limit)

    def _live_frontiers(self, now: int) -> list[dict[bytes, int]]:
        """The frontiers announced in other nodes' live node.info records (decoded once
        per record). This node's own is left out: it holds every op it shows, whatever it
        announced before the op arrived (records refresh slowly, ops.md §8.5)."""
        live: dict[bytes, dict[bytes, int]] = {}
        for record in self.replica.records.values():
            if isinstance(record.body, NodeInfo) and record.expires > now \
                    and record.author != self.local:
                known = self._frontiers.get(record.id)
                live[record.id] = known if known is not None else dict(record.body.frontier)
        self._frontiers = live
        return list(live.values())

    def name(self, node_id: bytes) -> str:
        """Who wrote something: the registered human name, else the node's, else empty."""
        acct = self.replica.ledger.accounts.get(node_id)
        if acct is not None and acct.registered_at is not None and acct.name:
            return acct.name
        return self._node_name(node_id)

    def node_name(self, node_id: bytes) -> str:
        """What a node is called: its node.info name, else its human's name, else empty."""
        return self._node_name(node_id) or self.name(node_id)

    def _node_name(self, node_id: bytes) -> str:
        record = self.replica.records.get((node_id, "node.info"))
        return record.body.name if record is not None and isinstance(record.body, NodeInfo) \
            else ""

    def _message(self, op: Op, frontiers: list[dict[bytes, int]]) -> MessageRow:
        body = op.body
        assert isinstance(body, Post | PostHeader)
        reading = self.reader.read(op, self.replica.contents)
        return MessageRow(
            op.id.hex(), id_to_text(op.author), self.name(op.author), body.channel,
            body.priority, reading.text, id_to_text(reading.to) if reading.to else None,
            op.timestamp, op.id in self._retracted, self._void(op),
            1 + sum(1 for f in frontiers if f.get(op.author, 0) >= op.seq), reading.encrypted,
            reading.text is not None, reading.unreadable)

    # -- the mesh -------------------------------------------------------------------------

    def topology(self, now: int, peers: Mapping[bytes, int | None]) -> Topology:
        """Nodes and links from live node.info / node.links records, with this node's
        own links taken from its open sessions (`peers`: node id -> RTT ms), which are
        fresher than the record it last published; routes from this node."""
        links: dict[bytes, dict[bytes, int]] = {}
        infos: dict[bytes, tuple[str, int]] = {}
        for (author, _), record in self.replica.records.items():
            if record.expires <= now:
                continue
            if isinstance(record.body, NodeInfo):
                infos[author] = (record.body.name, record.expires)
            elif isinstance(record.body, NodeLinks) and author != self.local:
                links[author] = dict(record.body.links)
        links[self.local] = {peer: rtt or 0 for peer, rtt in peers.items()}
        graph = undirected(links)
        ids = set(infos) | set(graph) | {self.local}
        nodes = [TopologyNode(id_to_text(n), self.node_name(n),
                              n == self.local, n in peers,
                              infos[n][1] if n in infos else None)
                 for n in sorted(ids)]
        edges = [TopologyLink(id_to_text(a), id_to_text(b), rtt)
                 for a in sorted(graph) for b, rtt in sorted(graph[a].items()) if a < b]
        routes = [TopologyRoute(id_to_text(r.destination), id_to_text(r.path[1]),
                                r.hop_count, r.total_latency, [id_to_text(n) for n in r.path])
                  for r in shortest_routes(graph, self.local)]
        return Topology(nodes, edges, routes)


def _newest_first(keys: list[Key], cursor: str | None,
                  wanted: Callable[[Key], bool]) -> Iterator[Key]:
    """`keys` (ascending) from the newest down, after `cursor`, that are `wanted`."""
    end = len(keys) if cursor is None else bisect.bisect_left(keys, decode_cursor(cursor))
    for i in range(end - 1, -1, -1):
        if wanted(keys[i]):
            yield keys[i]


def _page(rows: list[tuple[Key, T]], limit: int) -> Page[T]:
    """Up to `limit` rows; the caller fetched one more to learn whether more follow."""
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([row for _, row in rows], encode_cursor(rows[-1][0]) if more and rows else None)
