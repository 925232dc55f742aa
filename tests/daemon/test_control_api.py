"""The control API of real daemons on 127.0.0.1: what the node itself fills in (peer
metadata, join URLs, counters), the refusals it logs, and its page's assets."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .harness import Daemon, wait_until


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Daemon, Daemon]]:
    started: list[Daemon] = []
    try:
        started.append(Daemon(tmp_path / "a", name="alpha").start())
        started.append(Daemon(tmp_path / "b", name="bravo",
                              bootstrap=[started[0].peer_url]).start())
        a, b = started
        wait_until(lambda: any(p["state"] == "open" for p in a.api("GET", "/api/v1/peers")
                               ["peers"]), 30, "alpha and bravo to connect")
        yield a, b
    finally:
        for d in started:
            d.kill()


def text(daemon: Daemon, path: str) -> str:
    req = urllib.request.Request(daemon.run["control_url"] + path,
                                 headers={"Authorization": f"Bearer {daemon.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.read().decode())


def test_peers_status_and_metrics_of_a_running_node(pair: tuple[Daemon, Daemon]) -> None:
    a, b = pair
    b.api("POST", "/api/v1/messages", {"text": "hello"})
    a_id, b_id = a.status()["node_id"], b.status()["node_id"]
    wait_until(lambda: a.status()["ops"] == 1, 20, "the post to reach alpha")
    [at_a] = a.api("GET", "/api/v1/peers")["peers"]
    [at_b] = b.api("GET", "/api/v1/peers")["peers"]
    assert (at_a["id"], at_a["name"], at_a["state"]) == (b_id, "bravo", "open")
    assert (at_a["direction"], at_a["found_by"]) == ("in", "inbound")
    assert (at_b["id"], at_b["direction"], at_b["found_by"]) == (a_id, "out", "bootstrap")
    for peer in (at_a, at_b):
        assert peer["bytes_in"] > 0 and peer["bytes_out"] > 0
        assert abs(peer["since_ms"] - time.time() * 1000) < 60_000
        assert peer["address"].startswith("127.0.0.1:")
    status = b.status()
    assert status["name"] == "bravo"
    assert status["join_urls"] == [f"{b.peer_url}#{b_id}"]
    assert (status["clock_offset_ms"], status["writable"], status["write_error"]) == (
        None, True, None)
    assert status["data_dir"] == str(b.data_dir)
    health = b.api("GET", "/api/v1/health")
    assert health["ok"] is True and {"store", "degree", "clock"} <= set(health["checks"])

    families = {f.name: f for f in text_string_to_metric_families(text(b, "/metrics"))}
    received = families["liberation_received_bytes"].samples[0].value
    assert received > 0 and families["liberation_received_bytes"].type == "counter"
    assert sum(s.value for s in families["liberation_sent_messages"].samples) > 0

    topo = b.api("GET", "/api/v1/topology")
    assert {n["id"] for n in topo["nodes"]} >= {a_id, b_id}
    assert {frozenset((x["a"], x["b"])) for x in topo["links"]} >= {frozenset((a_id, b_id))}


def test_paying_yourself_is_a_409_on_a_real_node(pair: tuple[Daemon, Daemon]) -> None:
    a, _ = pair
    a.api("POST", "/api/v1/register", {"name": "ada"})
    a.api("POST", "/api/v1/ledger/claim", {})
    status, body = a.call("POST", "/api/v1/ledger/transfer", {"to": a.status()["node_id"],
                                                              "amount_cents": 100})
    assert status == 409 and "yourself" in body["error"]


def test_a_flood_of_bad_requests_logs_a_few_lines(pair: tuple[Daemon, Daemon]) -> None:
    a, _ = pair
    ports = [int(a.run[key].rsplit(":", 1)[1].split("/")[0])
             for key in ("control_url", "peer_url")]
    bad = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    for port in ports:
        for _ in range(100):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(bad)
                assert conn.recv(100).startswith(b"HTTP/1.")
    families = {f.name: f for f in text_string_to_metric_families(text(a, "/metrics"))}
    malformed = {s.labels["port"]: s.value
                 for s in families["liberation_http_malformed_requests"].samples}
    assert malformed == {"control": 100, "peer": 100}
    assert a.stop() == 0
    log = a.read_log()  # all of it: the process is gone
    assert not any("Traceback" in line or "ERROR" in line for line in log)
    assert 1 <= sum(" port: " in line for line in log) <= 21
