"""Paged reads (core/queries.py) agree with the full views (core/views.py) on any history,
whatever the page size, and an index that follows a replica as ops arrive (forks
included) answers like one built afresh."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liberation_node.core.bodies import Post, Register, is_post
from liberation_node.core.identity import id_to_text
from liberation_node.core.queries import (
    BadCursor,
    Index,
    Page,
    decode_cursor,
    encode_cursor,
)
from liberation_node.core.records import NodeInfo, NodeLinks
from liberation_node.core.replica import Replica
from liberation_node.core.views import build_views

from .history import NETWORK, T0, HistoryBuilder, identity
from .test_properties import FAST, WRITERS, histories

ME = WRITERS[0].public_key
NOW = T0 + 10**6  # after every op and before any record expires


def every(fetch: Any, limit: int) -> list[Any]:
    """Follow the cursors to the end; check each page's size."""
    rows: list[Any] = []
    cursor = None
    for _ in range(1000):
        page: Page[Any] = fetch(limit, cursor)
        assert len(page.items) <= limit
        rows += page.items
        if page.next_cursor is None:
            return rows
        assert len(page.items) == limit
        cursor = page.next_cursor
    raise AssertionError("the cursors never ended")


def expected_transactions(replica: Replica) -> list[tuple[Any, ...]]:
    views = build_views(replica, ME, NOW)
    txs = sorted(views.transactions, key=lambda t: (t.timestamp, bytes.fromhex(t.id)),
                 reverse=True)
    return [(t.id, t.human_id, t.transaction_type, t.amount, t.counterparty, t.memo, t.week,
             t.timestamp, t.status, t.reason) for t in txs]


def transactions(index: Index, limit: int, human: bytes | None = None) -> list[tuple[Any, ...]]:
    rows = every(lambda n, c: index.transactions(n, c, human), limit)
    return [(r.id, r.human_id, r.kind, r.amount_cents, r.counterparty, r.memo, r.week,
             r.timestamp_ms, r.status, r.reason) for r in rows]


def expected_messages(replica: Replica, state: str) -> list[tuple[Any, ...]]:
    views = build_views(replica, ME, NOW)
    retracted = {m.id for m in views.truth_messages if not m.active} - {
        op.id.hex() for op in replica.ops.values()
        if is_post(op.body) and _forked(replica, op.author, op.seq)}
    msgs = sorted(views.truth_messages, key=lambda m: (m.created_at, bytes.fromhex(m.id)),
                  reverse=True)
    keep = {"all": lambda m: True, "active": lambda m: m.active,
            "retracted": lambda m: m.id in retracted}[state]
    return [(m.id, m.source, m.channel, m.content, m.spread_count) for m in msgs if keep(m)]


def _forked(replica: Replica, author: bytes, seq: int) -> bool:
    feed = replica.feeds[author]
    return feed.fork_seq is not None and seq >= feed.fork_seq


def messages(index: Index, limit: int, **filters: Any) -> list[tuple[Any, ...]]:
    rows = every(lambda n, c: index.messages(n, c, now=NOW, **filters), limit)
    return [(m.id, m.author, m.channel, m.text, m.reach) for m in rows]


@FAST
@given(histories, st.integers(1, 7))
def test_pages_agree_with_the_views(h: HistoryBuilder, limit: int) -> None:
    index = Index(h.world, ME)
    assert transactions(index, limit) == expected_transactions(h.world)
    for state in ("all", "active", "retracted"):
        assert messages(index, limit, state=state) == expected_messages(h.world, state)
    views = build_views(h.world, ME, NOW)
    humans = every(index.humans, limit)
    assert sorted((r.id, r.name, r.balance_cents, r.spendable_cents, r.total_received_cents,
                   r.registered_ms, r.last_claim_ms, r.status) for r in humans) == sorted(
        (v.id, v.name, v.balance, v.spendable, v.total_received, v.created_at,
         v.last_distribution, v.status) for v in views.humans)
    assert [r.registered_ms for r in humans] == sorted((r.registered_ms for r in humans),
                                                       reverse=True)
    assert index.humans_count() == len(views.humans)
    [pool] = views.resource_pools
    assert (index.pool().available_cents, index.pool().distributed_cents) == (
        pool.available_balance, pool.distributed)


