"""/metrics (api/metrics.py), read back with prometheus-client's own text parser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from liberation_node.api.control import control_app

from .fakes import ME, NETWORK, OTHER, Clock, ReplicaNode

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


async def scrape(client: Client) -> dict[str, Any]:
    """{family name: {(sample name, sorted labels): value}}, and the family types."""
    response = await client.get("/metrics", headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = await response.text()
    families: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families
        families[family.name] = (family.type, {
            (s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples})
    return families


def value(families: dict[str, Any], sample: str, **labels: str) -> float:
    for _, samples in families.values():
        key = (sample, tuple(sorted(labels.items())))
        if key in samples:
            return float(samples[key])
    raise KeyError(f"{sample} {labels}")


async def test_gauges_from_status(client: Client, node: ReplicaNode) -> None:
    await node.register("ada")
    node.peer_list = [{"id": OTHER.text, "rtt_ms": 12, "address": "127.0.0.1:5"},
                      {"id": 'we"ird\\\n', "rtt_ms": None, "address": None}]
    families = await scrape(client)
    assert value(families, "liberation_info", node_id=ME.text, network=NETWORK,
                 version="0.1.0") == 1
    assert value(families, "liberation_peers") == 2
    assert value(families, "liberation_peer_rtt_milliseconds", peer=OTHER.text) == 12
    assert len(families["liberation_peer_rtt_milliseconds"][1]) == 1
    assert value(families, "liberation_ops") == 1
    assert value(families, "liberation_pending_ops") == 0
    assert value(families, "liberation_humans") == 1
    assert value(families, "liberation_uptime_seconds") == 12.5
    assert value(families, "liberation_pool_available_cents") == \
        node.replica.ledger.pool_available
    assert families["liberation_ops"][0] == "gauge"


async def test_traffic_and_rejection_counters(client: Client, node: ReplicaNode) -> None:
    node.rejections = {"bad_signature": 3, "malformed": 1}
    await client.get("/api/v1/status")  # refused: no token
    await client.get("/api/v1/nothing", headers=AUTH)  # 404
    families = await scrape(client)
    assert families["liberation_received_bytes"][0] == "counter"
    assert value(families, "liberation_received_bytes_total") == 1234
    assert value(families, "liberation_sent_bytes_total") == 567
    assert value(families, "liberation_received_messages_total") == 8
    assert value(families, "liberation_links_opened_total") == 2
    assert value(families, "liberation_rejected_inputs_total", reason="bad_signature") == 3
    assert value(families, "liberation_rejected_inputs_total", reason="malformed") == 1
    assert value(families, "liberation_http_refused_requests_total", port="control",
                 status="401") == 1
    assert value(families, "liberation_http_refused_requests_total", port="control",
                 status="404") == 1


async def test_digest_age(client: Client, node: ReplicaNode, clock: Clock) -> None:
    async def age() -> float:
        return value(await scrape(client), "liberation_digest_age_seconds")

    clock.t += 30  # since the app was made
    assert await age() == 30.0
    clock.t += 5
    assert await age() == 35.0
    await node.register("ada")  # a new digest: the age starts again at this scrape
    clock.t += 1
    assert await age() == 0.0
    clock.t += 2
    assert await age() == 2.0


async def test_what_the_node_does_not_report_is_left_out(node: ReplicaNode,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node, "status", lambda: {"node_id": ME.text, "peers": [],
                                                 "ops": 3, "digest": "00"})
    monkeypatch.setattr(node, "counters", lambda: {})
    async with TestClient(TestServer(control_app(node, TOKEN))) as c:
        families = await scrape(c)
    samples = {name for _, found in families.values() for (name, _) in found}
    assert samples == {"liberation_info", "liberation_peers", "liberation_ops",
                       "liberation_digest_age_seconds"}


async def test_store_health_writes_and_clock(client: Client, node: ReplicaNode,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    status = node.status()
    monkeypatch.setattr(node, "status", lambda: {
        **status, "writable": False, "clock_offset_ms": -1234,
        "store": {"ok": False, "error": "disk full", "queued_ops": 17}})
    families = await scrape(client)
    assert value(families, "liberation_writable") == 0
    assert value(families, "liberation_store_ok") == 0
    assert value(families, "liberation_store_queued_ops") == 17
    assert value(families, "liberation_clock_offset_milliseconds") == -1234


async def test_store_size_by_kind(client: Client, node: ReplicaNode,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from liberation_node.store.sizes import store_sizes

    await node.register("ada")
    await node.post("x" * 300, "social", 1, None)
    await node.post("psst", "direct", 1, OTHER.public_key)
    status = node.status()
    sizes = store_sizes(node.replica)
    monkeypatch.setattr(node, "status", lambda: {
        **status, "store": {"ok": True, "queued_ops": 0, "file_bytes": 8192, "wal_bytes": 0,
                            **sizes}})
    families = await scrape(client)
    assert value(families, "liberation_store_items", kind="message.post") == 2
    assert value(families, "liberation_store_items", kind="human.register") == 1
    assert value(families, "liberation_store_bytes", kind="contents") == 300 + 434
    assert value(families, "liberation_store_bytes", kind="message.post") == \
        sizes["kinds"]["message.post"]["bytes"] > 0
    assert value(families, "liberation_store_file_bytes", file="database") == 8192
    assert value(families, "liberation_retention_budget_bytes") == 0  # no policy: no limit
    assert value(families, "liberation_retention_dropped_total") == 0
