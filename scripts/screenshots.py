"""Screenshots of the status page for the README, from a real cluster on 127.0.0.1.

Starts seven daemons (--no-mdns, ICE on 127.0.0.1, each keeping to the peers it
bootstrapped from so the mesh has some depth), has them register, claim, pay and
post through the control API, waits until the first node's map shows every node
and link (node.links records are republished every minute or so), signs a
browser in with a one-time login link and writes

    docs/status-page-desktop.png   1280 px wide, the whole page
    docs/status-page-phone.png     390 px wide (a phone), the whole page

Needs /usr/bin/chromium and the playwright package (the test extra). Takes about
two minutes, most of it waiting for the records.

    .venv/test/bin/python scripts/screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.daemon.harness import Daemon, wait_until
from tests.page.browser import chromium, missing

NAMES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]
PARENT = {"bravo": "alpha", "charlie": "alpha", "delta": "alpha", "echo": "bravo",
          "foxtrot": "bravo", "golf": "charlie"}
PEOPLE = {"alpha": "Ada", "bravo": "Bo", "charlie": "Chidi", "delta": "Dana", "echo": "Eli"}


def activity(nodes: dict[str, Daemon]) -> None:
    ids = {name: d.status()["node_id"] for name, d in nodes.items()}
    for name, person in PEOPLE.items():
        nodes[name].api("POST", "/api/v1/register", {"name": person})
        nodes[name].api("POST", "/api/v1/ledger/claim", {})
    time.sleep(2)  # let the claims reach the payers' peers before they spend
    posts = [
        ("bravo", "billboard", 6, "Seed swap at the library, Saturday 10:00. Bring labels!"),
        ("charlie", "social", 1, "Solar panel on the community hall is back online."),
        ("delta", "media", 2, "Recording of Tuesday's meeting: ask echo for the file."),
        ("echo", "social", 1, "Anyone have a spare bike pump? Mine gave up."),
        ("alpha", "social", 1, "Welcome to the mesh, foxtrot!"),
    ]
    for name, channel, priority, text in posts:
        nodes[name].api("POST", "/api/v1/messages", {"text": text, "channel": channel,
                                                     "priority": priority})
    pay = [("alpha", "bravo", 4_500, "bread"), ("charlie", "alpha", 12_000, "solar parts"),
           ("bravo", "delta", 2_500, "seeds"), ("echo", "alpha", 800, "bike pump")]
    for payer, payee, cents, memo in pay:
        nodes[payer].api("POST", "/api/v1/ledger/transfer",
                         {"to": ids[payee], "amount_cents": cents, "memo": memo})


def main(out: Path) -> None:
    reason = missing()
    if reason:
        sys.exit(f"cannot take screenshots: {reason}")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ln-shots-"))
    nodes: dict[str, Daemon] = {}
    try:
        for name in NAMES:
            boot = [nodes[PARENT[name]].peer_url] if name in PARENT else []
            nodes[name] = Daemon(tmp / name, name=name, bootstrap=boot,
                                 extra=["--low", "1", "--high", "4"]).start()
        wait_until(lambda: all(d.status()["peers"] for d in nodes.values()), 30, "peers")
        activity(nodes)
        alpha = nodes["alpha"]
        print("waiting for every node's links to reach alpha (up to 3 minutes)...")
        wait_until(lambda: len(alpha.api("GET", "/api/v1/topology")["links"]) >= len(NAMES) - 1
                   and len(alpha.api("GET", "/api/v1/topology")["nodes"]) == len(NAMES),
                   180, "alpha's map of the mesh", interval=2)
        url = alpha.api("POST", "/api/v1/login", {})["url"]
        with chromium() as browser:
            for kind, width, height in (("desktop", 1280, 900), ("phone", 390, 844)):
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                page.goto(url if kind == "desktop" else
                          alpha.api("POST", "/api/v1/login", {})["url"])
                page.wait_for_selector("#live.ok", timeout=20_000)
                page.wait_for_selector("#tx-list li.tx", timeout=20_000)
                page.wait_for_selector("#mesh-svg g.node", timeout=20_000)
                if kind == "desktop":  # news while the page is open: the events list fills
                    nodes["echo"].api("POST", "/api/v1/messages", {
                        "text": "Pump found, thanks all.", "channel": "social"})
                    nodes["delta"].api("POST", "/api/v1/ledger/transfer", {
                        "to": alpha.status()["node_id"], "amount_cents": 1_000,
                        "memo": "thanks for the bread"})
                    page.wait_for_selector("#event-list li:nth-child(2)", timeout=20_000)
                page.wait_for_timeout(1500)  # the last refreshes after the stream opened
                path = out / f"status-page-{kind}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"wrote {path}")
                context.close()
    finally:
        for d in nodes.values():
            d.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent.parent / "docs")
    main(parser.parse_args().out)
