"""Real daemons as separate processes on loopback (issue #4): WebRTC, signaling,
convergence, crash recovery, relayed signaling. Each test cleans up its processes."""

from __future__ import annotations

from pathlib import Path

from .harness import Daemon, converged, start, wait_until


def test_five_nodes_in_a_chain_converge(tmp_path: Path, daemons: list[Daemon]) -> None:
    first = start(daemons, tmp_path, "n0")
    for i in range(1, 5):
        start(daemons, tmp_path, f"n{i}", bootstrap=[daemons[-1].peer_url])
    wait_until(lambda: all(len(d.status()["peers"]) >= 1 for d in daemons), 30,
               "every node to have a peer")
    for i, d in enumerate(daemons):
        d.api("POST", "/api/v1/register", {"name": f"n{i}"})
        d.api("POST", "/api/v1/messages", {"text": f"hello from n{i}", "channel": "social"})
    first.api("POST", "/api/v1/ledger/claim", {})
    wait_until(lambda: converged(daemons, ops=11), 30, "all five digests to agree")


def test_killed_node_restarts_and_catches_up(tmp_path: Path, daemons: list[Daemon]) -> None:
    a = start(daemons, tmp_path, "a")
    b = start(daemons, tmp_path, "b", bootstrap=[a.peer_url])
    c = start(daemons, tmp_path, "c", bootstrap=[b.peer_url])
    for d in (a, b, c):
        d.api("POST", "/api/v1/messages", {"text": f"before {d.name}"})
    wait_until(lambda: converged([a, b, c], ops=3), 30, "first convergence")
    c.kill()  # SIGKILL: no goodbye, no flush beyond what was acknowledged
    wait_until(lambda: len(b.status()["peers"]) == 1, 15, "b to notice c is gone")
    for i in range(20):
        a.api("POST", "/api/v1/messages", {"text": f"while c was down {i}"})
    wait_until(lambda: converged([a, b], ops=23), 30, "a and b to agree")
    c = Daemon(c.data_dir, name="c", bootstrap=[b.peer_url])
    daemons.append(c)
    c.start()
    assert c.status()["ops"] >= 3  # what it had acknowledged survived the kill
    wait_until(lambda: converged([a, b, c], ops=23), 30, "c to catch up")


def test_relayed_signaling_connects_two_nodes_that_share_a_third(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    hub = start(daemons, tmp_path, "hub")
    # Neither leaf advertises a URL (as behind NAT): they can only meet by relay.
    left = start(daemons, tmp_path, "left", bootstrap=[hub.peer_url], extra=["--no-advertise"])
    right = start(daemons, tmp_path, "right", bootstrap=[hub.peer_url],
                  extra=["--no-advertise"])
    right_id = right.status()["node_id"]

    def leaves_connected() -> bool:
        return any(p["id"] == right_id for p in left.status()["peers"])

    wait_until(leaves_connected, 45, "left and right to connect directly")
    log = left.read_log() + right.read_log()
    assert any("by relay" in line for line in log), "\n".join(log)


async def test_hello_with_another_connections_binding_is_refused(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    """A relay of the signaling cannot splice itself in: a HELLO signed for any other
    connection (here: other bytes than this connection's DTLS fingerprints) is refused."""
    import asyncio

    from liberation_node.api.peer import send_offer
    from liberation_node.core import frames
    from liberation_node.core.frames import Close, Hello
    from liberation_node.core.identity import Identity
    from liberation_node.core.session import HELLO_DOMAIN
    from liberation_node.transport import Link, TransportConfig, WebRtcTransport

    node = start(daemons, tmp_path, "target")
    intruder = Identity.from_seed(b"\x42" * 32)
    received: asyncio.Queue[bytes] = asyncio.Queue()
    closed = asyncio.Event()
    transport = WebRtcTransport(TransportConfig(ice_addresses=("127.0.0.1",)),
                                on_open=lambda link: None,
                                on_message=lambda link, data: received.put_nowait(data),
                                on_close=lambda link: closed.set())
    try:
        link: Link = await transport.dial(lambda offer: send_offer(
            node.peer_url, "e2e", intruder.public_key, offer, timeout=10))
        forged = intruder.sign(HELLO_DOMAIN + b"the binding of some other connection")
        link.send(frames.encode(Hello(1, "e2e", intruder.public_key, forged, "intruder")))
        reasons = []
        while True:
            frame = frames.decode(await asyncio.wait_for(received.get(), 10))
            if isinstance(frame, Close):
                reasons.append(frame.reason)
                break
        assert reasons == ["bad_binding"]
        await asyncio.wait_for(closed.wait(), 15)  # and the node hangs up
    finally:
        await transport.close()
    node.wait_for_line(lambda line: "bad_binding" in line, 10)


def test_sigterm_drains_and_says_goodbye(tmp_path: Path, daemons: list[Daemon]) -> None:
    a = start(daemons, tmp_path, "a")
    b = start(daemons, tmp_path, "b", bootstrap=[a.peer_url])
    wait_until(lambda: len(a.status()["peers"]) == 1, 30, "a and b connected")
    b.api("POST", "/api/v1/messages", {"text": "last words"})
    assert b.stop() == 0
    assert not (b.data_dir / "run.json").exists()
    # a hears a CLOSE with the reason at once, not a heartbeat timeout later.
    line = a.wait_for_line(lambda line: "peer down" in line, 10)
    assert "peer shutdown" in line
    restarted = Daemon(b.data_dir, name="b")
    daemons.append(restarted)
    assert restarted.start().status()["ops"] == 1  # what it wrote was flushed
