"""Message texts with real daemons on 127.0.0.1 (issue #11, protocols/ops.md §12-§13):
a direct message is readable at its two nodes only, and no other node's store or API
holds its text; a retracted post's text is gone from every node's files; a small
retention budget holds while a writer posts 10,000 messages.

Stores are searched as files on disk, the WAL included: what a disk thief, a backup
or a forensic tool would see."""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path
from typing import Any

from .harness import Daemon, converged, start, wait_until

STORE = "replica.sqlite3"


def files(d: Daemon) -> bytes:
    """Every byte of a node's store: the database, its WAL and the WAL index."""
    return b"".join(p.read_bytes() for p in sorted(d.visible_dir.glob(STORE + "*")))


def messages(d: Daemon, **query: str) -> list[dict[str, Any]]:
    q = "&".join(f"{k}={v}" for k, v in {"state": "all", **query}.items())
    return list(d.api("GET", f"/api/v1/messages?{q}")["messages"])


def mesh_of_three(daemons: list[Daemon], tmp: Path, *extra: str) -> list[Daemon]:
    a = start(daemons, tmp, "a", extra=list(extra))
    b = start(daemons, tmp, "b", bootstrap=[a.peer_url], extra=list(extra))
    c = start(daemons, tmp, "c", bootstrap=[a.peer_url, b.peer_url], extra=list(extra))
    wait_until(lambda: all(len(d.status()["peers"]) == 2 for d in (a, b, c)), 60,
               "every node to meet the two others")
    return [a, b, c]


def purged(d: Daemon) -> bool:
    return d.status()["store"]["purge_pending"] is False


def test_a_direct_message_is_readable_at_its_two_nodes_only(tmp_path: Path,
                                                            daemons: list[Daemon]) -> None:
    a, b, c = mesh_of_three(daemons, tmp_path)
    secret = "the key is under the blue flowerpot #4471"
    b_id, c_id = b.status()["node_id"], c.status()["node_id"]
    sent = a.api("POST", "/api/v1/messages", {"text": secret, "channel": "direct",
                                              "to": b_id})["id"]
    public = a.api("POST", "/api/v1/messages", {"text": "a public hello #4471"})["id"]
    wait_until(lambda: converged([a, b, c], 2), 30, "the messages to reach every node")

    for d in (a, b):  # the author's node and the recipient's read it
        [dm] = [m for m in messages(d) if m["id"] == sent]
        assert (dm["text"], dm["to"], dm["encrypted"], dm["readable"]) == (
            secret, b_id, True, True)
    [dm] = [m for m in messages(c) if m["id"] == sent]
    assert (dm["text"], dm["to"], dm["readable"], dm["unreadable"]) == (
        None, None, False, "not_for_this_node")
    assert [m["id"] for m in messages(c, to=b_id)] == []  # c cannot tell whom it is for
    assert [m["id"] for m in messages(b, to=b_id)] == [sent]
    assert [m["text"] for m in messages(c) if m["id"] == public] == ["a public hello #4471"]

    # Nothing c shows, and nothing in any store (c's, and the parties' too: they keep
    # ciphertext and open it when read), holds the text.
    views = json.dumps(c.api("GET", "/api/v1/views"))
    assert "flowerpot" not in views and "flowerpot" not in json.dumps(c.status())
    for d in (a, b, c):
        on_disk = files(d)
        assert b"a public hello #4471" in on_disk  # the search does find what is there
        assert b"flowerpot" not in on_disk, d.name
    # Writing to yourself, or to an id that is no key, is refused before signing.
    status, body = a.call("POST", "/api/v1/messages", {
        "text": "x", "channel": "direct", "to": a.status()["node_id"]})
    assert status == 409 and "yourself" in body["error"]
    assert c_id != b_id


