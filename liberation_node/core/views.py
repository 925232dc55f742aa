"""Derived views that mirror the seed's tables (seed/ARCHITECTURE.md, "Database Schema").

Every view is a pure function of the replica (its held ops and records) plus, for
the few time-dependent columns, an explicit `now`. Two replicas that hold the
same ops and records produce equal views, whatever order things arrived in;
tests/test_properties.py checks exactly that. Ids are shown in their text forms
(node ids per protocols/ops.md §2, op ids as lowercase hex).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from .bodies import CHANNELS, Claim, Post, PostHeader, Register, Retract, Transfer
from .identity import id_to_text
from .ledger import (
    HOUSING_CREDIT_CENTS,
    INVESTMENT_POOL_CENTS,
    POOL_TOTAL_CENTS,
    WEEKLY_FLOW_CENTS,
)
from .reading import Reader
from .records import NodeInfo, NodeLinks
from .replica import Replica
from .routes import shortest_routes, undirected


@dataclass(frozen=True, slots=True)
class Human:
    id: str
    name: str
    weekly_flow: int
    housing_credit: int
    investment_pool: int
    created_at: int
    last_distribution: int | None
    total_received: int  # claims plus every valid incoming transfer
    balance: int  # total_received minus valid outgoing transfers
    spendable: int  # what the next transfer may spend (acknowledged credits only)
    status: str  # "active" or "forked"


@dataclass(frozen=True, slots=True)
class Transaction:
    id: str  # op id hex
    human_id: str
    amount: int
    transaction_type: str  # register | claim | transfer
    timestamp: int
    status: str  # "applied" or "void"
    reason: str | None  # the void reason (protocols/ops.md §7.2)
    counterparty: str | None
    memo: str | None
    week: int | None


@dataclass(frozen=True, slots=True)
class ResourcePool:
    total_wealth: int
    available_balance: int
    distributed: int
    distributed_today: int  # claims and grants with timestamps on `now`'s UTC day
    transferred: int


@dataclass(frozen=True, slots=True)
class TruthMessage:
    id: str
    content: str | None  # None when this node cannot show it (reading.py says why)
    source: str
    channel: str
    priority: int
    created_at: int
    spread_count: int  # nodes whose announced frontier holds it
    active: bool
    to: str | None
    encrypted: bool = False  # sealed to its recipient and author (ops.md §13)
    unreadable: str | None = None  # why `content` is None


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    type: str
    reach: int
    messages: int
    last_message_id: str | None


@dataclass(frozen=True, slots=True)
class MessageSpread:
    message_id: str
    channel_id: str
    reach_count: int


@dataclass(frozen=True, slots=True)
class MeshNode:
    id: str
    name: str
    software: str
    urls: tuple[str, ...]
    status: str  # "active" until its node.info expires
    last_seen: int
    connections_count: int


@dataclass(frozen=True, slots=True)
class NodeConnection:
    node_a: str
    node_b: str
    latency_ms: int
    last_ping: int


@dataclass(frozen=True, slots=True)
class MeshRoute:
    source_node: str
    destination_node: str
    route_path: tuple[str, ...]
    hop_count: int
    total_latency: int


@dataclass(frozen=True, slots=True)
class Views:
    humans: tuple[Human, ...]
    transactions: tuple[Transaction, ...]
    resource_pools: tuple[ResourcePool, ...]
    truth_messages: tuple[TruthMessage, ...]
    channels: tuple[Channel, ...]
    message_spreads: tuple[MessageSpread, ...]
    mesh_nodes: tuple[MeshNode, ...]
    node_connections: tuple[NodeConnection, ...]
    mesh_routes: tuple[MeshRoute, ...]


def _day(ms: int) -> datetime.date:
    return datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.UTC).date()


def build_views(replica: Replica, local: bytes, now: int, reader: Reader | None = None) -> Views:
    """All views, as seen from node `local` (routes start there) at time `now`; message
    texts as `reader` can show them (none of the direct messages without one)."""
    reader = reader or Reader(None, replica.network)
    ledger = replica.ledger
    fork_at = {a: seq for a, seq, _ in replica.forks()}
    forked = set(fork_at)
    # Sort everything by stable keys, never by arrival order.
    ops = sorted(replica.ops.values(), key=lambda o: (o.author, o.seq, o.id))

    humans = []
    for author in sorted(ledger.accounts):
        acct = ledger.accounts[author]
        if acct.registered_at is None:
            continue
        incoming = ledger.incoming(author)
        humans.append(Human(
            id_to_text(author), acct.name, WEEKLY_FLOW_CENTS, HOUSING_CREDIT_CENTS,
            INVESTMENT_POOL_CENTS, acct.registered_at, acct.last_claim_at,
            acct.claimed + incoming, acct.claimed + incoming - acct.spent, acct.spendable,
            "forked" if author in forked else "active"))

    transactions = []
    today = _day(now)
    distributed_today = 0
    for op in ops:
        effect = ledger.effects.get(op.id)
        if effect is None:
            continue
        body = op.body
        kind = {Register: "register", Claim: "claim", Transfer: "transfer"}[type(body)]
        amount = effect.amount if isinstance(body, Transfer) else (
            effect.amount if effect.void is None else 0)
        if effect.void is None and kind != "transfer" and _day(op.timestamp) == today:
            distributed_today += effect.amount
        transactions.append(Transaction(
            op.id.hex(), id_to_text(op.author), amount, kind, op.timestamp,
            "void" if effect.void else "applied", effect.void.value if effect.void else None,
            id_to_text(body.to) if isinstance(body, Transfer) else None,
            body.memo if isinstance(body, Transfer) else None,
            body.week if isinstance(body, Claim) else None))

    pool = ResourcePool(POOL_TOTAL_CENTS, ledger.pool_available, ledger.granted + ledger.claimed,
                        distributed_today, ledger.transferred)

    # Reach (the seed's spread_count): how many nodes hold the op: this node (it holds
    # what it shows) and every other node whose live announced frontier holds it. Our own
    # announcement is older than what arrived since (records refresh slowly, ops.md §8.5).
    frontiers = [dict(r.body.frontier) for r in replica.records.values()
                 if isinstance(r.body, NodeInfo) and r.expires > now and r.author != local]
    def void(op_author: bytes, seq: int) -> bool:  # an equivocator's ops from its fork on
        return seq >= fork_at.get(op_author, seq + 1)

    retracted = {op.body.post for op in ops
                 if isinstance(op.body, Retract) and not void(op.author, op.seq)}
    messages = []
    for op in ops:
        if not isinstance(op.body, Post | PostHeader):
            continue
        reach = 1 + sum(1 for f in frontiers if f.get(op.author, 0) >= op.seq)
        reading = reader.read(op, replica.contents)
        messages.append(TruthMessage(
            op.id.hex(), reading.text, id_to_text(op.author), op.body.channel, op.body.priority,
            op.timestamp, reach, op.id not in retracted and not void(op.author, op.seq),
            id_to_text(reading.to) if reading.to else None, reading.encrypted,
            reading.unreadable))

    channels = []
    for name in CHANNELS:
        mine = [m for m in messages if m.channel == name and m.active]
        last = max(mine, key=lambda m: (m.created_at, m.id), default=None)
        channels.append(Channel(name, name, name, max((m.spread_count for m in mine), default=0),
                                len(mine), last.id if last else None))
    spreads = tuple(MessageSpread(m.id, m.channel, m.spread_count) for m in messages)

    links: dict[bytes, dict[bytes, int]] = {}
    connections = []
    last_ping: dict[bytes, int] = {}
    for (author, _), record in sorted(replica.records.items()):
        if isinstance(record.body, NodeLinks) and record.expires > now:
            links[author] = dict(record.body.links)
            last_ping[author] = record.version
            for peer, rtt in record.body.links:
                connections.append(NodeConnection(id_to_text(author), id_to_text(peer), rtt,
                                                  record.version))
    graph = undirected(links)
    nodes = []
    for (author, _), record in sorted(replica.records.items()):
        if isinstance(record.body, NodeInfo):
            info = record.body
            nodes.append(MeshNode(
                id_to_text(author), info.name, info.software, info.urls,
                "active" if record.expires > now else "expired", record.version,
                len(graph.get(author, {}))))
    routes = tuple(
        MeshRoute(id_to_text(local), id_to_text(r.destination),
                  tuple(id_to_text(n) for n in r.path), r.hop_count, r.total_latency)
        for r in shortest_routes(graph, local))

    return Views(tuple(humans), tuple(transactions), (pool,), tuple(messages), tuple(channels),
                 spreads, tuple(nodes), tuple(connections), routes)
