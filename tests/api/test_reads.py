"""The control API's reads (api/reads.py) over real HTTP: shapes per docs/api.md, paging
by limit and cursor, filters, and a 400 (never a 500) for every bad parameter."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from liberation_node.api.control import control_app
from liberation_node.core.bodies import Claim, Post, Register, Transfer
from liberation_node.core.identity import Identity
from liberation_node.core.ledger import WEEKLY_FLOW_CENTS, iso_week
from liberation_node.core.records import NodeInfo, NodeLinks, create_record

from .fakes import ME, NETWORK, OTHER, ReplicaNode, error_of

TOKEN = "5e" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[web.Request, web.Application]
XSS = '<img src=x onerror="alert(1)">'
THIRD = Identity.from_seed(bytes(range(2, 34)))


@pytest.fixture
def node() -> ReplicaNode:
    return ReplicaNode()


@pytest.fixture
async def client(node: ReplicaNode) -> AsyncIterator[Client]:
    async with TestClient(TestServer(control_app(node, TOKEN))) as c:
        yield c


def write(node: ReplicaNode, who: Identity, body: Any) -> str:
    """An op by anyone, written into the node's replica (as if it arrived)."""
    node.now += 1000
    return str(node.replica.append(who, body, node.now, os.urandom(32)).applied[0].id.hex())


async def get(client: Client, path: str, status: int = 200) -> Any:
    response = await client.get(path, headers=AUTH)
    assert response.status == status, await response.text()
    return await response.json()


async def follow(client: Client, path: str, key: str) -> tuple[list[Any], int]:
    """Every row of a paged list and the number of pages it took."""
    rows, pages, cursor = [], 0, None
    while True:
        sep = "&" if "?" in path else "?"
        page = await get(client, path + (f"{sep}cursor={cursor}" if cursor else ""))
        assert set(page) == {key, "next_cursor"}
        rows += page[key]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return rows, pages


# -- status, health, peers --------------------------------------------------------------


async def test_health_is_200_when_ok_and_503_when_not(client: Client, node: ReplicaNode) -> None:
    body = await (await client.get("/api/v1/health")).json()
    assert body["ok"] is True and "store" in body["checks"]
    node.healthy = False
    response = await client.get("/api/v1/health")
    assert response.status == 503
    assert (await response.json())["ok"] is False


async def test_peers_as_the_node_lists_them(client: Client, node: ReplicaNode) -> None:
    peer = {"id": OTHER.text, "name": "bo", "state": "open", "rtt_ms": 12, "bytes_in": 10,
            "bytes_out": 20, "since_ms": node.now, "found_by": "bootstrap",
            "address": "127.0.0.1:5000", "direction": "out"}
    node.peer_list = [peer]
    assert await get(client, "/api/v1/peers") == {"peers": [peer]}


# -- the ledger -------------------------------------------------------------------------


async def test_ledger_summary_before_and_after_registering(client: Client,
                                                           node: ReplicaNode) -> None:
    before = await get(client, "/api/v1/ledger")
    assert before["me"] is None and before["humans"] == 0
    assert before["pool"]["available_cents"] == before["pool"]["total_cents"]
    write(node, ME, Register("ada"))
    write(node, ME, Claim(iso_week(node.now)))
    after = await get(client, "/api/v1/ledger")
    assert after["humans"] == 1
    assert after["me"]["id"] == ME.text and after["me"]["name"] == "ada"
    assert after["me"]["balance_cents"] == WEEKLY_FLOW_CENTS
    assert set(after["me"]) == {"id", "name", "balance_cents", "spendable_cents",
                                "total_received_cents", "registered_ms", "last_claim_ms",
                                "status"}
    assert after["pool"]["distributed_cents"] == \
        before["pool"]["available_cents"] - after["pool"]["available_cents"]


async def test_humans_page_by_page(client: Client, node: ReplicaNode) -> None:
    people = [Identity.from_seed(bytes([i]) * 32) for i in range(7)]
    for i, who in enumerate(people):
        write(node, who, Register(f"h{i}"))
    rows, pages = await follow(client, "/api/v1/ledger/humans?limit=3", "humans")
    assert [r["name"] for r in rows] == [f"h{i}" for i in reversed(range(7))]  # newest first
    assert pages == 3
    one = await get(client, f"/api/v1/ledger/humans/{people[2].text}")
    assert one == rows[4]
    assert "no human" in await error_of(
        await client.get(f"/api/v1/ledger/humans/{OTHER.text}", headers=AUTH), 404)
    assert (await error_of(await client.get("/api/v1/ledger/humans/lnbad", headers=AUTH),
                           400)).startswith("id:")