def test_a_retracted_post_is_gone_from_every_store(tmp_path: Path,
                                                   daemons: list[Daemon]) -> None:
    a, b, c = mesh_of_three(daemons, tmp_path)
    words = "meet me at the old mill at midnight #9931"
    post = a.api("POST", "/api/v1/messages", {"text": words})["id"]
    kept = a.api("POST", "/api/v1/messages", {"text": "this one stays #9931"})["id"]
    wait_until(lambda: converged([a, b, c], 2), 30, "the posts to reach every node")
    for d in (a, b, c):
        d.api("GET", "/api/v1/status")
        assert words.encode() in files(d)  # stored in full, before the retraction
    a.api("POST", f"/api/v1/messages/{post}/retract")
    wait_until(lambda: converged([a, b, c], 3), 30, "the retraction to reach every node")
    wait_until(lambda: all(purged(d) for d in (a, b, c)), 30, "every store to purge")
    for d in (a, b, c):
        on_disk = files(d)
        assert words.encode() not in on_disk, d.name  # database and WAL alike
        assert b"this one stays #9931" in on_disk
        [gone] = [m for m in messages(d) if m["id"] == post]
        assert (gone["text"], gone["retracted"], gone["unreadable"]) == (
            None, True, "retracted")
        assert [m["text"] for m in messages(d) if m["id"] == kept] == ["this one stays #9931"]
    # The header and the retraction stay: the feeds verify, the digests agree.
    assert len({d.status()["digest"] for d in (a, b, c)}) == 1


def test_a_small_retention_budget_holds_while_a_writer_posts_10k(tmp_path: Path,
                                                                 daemons: list[Daemon]
                                                                 ) -> None:
    writer = start(daemons, tmp_path, "writer", extra=["--retain-mib", "0"])
    small = start(daemons, tmp_path, "small", bootstrap=[writer.peer_url],
                  extra=["--retain-mib", "1"])
    wait_until(lambda: len(small.status()["peers"]) == 1, 30, "the two nodes to connect")
    budget = small.status()["store"]["retention"]["budget_bytes"]
    assert budget == 1 << 20
    total, size = 10_000, 1000
    peak = 0

    def post(n: int) -> None:
        writer.api("POST", "/api/v1/messages", {"text": f"{n:06d} " + "x" * (size - 7)})

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(post, n) for n in range(total)]
        while not all(f.done() for f in futures):
            held = small.status()["store"]["retention"]["droppable_bytes"]
            peak = max(peak, held)
            assert held <= budget  # at every look, not only at the end
            time.sleep(0.2)
        for f in futures:
            f.result()
    wait_until(lambda: converged([writer, small], total), 120,
               "the small node to hold every header")
    elapsed = time.monotonic() - started
    end = small.status()["store"]
    kinds = end["kinds"]
    assert kinds["message.post"]["count"] == total
    assert end["retention"]["droppable_bytes"] <= budget and peak <= budget
    assert kinds["contents"]["bytes"] <= budget and end["retention"]["dropped"] > 0
    assert writer.status()["store"]["kinds"]["contents"]["bytes"] == total * size
    # The newest texts are the ones kept (ops.md §12.5, newest first), within the budget.
    rows = every_message(small)
    assert len(rows) == total
    kept = sum(1 for m in rows if m["readable"])
    assert all(m["readable"] for m in rows[:kept])  # a prefix of the newest-first list
    assert 0 < kept * size <= budget < (kept + 1) * size + size
    assert {m["unreadable"] for m in rows if not m["readable"]} == {"dropped"}
    assert small.status()["digest"] == writer.status()["digest"]
    print(f"\n10k posts of {size} B in {elapsed:.1f} s; small node: "
          f"{end['file_bytes'] / 2**20:.1f} MiB on disk, texts "
          f"{kinds['contents']['bytes'] / 2**20:.2f} MiB (peak {peak / 2**20:.2f} MiB), "
          f"writer: {writer.status()['store']['file_bytes'] / 2**20:.1f} MiB")


def every_message(d: Daemon) -> list[dict[str, Any]]:
    """Every message, newest first, page by page."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = d.api("GET", "/api/v1/messages?limit=500"
                     + (f"&cursor={cursor}" if cursor else ""))
        rows += page["messages"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows
