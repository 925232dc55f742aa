"""The control port (api/control.py) over real HTTP on 127.0.0.1, a Replica behind it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, web
from aiohttp.test_utils import TestClient, TestServer

from liberation_node.api.control import MAX_BODY_BYTES, MAX_SUBSCRIBERS, control_app
from liberation_node.core.identity import id_to_text

from .fakes import ME, NETWORK, OTHER, Clock, ReplicaNode, error_of

TOKEN = "5e" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[web.Request, web.Application]



@pytest.fixture
def node() -> ReplicaNode:
    return ReplicaNode()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(node: ReplicaNode, clock: Clock) -> AsyncIterator[Client]:
    async with TestClient(TestServer(control_app(node, TOKEN, clock=clock))) as c:
        yield c


def port(client: Client) -> int:
    assert client.server.port is not None
    return client.server.port



# -- reading --------------------------------------------------------------------------


async def test_status_needs_no_token(client: Client, node: ReplicaNode) -> None:
    response = await client.get("/api/v1/status")
    assert response.status == 200
    assert await response.json() == node.status()
    assert response.headers["Server"] == "liberation-node"
    assert response.headers["Cache-Control"] == "no-store"


async def test_views_are_the_dataclasses_as_json(client: Client, node: ReplicaNode) -> None:
    node.register("ada")
    views = await (await client.get("/api/v1/views")).json()
    assert set(views) == {"humans", "transactions", "resource_pools", "truth_messages",
                          "channels", "message_spreads", "mesh_nodes", "node_connections",
                          "mesh_routes"}
    [human] = views["humans"]
    assert (human["id"], human["name"], human["status"]) == (ME.text, "ada", "active")
    assert [c["name"] for c in views["channels"]] == ["billboard", "social", "media", "direct"]


async def test_index_links_to_the_api(client: Client) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert 'href="/api/v1/status"' in await response.text()


async def test_unknown_paths_and_methods_are_json_errors(client: Client) -> None:
    assert await error_of(await client.get("/api/v1/nothing"), 404) == "not found"
    response = await client.get("/api/v1/register")
    assert await error_of(response, 405) == "method not allowed"
    assert response.headers["Allow"] == "POST"


# -- authentication -------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer " + "00" * 32}, {"Authorization": TOKEN},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": "Bearer"}, {"Authorization": "Bearer é"},
])
async def test_writes_need_the_token(client: Client, node: ReplicaNode,
                                     headers: dict[str, str]) -> None:
    response = await client.post("/api/v1/register", json={"name": "ada"}, headers=headers)
    assert "token" in await error_of(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert not node.replica.ops


async def test_a_good_token_writes(client: Client, node: ReplicaNode) -> None:
    response = await client.post("/api/v1/register", json={"name": "ada"},
                                 headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status == 201
    op_id = (await response.json())["id"]
    assert bytes.fromhex(op_id) in node.replica.ops


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        control_app(ReplicaNode(), "")


# -- Host and Origin ------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost:{p}", "LOCALHOST:{p}", "127.0.0.1:{p}",
                                  "127.1.2.3:{p}", "[::1]:{p}"])
async def test_loopback_hosts_with_our_port_pass(client: Client, host: str) -> None:
    response = await client.get("/api/v1/status", headers={"Host": host.format(p=port(client))})
    assert response.status == 200


@pytest.mark.parametrize("host", ["evil.example:{p}", "evil.example", "127.0.0.1",
                                  "127.0.0.1:{q}", "localhost.evil.example:{p}",
                                  "10.0.0.1:{p}", "user@127.0.0.1:{p}", "127.0.0.1:{p}/x",
                                  "127.0.0.1:notaport", ""])
async def test_foreign_hosts_are_refused(client: Client, host: str) -> None:
    """DNS rebinding: a name that resolves to 127.0.0.1 still sends its own Host."""
    value = host.format(p=port(client), q=port(client) + 1)
    for response in (await client.get("/api/v1/status", headers={"Host": value}),
                     await client.post("/api/v1/register", json={}, headers={**AUTH,
                                                                           "Host": value})):
        assert "Host" in await error_of(response, 403)


async def test_allowed_hosts_extend_the_loopback_names(node: ReplicaNode) -> None:
    app = control_app(node, TOKEN, allowed_hosts=["Node.Lan"])
    async with TestClient(TestServer(app)) as c:
        assert c.server.port is not None
        ok = await c.get("/api/v1/status", headers={"Host": f"node.lan:{c.server.port}"})
        assert ok.status == 200


async def test_same_origin_passes(client: Client) -> None:
    origin = f"http://127.0.0.1:{port(client)}"
    response = await client.post("/api/v1/register", json={}, headers={**AUTH, "Origin": origin})
    assert response.status == 201


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1",
                                   "http://localhost:{p}", "https://127.0.0.1:{p}",
                                   "http://127.0.0.1:{q}", "not a url"])
async def test_cross_origin_requests_are_refused(client: Client, node: ReplicaNode,
                                                 origin: str) -> None:
    value = origin.format(p=port(client), q=port(client) + 1)
    response = await client.post("/api/v1/register", json={}, headers={**AUTH, "Origin": value})
    assert "origin" in await error_of(response, 403)
    assert not node.replica.ops
    await error_of(await client.get("/api/v1/status", headers={"Origin": value}), 403)


# -- bodies and fields ----------------------------------------------------------------


async def test_a_body_over_16_kib_is_refused(client: Client, node: ReplicaNode) -> None:
    big = b'{"name": "' + b"a" * MAX_BODY_BYTES + b'"}'
    response = await client.post("/api/v1/register", data=big, headers=AUTH)
    assert "16384" in await error_of(response, 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: caught while reading
        for _ in range(64):
            yield b" " * 1024

    response = await client.post("/api/v1/register", data=chunks(), headers=AUTH)
    await error_of(response, 413)
    assert not node.replica.ops


@pytest.mark.parametrize(("body", "field"), [
    (b"{", "JSON"), (b"[1]", "object"), (b'"x"', "object"), (b"\xff\xfe", "JSON"),
    (b"[" * 8000 + b"]" * 8000, "JSON"), (b'{"name": ' + b"9" * 5000 + b"}", "JSON"),
    (b'{"name": 5}', "name"), (b'{"name": "' + b"n" * 65 + b'"}', "name"),
    (b'{"nmae": "ada"}', "nmae"),
])
async def test_bad_register_bodies_name_the_problem(client: Client, body: bytes,
                                                    field: str) -> None:
    response = await client.post("/api/v1/register", data=body, headers=AUTH)
    assert field in await error_of(response, 400)


async def test_register_without_a_body_uses_no_name(client: Client, node: ReplicaNode) -> None:
    assert (await client.post("/api/v1/register", headers=AUTH)).status == 201
    assert node.views().humans[0].name == ""


@pytest.mark.parametrize(("body", "field"), [
    ({}, "text"), ({"text": ""}, "text"), ({"text": 1}, "text"),
    ({"text": "x" * 4097}, "text"),
    ({"text": "hi", "channel": "radio"}, "channel"),
    ({"text": "hi", "priority": 0}, "priority"), ({"text": "hi", "priority": 11}, "priority"),
    ({"text": "hi", "priority": True}, "priority"), ({"text": "hi", "priority": "1"}, "priority"),
    ({"text": "hi", "channel": "direct"}, "to"),
    ({"text": "hi", "to": OTHER.text}, "to"),
    ({"text": "hi", "channel": "direct", "to": OTHER.text[:-1] + "a"}, "to"),
    ({"text": "hi", "channel": "direct", "to": 7}, "to"),
    ({"text": "hi", "sender": "x"}, "sender"),
])
async def test_bad_posts_name_the_field(client: Client, body: dict[str, Any],
                                        field: str) -> None:
    response = await client.post("/api/v1/messages", json=body, headers=AUTH)
    assert (await error_of(response, 400)).startswith(field)


async def test_posts_and_retracts(client: Client, node: ReplicaNode) -> None:
    response = await client.post("/api/v1/messages", json={"text": "hello"}, headers=AUTH)
    assert response.status == 201
    post_id = (await response.json())["id"]
    direct = await client.post("/api/v1/messages", headers=AUTH, json={
        "text": "psst", "channel": "direct", "priority": 10, "to": OTHER.text})
    assert direct.status == 201
    [hello, psst] = sorted(node.views().truth_messages, key=lambda m: m.content)
    assert (hello.id, hello.channel, hello.priority, hello.to) == (post_id, "social", 1, None)
    assert (psst.channel, psst.priority, psst.to) == ("direct", 10, OTHER.text)

    response = await client.post(f"/api/v1/messages/{post_id.upper()}/retract", headers=AUTH)
    assert response.status == 201
    assert not next(m for m in node.views().truth_messages if m.id == post_id).active


@pytest.mark.parametrize("op_id", ["abc", "zz" * 32, "00" * 33])
async def test_retract_needs_an_op_id(client: Client, op_id: str) -> None:
    response = await client.post(f"/api/v1/messages/{op_id}/retract", headers=AUTH)
    assert (await error_of(response, 400)).startswith("id:")


async def test_claim_and_transfer(client: Client, node: ReplicaNode) -> None:
    await client.post("/api/v1/register", json={"name": "ada"}, headers=AUTH)
    assert (await client.post("/api/v1/ledger/claim", headers=AUTH)).status == 201
    response = await client.post("/api/v1/ledger/transfer", headers=AUTH, json={
        "to": OTHER.text, "amount_cents": 1250, "memo": "lunch"})
    assert response.status == 201
    op_id = (await response.json())["id"]
    [tx] = [t for t in node.views().transactions if t.id == op_id]
    assert (tx.amount, tx.counterparty, tx.memo) == (1250, id_to_text(OTHER.public_key), "lunch")


@pytest.mark.parametrize(("body", "field"), [
    ({"amount_cents": 1}, "to"), ({"to": OTHER.text}, "amount_cents"),
    ({"to": OTHER.text, "amount_cents": 0}, "amount_cents"),
    ({"to": OTHER.text, "amount_cents": -5}, "amount_cents"),
    ({"to": OTHER.text, "amount_cents": 12.5}, "amount_cents"),
    ({"to": OTHER.text, "amount_cents": 2**53}, "amount_cents"),
    ({"to": OTHER.text, "amount_cents": 1, "memo": None}, "memo"),
    ({"to": "ln", "amount_cents": 1}, "to"),
    ({"to": OTHER.text, "amount": 1}, "amount"),
])
async def test_bad_transfers_name_the_field(client: Client, body: dict[str, Any],
                                            field: str) -> None:
    response = await client.post("/api/v1/ledger/transfer", json=body, headers=AUTH)
    assert (await error_of(response, 400)).startswith(field)


async def test_claim_takes_no_fields(client: Client) -> None:
    response = await client.post("/api/v1/ledger/claim", json={"week": 1}, headers=AUTH)
    assert (await error_of(response, 400)).startswith("week")


async def test_refusals_by_the_node_are_409(client: Client) -> None:
    transfer = {"to": OTHER.text, "amount_cents": 100}
    response = await client.post("/api/v1/ledger/transfer", json=transfer, headers=AUTH)
    assert await error_of(response, 409) == "register first (human.register)"
    await client.post("/api/v1/register", json={}, headers=AUTH)
    assert await error_of(await client.post("/api/v1/register", json={}, headers=AUTH),
                          409) == "already registered"
    await client.post("/api/v1/ledger/claim", headers=AUTH)
    assert "already claimed" in await error_of(
        await client.post("/api/v1/ledger/claim", headers=AUTH), 409)
    transfer["amount_cents"] = 10**12
    assert "insufficient balance" in await error_of(
        await client.post("/api/v1/ledger/transfer", json=transfer, headers=AUTH), 409)


async def test_a_node_bug_is_a_500_without_details(client: Client, node: ReplicaNode,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    def broken(name: str) -> str:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(node, "register", broken)
    response = await client.post("/api/v1/register", json={}, headers=AUTH)
    text = await response.text()
    assert response.status == 500
    assert "secret" not in text and "Traceback" not in text
    assert await response.json() == {"error": "internal error (see the node's log)"}
    assert "secret internals" in caplog.text  # the log has it, the client does not


# -- the event stream -----------------------------------------------------------------


async def test_events_stream_needs_the_token(client: Client) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as failed:
        await client.ws_connect("/api/v1/events")
    assert failed.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as failed:
        await client.ws_connect("/api/v1/events",
                                headers={**AUTH, "Origin": "http://evil.example"})
    assert failed.value.status == 403


async def test_events_stream_forwards_bus_events(client: Client, node: ReplicaNode) -> None:
    ws = await client.ws_connect("/api/v1/events", headers=AUTH)
    await node.subscribed()
    node.publish({"type": "user.action", "action": "post", "op": "ab" * 32})
    node.publish({"type": "truth.spread", "op": "cd" * 32})
    assert await ws.receive_json(timeout=5) == {"type": "user.action", "action": "post",
                                                "op": "ab" * 32}
    assert (await ws.receive_json(timeout=5))["type"] == "truth.spread"
    await ws.close()
    await node.subscribed(0)  # the client left: its subscription is closed


async def test_events_stream_skips_what_is_not_json(client: Client, node: ReplicaNode,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    ws = await client.ws_connect("/api/v1/events", headers=AUTH)
    await node.subscribed()
    node.publish({"type": "bad", "value": object()})
    node.publish({"type": "good"})
    assert await ws.receive_json(timeout=5) == {"type": "good"}
    assert "not JSON-able" in caplog.text
    await ws.close()


async def test_events_stream_closes_when_the_bus_ends(client: Client, node: ReplicaNode) -> None:
    ws = await client.ws_connect("/api/v1/events", headers=AUTH)
    await node.subscribed()
    node.publish(None)
    message = await ws.receive(timeout=5)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert message.data == WSCloseCode.GOING_AWAY
    await node.subscribed(0)


async def test_event_streams_are_bounded(client: Client, node: ReplicaNode) -> None:
    streams = [await client.ws_connect("/api/v1/events", headers=AUTH)
               for _ in range(MAX_SUBSCRIBERS)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as failed:
        await client.ws_connect("/api/v1/events", headers=AUTH)
    assert failed.value.status == 503
    for ws in streams:
        await ws.close()


async def test_shutdown_closes_event_streams(node: ReplicaNode) -> None:
    client = TestClient(TestServer(control_app(node, TOKEN)))
    await client.start_server()
    try:
        ws = await client.ws_connect("/api/v1/events", headers=AUTH)
        await node.subscribed()
        await client.server.close()  # runs on_shutdown
        message = await ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == WSCloseCode.GOING_AWAY
    finally:
        await client.close()


# -- metrics --------------------------------------------------------------------------

SAMPLE = re.compile(r'^liberation_[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? -?[0-9.e+]+$')


def parse_metrics(text: str) -> dict[str, str]:
    """Check the exposition format line by line; return {name{labels}: value}."""
    assert text.endswith("\n")
    samples: dict[str, str] = {}
    declared: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind == "gauge" and name not in declared
            declared.add(name)
            continue
        assert SAMPLE.match(line), line
        series, value = line.rsplit(" ", 1)
        assert series.split("{")[0] in declared, line  # TYPE comes before the samples
        samples[series] = value
    return samples


async def test_metrics_in_prometheus_text_format(client: Client, node: ReplicaNode,
                                                 clock: Clock) -> None:
    node.register("ada")
    node.peers = [{"id": OTHER.text, "conn": 1, "rtt_ms": 12, "address": "127.0.0.1:5"},
                  {"id": 'we"ird\\', "conn": 2, "rtt_ms": None, "address": None}]
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = parse_metrics(await response.text())
    assert samples[f'liberation_info{{node_id="{ME.text}",network="{NETWORK}",'
                   'version="0.1.0"}'] == "1"
    assert samples["liberation_peers"] == "2"
    assert samples[f'liberation_peer_rtt_milliseconds{{peer="{OTHER.text}"}}'] == "12"
    assert len([s for s in samples if s.startswith("liberation_peer_rtt")]) == 1
    assert samples["liberation_ops"] == "1"
    assert samples["liberation_pending_ops"] == "0"
    assert samples["liberation_humans"] == "1"
    assert samples["liberation_uptime_seconds"] == "12.5"
    assert int(samples["liberation_pool_available_cents"]) == \
        node.replica.ledger.pool_available


async def test_metrics_digest_age(client: Client, node: ReplicaNode, clock: Clock) -> None:
    async def age() -> float:
        text = await (await client.get("/metrics")).text()
        return float(parse_metrics(text)["liberation_digest_age_seconds"])

    clock.t += 30  # since the app was made
    assert await age() == 30.0
    clock.t += 5
    assert await age() == 35.0
    node.register("ada")  # a new digest: the age starts again at this scrape
    clock.t += 1
    assert await age() == 0.0
    clock.t += 2
    assert await age() == 2.0


async def test_metrics_leave_out_what_status_lacks(node: ReplicaNode,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node, "status", lambda: {"node_id": ME.text, "peers": [],
                                                 "ops": 3, "digest": "00"})
    async with TestClient(TestServer(control_app(node, TOKEN))) as c:
        samples = parse_metrics(await (await c.get("/metrics")).text())
    assert set(samples) == {f'liberation_info{{node_id="{ME.text}"}}', "liberation_peers",
                            "liberation_ops", "liberation_digest_age_seconds"}


@pytest.mark.parametrize(("path", "body"), [
    ("/api/v1/ledger/transfer", {"to": ME.text, "amount_cents": 100}),
    ("/api/v1/messages", {"text": "note to self", "channel": "direct", "to": ME.text}),
])
async def test_paying_or_messaging_yourself_is_refused_not_a_crash(
        client: Client, node: ReplicaNode, path: str, body: dict[str, Any]) -> None:
    await client.post("/api/v1/register", json={"name": "ada"}, headers=AUTH)
    await client.post("/api/v1/ledger/claim", headers=AUTH)
    held = len(node.replica.ops)
    message = await error_of(await client.post(path, json=body, headers=AUTH), 409)
    assert "yourself" in message
    assert len(node.replica.ops) == held
