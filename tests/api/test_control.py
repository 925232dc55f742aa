"""The control port (api/control.py) over real HTTP on 127.0.0.1, a Replica behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, web
from aiohttp.test_utils import TestClient, TestServer

from liberation_node.api.control import MAX_BODY_BYTES, MAX_SUBSCRIBERS, control_app
from liberation_node.core.identity import id_to_text

from .fakes import ME, OTHER, Clock, ReplicaNode, error_of

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


async def test_status_with_the_token(client: Client, node: ReplicaNode) -> None:
    response = await client.get("/api/v1/status", headers=AUTH)
    assert response.status == 200
    assert await response.json() == node.status()
    assert response.headers["Server"] == "liberation-node"
    assert response.headers["Cache-Control"] == "no-store"


async def test_views_are_the_dataclasses_as_json(client: Client, node: ReplicaNode) -> None:
    await node.register("ada")
    views = await (await client.get("/api/v1/views", headers=AUTH)).json()
    assert set(views) == {"humans", "transactions", "resource_pools", "truth_messages",
                          "channels", "message_spreads", "mesh_nodes", "node_connections",
                          "mesh_routes"}
    [human] = views["humans"]
    assert (human["id"], human["name"], human["status"]) == (ME.text, "ada", "active")
    assert [c["name"] for c in views["channels"]] == ["billboard", "social", "media", "direct"]


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(client: Client) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert '<script type="module" src="/static/app.js">' in page
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in page and " style=" not in page  # nothing inline: the CSP allows none
    for name, kind in [("app.js", "text/javascript"), ("dom.js", "text/javascript"),
                       ("mesh.js", "text/javascript"), ("style.css", "text/css")]:
        asset = await client.get(f"/static/{name}")
        assert (asset.status, asset.content_type) == (200, kind)
        text = await asset.text()  # untrusted text goes in as text, never parsed as HTML
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text
    assert (await client.get("/favicon.svg")).content_type == "image/svg+xml"
    for missing in ("/static/../control.py", "/static/nothing.js", "/static/"):
        assert (await client.get(missing)).status in (401, 404)  # not a file we serve


async def test_unknown_paths_and_methods_are_json_errors(client: Client) -> None:
    assert await error_of(await client.get("/api/v1/nothing", headers=AUTH), 404) == "not found"
    response = await client.get("/api/v1/register", headers=AUTH)
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
    response = await client.get("/api/v1/status", headers={**AUTH,
                                                           "Host": host.format(p=port(client))})
    assert response.status == 200


@pytest.mark.parametrize("host", ["evil.example:{p}", "evil.example", "127.0.0.1",
                                  "127.0.0.1:{q}", "localhost.evil.example:{p}",
                                  "10.0.0.1:{p}", "user@127.0.0.1:{p}", "127.0.0.1:{p}/x",
                                  "127.0.0.1:notaport", ""])
async def test_foreign_hosts_are_refused(client: Client, host: str) -> None:
    """DNS rebinding: a name that resolves to 127.0.0.1 still sends its own Host."""
    value = host.format(p=port(client), q=port(client) + 1)
    for response in (await client.get("/api/v1/status", headers={**AUTH, "Host": value}),
                     await client.post("/api/v1/register", json={}, headers={**AUTH,
                                                                           "Host": value})):
        assert "Host" in await error_of(response, 403)


async def test_allowed_hosts_extend_the_loopback_names(node: ReplicaNode) -> None:
    app = control_app(node, TOKEN, allowed_hosts=["Node.Lan"])
    async with TestClient(TestServer(app)) as c:
        assert c.server.port is not None
        ok = await c.get("/api/v1/status", headers={**AUTH,
                                                    "Host": f"node.lan:{c.server.port}"})
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
    await error_of(await client.get("/api/v1/status", headers={**AUTH, "Origin": value}), 403)


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
    retracted = next(m for m in node.views().truth_messages if m.id == post_id)
    assert (retracted.active, retracted.content, retracted.unreadable) == (
        False, None, "retracted")


async def test_a_direct_message_needs_a_recipient_it_can_be_sealed_to(client: Client) -> None:
    no_key = id_to_text(b"\xff" * 32)  # a well-formed id that is no Ed25519 key
    response = await client.post("/api/v1/messages", headers=AUTH, json={
        "text": "psst", "channel": "direct", "to": no_key})
    assert "not a valid key" in await error_of(response, 409)


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


async def test_paused_writes_are_503_with_the_reason(client: Client, node: ReplicaNode) -> None:
    node.paused = "the store cannot commit (database or disk is full)"
    for path, body in (("/api/v1/register", {}), ("/api/v1/ledger/claim", None),
                       ("/api/v1/messages", {"text": "hi"})):
        response = await client.post(path, json=body, headers=AUTH)
        assert await error_of(response, 503) == node.paused
    assert node.replica.ops == {}
    node.paused = None
    assert (await client.post("/api/v1/register", json={}, headers=AUTH)).status == 201


async def test_a_node_bug_is_a_500_without_details(client: Client, node: ReplicaNode,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    async def broken(name: str) -> str:
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