@FAST
@given(histories, st.integers(1, 5))
def test_filters_pick_the_matching_rows(h: HistoryBuilder, limit: int) -> None:
    index = Index(h.world, ME)
    everything = every(lambda n, c: index.messages(n, c, now=NOW, state="all"), 100)
    for who in WRITERS:
        text = id_to_text(who.public_key)
        by_author = messages(index, limit, author=who.public_key, state="all")
        assert by_author == [(m.id, m.author, m.channel, m.text, m.reach)
                             for m in everything if m.author == text]
        mine = transactions(index, limit, who.public_key)
        assert mine == [t for t in expected_transactions(h.world)
                        if text in (t[1], t[4])]
    for channel in ("social", "billboard", "media", "direct"):
        assert messages(index, limit, channel=channel, state="all") == [
            (m.id, m.author, m.channel, m.text, m.reach) for m in everything
            if m.channel == channel]


@FAST
@given(histories, st.data())
def test_an_index_that_follows_the_replica_matches_a_fresh_one(
        h: HistoryBuilder, data: st.DataObject) -> None:
    replica = Replica(NETWORK)
    following = Index(replica, ME)
    for op in h.ops:
        replica.ingest(op.wire)
        if data.draw(st.booleans()):
            following.transactions(1)  # catch up now and then, forks included
    assert replica.ops_digest() == h.world.ops_digest()
    fresh = Index(replica, ME)
    assert transactions(following, 3) == transactions(fresh, 3)
    assert messages(following, 3, state="all") == messages(fresh, 3, state="all")
    assert messages(following, 3) == messages(fresh, 3)
    assert every(following.humans, 3) == every(fresh.humans, 3)


def test_an_index_that_follows_the_replica_sees_a_fork_at_the_head() -> None:
    """A fork at a feed's head excludes no op but voids the held one: an index that
    caught up before it must start over (here a register voided: one human fewer)."""
    h = HistoryBuilder()
    alice = WRITERS[1]
    register = h.write(alice, Register("alice"))
    other = h.raw(alice, Register("alice again"), seq=1, prev=None,
                  timestamp=register.timestamp)
    replica = Replica(NETWORK)
    following = Index(replica, ME)
    replica.ingest(register.wire)
    assert following.humans_count() == 1
    replica.ingest(other.wire)
    assert following.humans_count() == Index(replica, ME).humans_count() == 0
    assert every(following.humans, 3) == []


def test_cursors_round_trip_and_strangers_are_refused() -> None:
    key = (T0, bytes(range(32)))
    assert decode_cursor(encode_cursor(key)) == key
    for bad in ("", "x", "!!!!", "A" * 65, encode_cursor(key)[:-2]):
        with pytest.raises(BadCursor):
            decode_cursor(bad)


def test_a_cursor_pages_on_while_new_posts_arrive() -> None:
    h = HistoryBuilder()
    index = Index(h.world, ME)
    first = [h.write(WRITERS[0], Post("social", f"m{i}", 1, None)) for i in range(5)]
    page = index.messages(2, now=NOW)
    assert [m.text for m in page.items] == ["m4", "m3"]
    h.write(WRITERS[1], Post("social", "newer", 1, None))  # lands before the cursor
    rest = index.messages(10, page.next_cursor, now=NOW)
    assert [m.text for m in rest.items] == ["m2", "m1", "m0"]
    assert rest.next_cursor is None
    assert first[0].id.hex() == rest.items[-1].id


def test_topology_uses_live_records_and_this_nodes_own_sessions() -> None:
    h = HistoryBuilder()
    a, b, c, d = (identity(i) for i in range(4))
    h.record(a, NodeInfo("alpha", "test", (), (), ()))
    h.record(b, NodeInfo("<b>bravo</b>", "test", (), (), ()))
    h.record(c, NodeInfo("charlie", "test", (), (), ()), ttl_ms=1)  # expired by NOW
    h.record(b, NodeLinks(((c.public_key, 30),)))
    h.record(a, NodeLinks(((d.public_key, 99),)))  # stale: a's sessions say otherwise
    topo = Index(h.world, a.public_key).topology(NOW, {b.public_key: 12})
    names = {n.id: (n.name, n.me, n.connected, n.expires_ms is not None) for n in topo.nodes}
    assert names == {a.text: ("alpha", True, False, True),
                     b.text: ("<b>bravo</b>", False, True, True),
                     c.text: ("charlie", False, False, False)}  # name kept, not live
    pairs = {frozenset((x.a, x.b)): x.rtt_ms for x in topo.links}
    assert pairs == {frozenset((a.text, b.text)): 12, frozenset((b.text, c.text)): 30}
    routes = {r.to: (r.next_hop, r.hops, r.latency_ms) for r in topo.routes}
    assert routes == {b.text: (b.text, 1, 12), c.text: (b.text, 2, 42)}
