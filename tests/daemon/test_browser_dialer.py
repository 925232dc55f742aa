"""A standard browser is a WebRTC peer (issue 8 item 5, transport.md §3.9): Chromium,
driven by Playwright, opens a data channel to a real daemon by POSTing its unmodified
offer to /v1/signal from a page of an origin the operator allowed; the same page
from another origin is refused.

Everything runs in a network namespace of its own with only loopback (the daemon,
both page servers and Chromium): nothing reaches this machine's interfaces, and
Chromium offers loopback candidates (with --allow-loopback-in-peer-connection and
the page's origin holding camera/microphone permission; it never writes
a=end-of-candidates). Needs root and /usr/bin/chromium; skips without them unless
CI=true. Playwright never downloads a browser here: it drives Debian's chromium.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from liberation_node.core.identity import Identity

from ..netns import namespace, skip_or_fail
from .harness import Daemon

CHROMIUM = Path("/usr/bin/chromium")
ALLOWED, OTHER = 8123, 8124  # page servers' ports: two origins
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-loopback-in-peer-connection",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-quic"]

PAGE = """<!doctype html><meta charset="utf-8"><title>dialer</title>
<script>
// Dial a liberation-node as any page could: one data channel, the offer as the
// browser wrote it, POSTed as JSON to the node's signaling URL.
async function dial(signalUrl, network, from) {
  const pc = new RTCPeerConnection({iceServers: []});
  const channel = pc.createDataChannel("liberation-node/1", {protocol: "liberation-sync/1"});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(done => {
    if (pc.iceGatheringState === "complete") return done();
    pc.addEventListener("icegatheringstatechange",
                        () => pc.iceGatheringState === "complete" && done());
  });
  const offer = {type: "offer", sdp: pc.localDescription.sdp};
  let response;
  try {
    response = await fetch(signalUrl, {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({network, from, offer})});
  } catch (error) {
    return {state: "fetch failed", detail: String(error), offer: offer.sdp};
  }
  if (!response.ok) {
    return {state: "http " + response.status, detail: await response.text(), offer: offer.sdp};
  }
  await pc.setRemoteDescription((await response.json()).answer);
  const opened = await new Promise(done => {
    channel.onopen = () => done(true);
    setTimeout(() => done(false), 10000);
  });
  return {state: opened ? "open" : "no channel", offer: offer.sdp};
}
</script>
"""


@pytest.fixture
def sync_playwright() -> Any:
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (the test extra has it)")
    return sync_playwright


@pytest.fixture
def netns(tmp_path: Path) -> Iterator[tuple[list[str], list[subprocess.Popen[bytes]]]]:
    procs: list[subprocess.Popen[bytes]] = []
    with namespace(f"ln-browser-{os.getpid()}") as inside:
        try:
            yield inside, procs
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(10)
                if proc.stdout is not None:
                    proc.stdout.close()


def serve_page(inside: list[str], directory: Path, port: int) -> subprocess.Popen[bytes]:
    """A static server for the page, on 127.0.0.1:port inside the namespace; returns once
    it listens (it prints its banner then)."""
    proc = subprocess.Popen([*inside, sys.executable, "-u", "-m", "http.server", str(port),
                             "--bind", "127.0.0.1", "--directory", str(directory)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    assert b"Serving HTTP" in banner, banner
    return proc


def test_chromium_opens_a_data_channel_from_an_allowed_origin_only(
        tmp_path: Path, sync_playwright: Any,
        netns: tuple[list[str], list[subprocess.Popen[bytes]]]) -> None:
    inside, procs = netns
    node = Daemon(tmp_path / "node", name="node", prefix=inside,
                  extra=["--allow-origin", f"http://127.0.0.1:{ALLOWED}"])
    try:
        node.start()
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "index.html").write_text(PAGE)
        procs += [serve_page(inside, tmp_path / "site", port) for port in (ALLOWED, OTHER)]
        launcher = tmp_path / "chromium-in-namespace"
        launcher.write_text(f"#!/bin/sh\nexec {' '.join(inside)} {CHROMIUM} \"$@\"\n")
        launcher.chmod(0o755)
        me = Identity.from_seed(b"\x42" * 32).text
        results = {}
        with sync_playwright() as playwright:
            # Playwright gives the browser a fresh profile directory of its own.
            browser = playwright.chromium.launch(executable_path=str(launcher), args=FLAGS)
            try:
                for port in (ALLOWED, OTHER):
                    origin = f"http://127.0.0.1:{port}"
                    context = browser.new_context()
                    # With the permission Chromium offers its real (loopback) addresses.
                    context.grant_permissions(["camera", "microphone"], origin=origin)
                    page = context.new_page()
                    page.goto(origin + "/index.html")
                    results[port] = page.evaluate(
                        "([url, network, from]) => dial(url, network, from)",
                        [node.peer_url, node.network, me])
                    context.close()
            finally:
                browser.close()
        allowed, other = results[ALLOWED], results[OTHER]
        assert allowed["state"] == "open", json.dumps(allowed, indent=1) + "\n" + \
            "\n".join(node.read_log())
        assert "a=end-of-candidates" not in allowed["offer"]  # sent as the browser wrote it
        assert other["state"] == "fetch failed", other  # the preflight was refused
        refused = [line for line in node.read_log() if "refused an offer" in line]
        assert len(refused) == 1 and f"origin 'http://127.0.0.1:{OTHER}'" in refused[0]
        assert "403" in refused[0]
    finally:
        node.kill()
