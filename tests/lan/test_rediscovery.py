"""A node forgotten for failing is found again when it answers again (protocols/
discovery.md §6.1): here nothing but mDNS can bring it back (no bootstrap list, and no
URL in any node.info record), so after a partition long enough for everyone to give
up on the cut host, the heal must be noticed by mDNS itself."""

from __future__ import annotations

from scripts.meshlab import Lab, connected, wait_until


def test_a_host_forgotten_during_a_partition_is_found_again_after_the_heal(lab: Lab) -> None:
    hosts = [lab.add_host() for _ in range(3)]
    nodes = lab.start_all(hosts, extra=["--no-advertise"])
    cut = nodes[-1]
    cut_short = cut.status()["node_id"][:10]
    wait_until(lambda: connected(nodes), 30, "a connected mesh")
    shorts = {d.status()["node_id"][:10] for d in nodes}
    for d in nodes:  # each knows the others' addresses from mDNS, and from nothing else
        wait_until(lambda d=d: len(set(d.status()["mdns"]["peers"])) == 2, 20,
                   f"{d.host.name} to find the others by mDNS")
        assert set(d.status()["mdns"]["peers"]) < shorts

    lab.partition([cut.host], reject=True)  # refused at once: failures come quickly
    for d in nodes[:-1]:
        d.wait_for_log(lambda line: f"forgot {cut_short}" in line, 60,
                       "the others to give up on the cut host")
    for d in nodes[:-1]:
        short = d.status()["node_id"][:10]
        cut.wait_for_log(lambda line, s=short: f"forgot {s}" in line, 60,
                         "the cut host to give up on the others")
    assert not cut.peer_ids()

    lab.heal()
    wait_until(lambda: connected(nodes), 45, "the cut host to be found again")
    assert any("answers again" in line for d in nodes for line in d.log())