async def test_transactions_newest_first_and_by_human(client: Client, node: ReplicaNode) -> None:
    write(node, ME, Register("ada"))
    write(node, OTHER, Register("bo"))
    write(node, ME, Claim(iso_week(node.now)))
    pay = write(node, ME, Transfer(OTHER.public_key, 1250, XSS))
    write(node, THIRD, Register("cy"))
    rows, pages = await follow(client, "/api/v1/ledger/transactions?limit=2", "transactions")
    assert pages == 3
    assert [r["kind"] for r in rows] == ["register", "transfer", "claim", "register", "register"]
    [tx] = [r for r in rows if r["id"] == pay]
    assert tx == {"id": pay, "human_id": ME.text, "kind": "transfer", "amount_cents": 1250,
                  "counterparty": OTHER.text, "memo": XSS, "week": None,
                  "timestamp_ms": tx["timestamp_ms"], "status": "applied", "reason": None}
    bos, _ = await follow(client, f"/api/v1/ledger/transactions?human={OTHER.text}",
                          "transactions")
    assert [r["kind"] for r in bos] == ["transfer", "register"]  # paid to bo, bo's own


# -- messages ---------------------------------------------------------------------------


async def test_messages_filters_and_pages(client: Client, node: ReplicaNode) -> None:
    ids = [write(node, ME, Post("social", f"s{i}", 1, None)) for i in range(5)]
    write(node, OTHER, Post("billboard", XSS, 7, None))
    direct = write(node, OTHER, Post("direct", "psst", 1, ME.public_key))
    await node.retract(bytes.fromhex(ids[1]))
    elsewhere = write(node, OTHER, Post("direct", "not for me", 1, THIRD.public_key))

    rows, pages = await follow(client, "/api/v1/messages?limit=2", "messages")
    assert [r["text"] for r in rows] == [None, "psst", XSS, "s4", "s3", "s2", "s0"]
    assert pages == 4
    assert set(rows[0]) == {"id", "author", "author_name", "channel", "priority", "text", "to",
                            "timestamp_ms", "retracted", "forked", "reach", "encrypted",
                            "readable", "unreadable"}
    assert rows[2]["text"] == XSS  # exactly as written: escaping is the page's job
    # A direct message between two other nodes: listed, sealed, its recipient not shown.
    assert {k: rows[0][k] for k in ("id", "to", "encrypted", "readable", "unreadable")} == {
        "id": elsewhere, "to": None, "encrypted": True, "readable": False,
        "unreadable": "not_for_this_node"}
    assert (rows[1]["encrypted"], rows[1]["readable"], rows[1]["unreadable"]) == (
        True, True, None)

    async def texts(query: str) -> list[str]:
        found, _ = await follow(client, f"/api/v1/messages?{query}", "messages")
        return [r["text"] for r in found]

    assert await texts("channel=social&limit=1") == ["s4", "s3", "s2", "s0"]
    [gone] = (await get(client, "/api/v1/messages?state=retracted"))["messages"]
    assert (gone["id"], gone["text"], gone["readable"], gone["unreadable"]) == (
        ids[1], None, False, "retracted")  # its text is gone from this node (ops.md §12.6)
    assert await texts("state=all&channel=social") == ["s4", "s3", "s2", None, "s0"]
    assert await texts(f"author={OTHER.text}") == [None, "psst", XSS]
    assert await texts(f"to={ME.text}") == ["psst"]
    assert await texts(f"to={THIRD.text}") == []  # sealed: this node cannot know
    [dm, _] = (await get(client, "/api/v1/messages?channel=direct"))["messages"][::-1]
    assert (dm["id"], dm["to"], dm["author"]) == (direct, ME.text, OTHER.text)


async def test_message_reach_and_author_names(client: Client, node: ReplicaNode) -> None:
    write(node, OTHER, Register("bo"))
    post = write(node, OTHER, Post("social", "hi", 1, None))
    for who in (ME, THIRD):
        record = create_record(who, network=NETWORK, version=node.now, ttl_ms=60_000,
                               body=NodeInfo("n", "test", (), (), ((OTHER.public_key, 2),)))
        node.replica.add_record(record)
    [row] = (await get(client, "/api/v1/messages"))["messages"]
    assert (row["id"], row["author_name"], row["reach"]) == (post, "bo", 2)


async def test_reach_counts_this_node_before_it_announces_again(client: Client,
                                                                 node: ReplicaNode) -> None:
    """This node holds every message it shows: its own announcement, made before the
    message arrived, must not make a fresh message look held by nobody."""
    node.replica.add_record(create_record(ME, network=NETWORK, version=node.now, ttl_ms=60_000,
                                          body=NodeInfo("me", "test", (), (), ())))
    write(node, OTHER, Post("social", "just now", 1, None))
    [row] = (await get(client, "/api/v1/messages"))["messages"]
    assert row["reach"] == 1


# -- topology ---------------------------------------------------------------------------


