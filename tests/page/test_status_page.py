"""The status page in a real browser (Debian's Chromium, driven by Playwright) against a
cluster of three real daemons on 127.0.0.1: it loads without console errors, lists the
peers, draws the mesh, and what one node's page does (a post, a claim, a transfer)
shows up on another node's page without a reload. Untrusted text stays text.

A screenshot of each page is kept per run: under $LIBERATION_ARTIFACTS when set,
else pytest's tmp directory; the path is printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..daemon.harness import Daemon, wait_until
from .browser import chromium, missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

XSS = '<img src=x onerror="window.__xss=1"> hello from alpha'
HOSTILE_NAME = '<svg onload="window.__xss=2">charlie'  # names come from the network too
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Daemon]]:
    """alpha <- bravo <- charlie (each bootstraps from the one before)."""
    tmp = tmp_path_factory.mktemp("cluster")
    started: list[Daemon] = []
    try:
        for folder, name in (("alpha", "alpha"), ("bravo", "bravo"), ("charlie", HOSTILE_NAME)):
            boot = [started[-1].peer_url] if started else []
            started.append(Daemon(tmp / folder, name=name, bootstrap=boot).start())
        wait_until(lambda: all(d.status()["peers"] for d in started), 30,
                   "every node to have a peer")
        yield started
    finally:
        for d in started:
            d.kill()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("LIBERATION_ARTIFACTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Watched:
    """A page signed in to one node, with its console errors collected."""

    def __init__(self, context: BrowserContext, node: Daemon) -> None:
        self.node = node
        self.errors: list[str] = []
        self.page: Page = context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        url = node.api("POST", "/api/v1/login", {})["url"]
        self.page.goto(url)
        self.page.wait_for_selector("#app:not([hidden])", timeout=TIMEOUT_MS)
        self.page.wait_for_selector("#live.ok", timeout=TIMEOUT_MS)  # the stream is open
        self.page.evaluate("window.__loaded = 1")  # a reload would lose this

    def wait(self, script: str, arg: Any = None) -> None:
        self.page.wait_for_function(script, arg=arg, timeout=TIMEOUT_MS)

    def not_reloaded(self) -> None:
        assert self.page.evaluate("window.__loaded") == 1


@pytest.fixture(scope="module")
def pages(browser: Browser, cluster: list[Daemon]) -> Iterator[dict[str, Watched]]:
    # One browser profile for all nodes: their cookies (one per port) must not collide.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield {d.name: Watched(context, d) for d in cluster[:2]}
    finally:
        context.close()


def test_the_page_lists_the_peers_and_draws_the_mesh(pages: dict[str, Watched],
                                                     cluster: list[Daemon]) -> None:
    bravo = pages["bravo"]
    peers = [p["id"] for p in bravo.node.api("GET", "/api/v1/peers")["peers"]
             if p["state"] == "open"]
    bravo.wait("n => document.querySelectorAll('#peer-rows tr.open').length === n", len(peers))
    listed = bravo.page.eval_on_selector_all("#peer-rows tr.open", "rows => rows.map(r => "
                                             "r.dataset.id)")
    assert sorted(listed) == sorted(peers)
    names = bravo.page.inner_text("#peer-rows")
    assert "alpha" in names and HOSTILE_NAME in names  # shown as text, not markup
    # The mesh: every node of the cluster drawn, this node marked, its links drawn.
    ids = [d.status()["node_id"] for d in cluster]
    bravo.wait("ids => ids.every(id => "
               "document.querySelector(`#mesh-svg g.node[data-id='${id}']`))", ids)
    me = bravo.page.get_attribute("#mesh-svg g.node.me", "data-id")
    assert me == bravo.node.status()["node_id"]
    assert bravo.page.locator("#mesh-svg line.link.mine").count() == len(peers)
    titles = bravo.page.eval_on_selector_all("#mesh-svg title", "ts => ts.map(t => t.textContent)")
    assert any(t.startswith(HOSTILE_NAME + "\n") for t in titles)  # labels cut it short
    assert bravo.page.locator("#mesh-svg svg, #peer-rows svg").count() == 0
    assert bravo.page.evaluate("window.__xss") is None
    assert bravo.page.inner_text("#node-name") == "bravo"
    assert bravo.errors == []


def test_a_post_on_one_page_appears_on_another_as_text(pages: dict[str, Watched]) -> None:
    alpha, bravo = pages["alpha"], pages["bravo"]
    alpha.page.fill("#post-text", XSS)
    alpha.page.click("#post-form button[type=submit]")
    alpha.wait("() => document.querySelector('#post-result').textContent === 'Posted.'")
    bravo.wait("t => [...document.querySelectorAll('#message-list .text')]"
               ".some(p => p.textContent === t)", XSS)
    assert bravo.page.locator("#message-list img").count() == 0
    assert bravo.page.evaluate("window.__xss") is None
    author = bravo.page.locator("#message-list li.message").first.locator(".who").inner_text()
    assert author == "alpha"
    bravo.not_reloaded()
    assert alpha.errors == [] and bravo.errors == []


def test_a_claim_and_a_transfer_show_on_the_other_page(pages: dict[str, Watched],
                                                       artifacts: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    alpha, bravo = pages["alpha"], pages["bravo"]
    for who, name in ((alpha, "Ada"), (bravo, "Bo")):
        who.page.fill("#register-form input[name=name]", name)
        who.page.click("#register-form button")
        who.wait("() => !document.querySelector('#ledger-actions').hidden")
    alpha.page.click("#claim-form button")
    alpha.wait("() => document.querySelector('#ledger-result').textContent === 'Claimed.'")
    bravo.wait("() => [...document.querySelectorAll('#tx-list li.tx')]"
               ".some(li => li.textContent.includes('claimed week'))")
    bravo_id = bravo.node.status()["node_id"]
    alpha.page.fill("#transfer-form input[name=to]", bravo_id)
    alpha.page.fill("#transfer-form input[name=amount]", "12.34")
    alpha.page.fill("#transfer-form input[name=memo]", "<b>lunch</b>")
    alpha.page.click("#transfer-form button")
    alpha.wait("() => document.querySelector('#ledger-result').textContent.startsWith('Sent')")
    # Bravo's page, untouched: the transfer arrives by gossip and the event stream.
    bravo.wait("() => [...document.querySelectorAll('#tx-list li.tx')]"
               ".some(li => li.textContent.includes('$12.34'))")
    bravo.wait("() => document.querySelector('#stat-balance').textContent === '$12.34'")
    memo = bravo.page.locator("#tx-list .memo").first.inner_text()
    assert "<b>lunch</b>" in memo and bravo.page.locator("#tx-list b").count() == 0
    bravo.not_reloaded()
    alpha.not_reloaded()
    for name, watched in pages.items():
        shot = artifacts / f"status-page-{name}.png"
        watched.page.screenshot(path=str(shot), full_page=True)
        with capsys.disabled():  # shown even when the test passes
            print(f"\nstatus page screenshot: {shot}")
    assert alpha.errors == [] and bravo.errors == []


def test_a_browser_without_a_session_is_asked_to_sign_in(browser: Browser,
                                                         cluster: list[Daemon]) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(cluster[0].run["control_url"].replace("0.0.0.0", "127.0.0.1") + "/")
        page.wait_for_selector("#signin:not([hidden])", timeout=TIMEOUT_MS)
        assert "liberation-node open" in page.inner_text("#signin")
        assert page.locator("#app").is_hidden()
    finally:
        context.close()
