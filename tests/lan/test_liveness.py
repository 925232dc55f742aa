"""Liveness comes from the node, never from the mDNS cache (protocols/discovery.md §6):
a SIGKILLed node sends no goodbye, so its service stays cached on the LAN for an hour
or more, and the node that found it must stop dialing it after a bounded number of
attempts."""

from __future__ import annotations

from liberation_node.core.peering import PeeringConfig
from scripts.meshlab import Lab, wait_until


def test_a_killed_node_is_dialed_a_bounded_number_of_times_then_forgotten(lab: Lab) -> None:
    # The victim publishes no URL in its node.info record (--no-advertise), so the only
    # address the survivor has for it is the one mDNS gave: what this test is about.
    # (Peer exchange has its own rules for records of dead nodes.)
    victim = lab.start(lab.add_host(), extra=["--no-advertise"])
    survivor = lab.start(lab.add_host())
    victim_id = victim.status()["node_id"]
    short = victim_id[:10]
    wait_until(lambda: victim_id in survivor.peer_ids(), 30, "the two to connect")
    wait_until(lambda: short in survivor.status()["mdns"]["peers"], 20,
               "the survivor to find the victim by mDNS")

    victim.kill()  # SIGKILL: no goodbye; its records stay in the survivor's cache
    survivor.wait_for_log(lambda line: "peer down" in line and short in line, 20,
                          "the survivor to notice the death")
    survivor.wait_for_log(lambda line: f"forgot {short}" in line, 60,
                          "the survivor to forget the dead node's mDNS candidate")
    log = survivor.log()
    down = next(i for i, line in enumerate(log) if "peer down" in line and short in line)
    dials = [line for line in log[down:] if "dialing" in line and short in line]
    assert len(dials) == PeeringConfig().mdns_max_failures, "\n".join(dials)
    status = survivor.status()
    assert short in status["mdns"]["peers"], "the record is still cached..."
    assert status["candidates"].get("mdns", 0) == 0, "...but no longer a candidate"
    assert status["peers"] == []
    # With no peer to relay through and no URL from any other source, nothing is left to
    # dial: the connection manager has no candidate with an address.
    assert set(status["candidates"]) <= {"record"}