async def test_topology_shape(client: Client, node: ReplicaNode) -> None:
    for who, name in ((ME, "me"), (OTHER, XSS)):
        node.replica.add_record(create_record(who, network=NETWORK, version=node.now,
                                              ttl_ms=60_000,
                                              body=NodeInfo(name, "test", (), (), ())))
    node.replica.add_record(create_record(OTHER, network=NETWORK, version=node.now,
                                          ttl_ms=60_000,
                                          body=NodeLinks(((THIRD.public_key, 40),))))
    node.rtts = {OTHER.public_key: 9}
    topo = await get(client, "/api/v1/topology")
    assert {n["id"]: (n["name"], n["me"], n["connected"]) for n in topo["nodes"]} == {
        ME.text: ("me", True, False), OTHER.text: (XSS, False, True),
        THIRD.text: ("", False, False)}
    assert {frozenset((x["a"], x["b"])): x["rtt_ms"] for x in topo["links"]} == {
        frozenset((ME.text, OTHER.text)): 9, frozenset((OTHER.text, THIRD.text)): 40}
    assert {r["to"]: (r["next_hop"], r["hops"], r["latency_ms"], r["path"])
            for r in topo["routes"]} == {
        OTHER.text: (OTHER.text, 1, 9, [ME.text, OTHER.text]),
        THIRD.text: (OTHER.text, 2, 49, [ME.text, OTHER.text, THIRD.text])}


# -- bad parameters: 400 with the parameter's name, never a 500 -------------------------


@pytest.mark.parametrize(("query", "name"), [
    ("/api/v1/messages?limit=0", "limit"), ("/api/v1/messages?limit=501", "limit"),
    ("/api/v1/messages?limit=-1", "limit"), ("/api/v1/messages?limit=ten", "limit"),
    ("/api/v1/messages?limit=" + "9" * 5000, "limit"), ("/api/v1/messages?limit=٣", "limit"),
    ("/api/v1/messages?cursor=zz", "cursor"), ("/api/v1/messages?cursor=" + "A" * 40, "cursor"),
    ("/api/v1/messages?cursor=" + "A" * 500, "cursor"),
    ("/api/v1/messages?channel=radio", "channel"), ("/api/v1/messages?state=gone", "state"),
    ("/api/v1/messages?author=ln", "author"), ("/api/v1/messages?to=" + "é" * 10, "to"),
    ("/api/v1/messages?sort=new", "sort"), ("/api/v1/messages?limit=1&limit=2", "limit"),
    ("/api/v1/ledger/transactions?human=x", "human"),
    ("/api/v1/ledger/transactions?cursor=%00", "cursor"),
    ("/api/v1/ledger/humans?limit=1.5", "limit"), ("/api/v1/ledger/humans?page=2", "page"),
    ("/api/v1/topology?all=1", "all"), ("/api/v1/status?x", "x"),
])
async def test_bad_parameters_are_400_naming_them(client: Client, query: str, name: str) -> None:
    message = await error_of(await client.get(query, headers=AUTH), 400)
    assert message.startswith(name), message


async def test_a_cursor_from_one_list_is_not_mistaken_in_another(client: Client,
                                                                 node: ReplicaNode) -> None:
    for i in range(3):
        write(node, ME, Post("social", f"m{i}", 1, None))
    cursor = (await get(client, "/api/v1/messages?limit=1"))["next_cursor"]
    page = await get(client, f"/api/v1/ledger/humans?cursor={cursor}")
    assert page == {"humans": [], "next_cursor": None}  # well-formed: just nothing after it


async def test_random_queries_never_make_a_500(client: Client, node: ReplicaNode) -> None:
    """A seeded fuzz of parameter names and values on every read: 200, 400 or 404 only."""
    rnd = random.Random(12)
    for i in range(5):
        write(node, ME, Post("social", f"m{i}", 1, None))
    good_cursor = (await get(client, "/api/v1/messages?limit=1"))["next_cursor"]
    names = ["limit", "cursor", "channel", "author", "to", "state", "human", "x", ""]
    values = ["", "0", "1", "500", "501", "-1", "1e3", "0x10", " 5", "٣", "a" * 3000, "null",
              ME.text, ME.text.upper(), ME.text[:-1], "social", "direct", "all", good_cursor,
              good_cursor[:-1] + "A", "%00", "\u202e", "🙂", "[]", "{}"]
    paths = ["/api/v1/messages", "/api/v1/ledger/transactions", "/api/v1/ledger/humans",
             "/api/v1/topology", "/api/v1/ledger", "/api/v1/peers", "/api/v1/status",
             f"/api/v1/ledger/humans/{quote(rnd.choice(values))}"]
    for _ in range(400):
        query = "&".join(f"{quote(rnd.choice(names))}={quote(rnd.choice(values))}"
                         for _ in range(rnd.randint(0, 3)))
        path = rnd.choice(paths)
        response = await client.get(f"{path}?{query}", headers=AUTH)
        assert response.status in (200, 400, 404), (path, query, await response.text())
