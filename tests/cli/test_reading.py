"""The reading commands against a control port that speaks the contract (fake_api.py):
what they ask for, the tables they print (names, dollars), their --json, paging."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from liberation_node.api.client import ControlClient, ControlError
from liberation_node.commands.output import when
from tests.api.fakes import ME, OTHER

from .conftest import acli
from .fake_api import NOW_MS, THIRD, FakeApi, message


async def run(tmp_path: Path, served: Path, *args: str) -> str:
    code, out, err = await acli(tmp_path, *args, "--data-dir", str(served))
    assert (code, err) == (0, ""), err
    return out


async def test_status_text(tmp_path: Path, served: Path) -> None:
    lines = (await run(tmp_path, served, "status")).splitlines()
    assert lines[0].split() == ["node", "ada", f"({ME.text})"]
    assert lines[1].split() == ["network", "api-test", "version", "0.1.0", "up", "1h", "02m"]
    assert lines[2].split() == ["health", "ok"]
    assert lines[3].split() == ["join", f"http://192.0.2.7:7411/v1/signal#{ME.text}"]
    assert lines[4].split() == [f"http://198.51.100.7:7411/v1/signal#{ME.text}"]
    assert lines[5].split() == ["peers", "1", "connected"]
    assert lines[6].split() == [OTHER.text, "rtt", "12", "ms", "127.0.0.1:5000"]
    assert "ledger    2 humans, pool $18,999,999,791,200.00 available" in lines
    assert "clock     -40 ms from the median of peers' clocks" in lines


async def test_status_says_when_writes_are_refused_and_what_is_unhealthy(
        tmp_path: Path, served: Path, api: FakeApi) -> None:
    checks = {"store": {"ok": False}, "degree": {"ok": False}, "loop": {"ok": True}}
    api.status.update(writable=False, write_error="the disk is full",
                      health={"ok": False, "checks": checks})
    out = await run(tmp_path, served, "status")
    assert "health    not ok: degree, store\n" in out
    assert "writes    refused: the disk is full\n" in out


async def test_status_of_a_node_from_before_the_contract(tmp_path: Path, served: Path,
                                                         api: FakeApi) -> None:
    for key in ("name", "join_urls", "clock_offset_ms", "data_dir", "writable", "write_error"):
        del api.status[key]
    api.status["health"] = None  # no check has run yet
    lines = (await run(tmp_path, served, "status")).splitlines()
    assert lines[0].split() == ["node", ME.text]
    assert lines[2].split() == ["health", "not", "checked", "yet"]


async def test_peers_table(tmp_path: Path, served: Path) -> None:
    header, row = (await run(tmp_path, served, "peers")).splitlines()
    assert header.split() == ["NAME", "ID", "STATE", "DIR", "RTT", "IN", "OUT", "SINCE",
                              "FOUND", "BY", "ADDRESS"]
    cells = row.split()
    assert cells[:5] == ["bob", OTHER.text[:10], "open", "out", "12"]
    assert cells[6:10] == ["2.0", "KiB", "4.8", "MiB"]
    assert cells[-2:] == ["bootstrap", "127.0.0.1:5000"]


async def test_no_peers(tmp_path: Path, served: Path, api: FakeApi) -> None:
    api.peers = []
    code, out, err = await acli(tmp_path, "peers", "--data-dir", str(served))
    assert (code, out) == (0, "")
    assert "no peers" in err


async def test_ledger_shows_dollars_and_names(tmp_path: Path, served: Path) -> None:
    lines = (await run(tmp_path, served, "ledger")).splitlines()
    assert lines[0] == ("pool      $18,999,999,791,200.00 available of "
                        "$19,000,000,000,000.00 ($208,800.00 distributed)")
    assert lines[1] == "humans    2 registered"
    assert lines[2] == "you       ada: balance $800.00, spendable $800.00"
    assert lines[4].split() == ["NAME", "BALANCE", "SPENDABLE", "RECEIVED", "LAST", "CLAIM",
                                "STATUS", "ID"]
    assert lines[5].split() == ["ada", "$800.00", "$800.00", "$800.00", "never", "active",
                                ME.text]
    assert lines[6].split() == ["bob", "$12.50", "$12.50", "$12.50", "never", "active",
                                OTHER.text]
    assert "80000" not in "\n".join(lines)


async def test_ledger_when_not_registered(tmp_path: Path, served: Path, api: FakeApi) -> None:
    api.ledger["me"] = None
    out = await run(tmp_path, served, "ledger")
    assert "you       not registered (liberation-node register NAME)\n" in out


async def test_ledger_pages(tmp_path: Path, served: Path, api: FakeApi) -> None:
    code, out, err = await acli(tmp_path, "ledger", "--limit", "1", "--data-dir", str(served))
    assert code == 0
    assert "ada" in out and "bob" not in out
    assert err == "more: liberation-node ledger --cursor 1 (or --all)\n"
    out = await run(tmp_path, served, "ledger", "--cursor", "1")
    assert "bob" in out and "  ada  " not in out
    out = await run(tmp_path, served, "ledger", "--all")
    assert [line.split()[:2] for line in out.splitlines()[5:]] == [["ada", "$800.00"],
                                                                   ["bob", "$12.50"]]
    assert "GET /api/v1/ledger/humans?limit=500" in api.requests


async def test_balance_of_me_with_history(tmp_path: Path, served: Path, api: FakeApi) -> None:
    lines = (await run(tmp_path, served, "balance")).splitlines()
    assert lines[0] == f"ada ({ME.text})"
    assert lines[1] == "balance     $800.00"
    assert lines[2:6] == ["spendable   $800.00", "received    $800.00",
                          "registered  " + when(NOW_MS - 86_400_000) + ", last claim never",
                          "status      active"]
    assert lines[7].split() == ["TIME", "KIND", "AMOUNT", "WITH", "MEMO", "STATUS"]
    assert lines[8].split()[2:] == ["transfer", "-$12.50", "to", OTHER.text[:10], "lunch",
                                    "applied"]
    assert lines[9].split()[2:] == ["claim", "$800.00", "-", "applied"]
    assert f"GET /api/v1/ledger/transactions?limit=10&human={ME.text}" in api.requests


async def test_balance_of_another(tmp_path: Path, served: Path) -> None:
    lines = (await run(tmp_path, served, "balance", OTHER.text)).splitlines()
    assert lines[0] == f"bob ({OTHER.text})"
    assert lines[1] == "balance     $12.50"
    # the transfer ada made, seen from bob's side: money coming in
    assert lines[8].split()[2:] == ["transfer", "$12.50", "from", ME.text[:10], "lunch",
                                    "applied"]


async def test_balance_refusals(tmp_path: Path, served: Path, api: FakeApi) -> None:
    code, out, err = await acli(tmp_path, "balance", THIRD, "--data-dir", str(served))
    assert (code, out, err) == (1, "", f"Error: {THIRD} is not registered as a human\n")
    api.ledger["me"] = None
    code, out, err = await acli(tmp_path, "balance", "--data-dir", str(served))
    assert (code, out) == (1, "")
    assert err == ("Error: this node is not registered as a human (register with: "
                   "liberation-node register NAME)\n")


async def test_feed(tmp_path: Path, served: Path, api: FakeApi) -> None:
    lines = (await run(tmp_path, served, "feed")).splitlines()
    assert lines[0].split() == ["TIME", "ID", "CHANNEL", "FROM", "TEXT"]
    assert [line.split()[2:] for line in lines[1:]] == [
        ["01010101", "social", "ada", "hello", "mesh"],
        ["02020202", "direct", "bob", "->", ME.text[:10], "psst"],
        ["04040404", "billboard", "!3", "bob", "for", "sale:", "bike"]]
    lines = (await run(tmp_path, served, "feed", "--state", "all", "--channel", "social",
                       "--author", ME.text)).splitlines()
    assert [line.split()[-3:] for line in lines[1:]] == [
        ["ada", "hello", "mesh"], ["[retracted]", "old", "news"]]
    assert (f"GET /api/v1/messages?limit=20&channel=social&author={ME.text}&state=all"
            in api.requests)


async def test_feed_pages(tmp_path: Path, served: Path, api: FakeApi) -> None:
    api.messages = [message(n, ME.text, "ada", f"post {n}") for n in range(1, 6)]
    code, out, err = await acli(tmp_path, "feed", "--limit", "2", "--data-dir", str(served))
    assert code == 0
    assert [line.split()[-1] for line in out.splitlines()[1:]] == ["1", "2"]
    assert err == "more: liberation-node feed --cursor 2 (or --all)\n"
    out = await run(tmp_path, served, "feed", "--limit", "2", "--cursor", "4")
    assert [line.split()[-1] for line in out.splitlines()[1:]] == ["5"]
    out = await run(tmp_path, served, "feed", "--all")
    assert len(out.splitlines()) == 6


async def test_topology(tmp_path: Path, served: Path) -> None:
    out = await run(tmp_path, served, "topology")
    lines = out.splitlines()
    assert lines[0] == "nodes (3)"
    assert lines[2].split()[:3] == ["ada", ME.text, "this"]
    assert lines[3].split()[:3] == ["bob", OTHER.text, "connected"]
    assert lines[4].split()[:2] == [THIRD[:10], THIRD]
    assert "links (2)" in lines
    assert [line.split() for line in lines[lines.index("links (2)") + 1:][:2]] == [
        ["ada", "--", "bob", "12", "ms"], ["bob", "--", THIRD[:10], "30", "ms"]]
    routes = lines[lines.index("routes (2)") + 2:]
    assert [r.split() for r in routes] == [["bob", "bob", "1"], [THIRD[:10], "bob", "2"]]


@pytest.mark.parametrize(("command", "key"), [
    (["status"], "node_id"), (["peers"], "peers"), (["ledger"], "ledger"),
    (["balance"], "human"), (["balance", OTHER.text], "human"), (["feed"], "messages"),
    (["topology"], "nodes"), (["address"], "join_urls"), (["config"], "settings"),
])
async def test_json_parses(tmp_path: Path, served: Path, api: FakeApi, command: list[str],
                           key: str) -> None:
    out = await run(tmp_path, served, *command, "--json")
    assert out.count("\n") == 1
    assert key in json.loads(out)


async def test_json_is_what_the_node_said(tmp_path: Path, served: Path, api: FakeApi) -> None:
    assert json.loads(await run(tmp_path, served, "status", "--json")) == api.status
    assert json.loads(await run(tmp_path, served, "peers", "--json")) == {"peers": api.peers}
    assert json.loads(await run(tmp_path, served, "topology", "--json")) == api.topology
    assert json.loads(await run(tmp_path, served, "feed", "--json", "--limit", "1")) == {
        "messages": [api.messages[0]], "next_cursor": "1"}
    assert json.loads(await run(tmp_path, served, "ledger", "--json")) == {
        "ledger": api.ledger, "humans": api.humans, "next_cursor": None}
    assert json.loads(await run(tmp_path, served, "balance", "--json")) == {
        "human": api.humans[0], "transactions": api.transactions, "next_cursor": None}


async def test_address_of_the_running_node(tmp_path: Path, served: Path, api: FakeApi) -> None:
    out = await run(tmp_path, served, "address")
    assert out.splitlines() == api.status["join_urls"]
    assert json.loads(await run(tmp_path, served, "address", "--json")) == {
        "join_urls": api.status["join_urls"], "running": True}
    del api.status["join_urls"]  # a node from before the contract: its peer URL
    assert (await run(tmp_path, served, "address")).splitlines() == [
        f"http://127.0.0.1:7411/v1/signal#{ME.text}"]


async def test_a_missing_endpoint_means_an_older_node(tmp_path: Path, served: Path) -> None:
    # A node older than this command answers a route it lacks with a bare 404.
    with pytest.raises(ControlError, match=r"^the running node has no /api/v1/nothing; is it "
                                           r"an older version\? \(restart it\) \(HTTP 404\)$"):
        await asyncio.to_thread(ControlClient(served).get, "/api/v1/nothing")


async def test_feed_marks_void_posts(tmp_path: Path, served: Path, api: FakeApi) -> None:
    api.messages = [message(5, OTHER.text, "bob", "said twice", forked=True)]
    line = (await run(tmp_path, served, "feed")).splitlines()[1]
    assert line.split()[-5:] == ["bob", "[void:", "forked]", "said", "twice"]


async def test_a_peer_still_connecting(tmp_path: Path, served: Path, api: FakeApi) -> None:
    api.peers = [{"id": None, "name": "", "state": "connecting", "rtt_ms": None,
                  "bytes_in": 0, "bytes_out": 0, "since_ms": None, "found_by": None,
                  "address": None, "direction": None}]
    row = (await run(tmp_path, served, "peers")).splitlines()[1]
    assert row.split() == ["?", "?", "connecting", "-", "-", "0", "B", "0", "B", "?", "-", "-"]


async def test_status_shows_the_store_by_kind(tmp_path: Path, served: Path,
                                             api: FakeApi) -> None:
    api.status["store"] = {
        "ok": True, "file_bytes": 5 * 2**20, "wal_bytes": 2**20,
        "kinds": {"human.register": {"count": 2, "bytes": 300},
                  "ledger.transfer": {"count": 1, "bytes": 200},
                  "message.post": {"count": 10_000, "bytes": 2_500_000},
                  "message.retract": {"count": 3, "bytes": 600},
                  "contents": {"count": 1048, "bytes": 2**20},
                  "records": {"count": 4, "bytes": 2048}},
        "retention": {"droppable_bytes": 2**20, "budget_bytes": 2**20, "dropped": 8952}}
    lines = (await run(tmp_path, served, "status")).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("store"))
    assert lines[at] == ("store     5.0 MiB on disk (+1.0 MiB WAL), ledger 500 B, 10000 posts "
                         "2.4 MiB, their texts 1.0 MiB, records 2.0 KiB")
    assert lines[at + 1] == ("          other people's texts: 1.0 MiB of 1.0 MiB; 8952 dropped "
                             "since start")


async def test_feed_says_why_a_text_is_not_shown(tmp_path: Path, served: Path,
                                                 api: FakeApi) -> None:
    api.messages = [
        message(1, OTHER.text, "bob", None, channel="direct", encrypted=True,
                readable=False, unreadable="not_for_this_node"),
        message(2, OTHER.text, "bob", None, retracted=True, readable=False,
                unreadable="retracted"),
        message(3, OTHER.text, "bob", "for you", channel="direct", to=ME.text,
                encrypted=True, readable=True, unreadable=None)]
    lines = (await run(tmp_path, served, "feed", "--state", "all")).splitlines()
    assert [" ".join(line.split()[5:]) for line in lines[1:]] == [
        "[private: between two other nodes]", "[retracted: text removed]",
        f"-> {ME.text[:10]} [private] for you"]
