"""A host cut off from its LAN (frames dropped on the bridge) keeps working alone;
after the heal it reconnects by itself and both sides end with every op."""

from __future__ import annotations

from scripts.meshlab import Lab, connected, converged, wait_until


def test_a_partitioned_host_rejoins_after_the_heal_and_nothing_is_lost(lab: Lab) -> None:
    hosts = [lab.add_host() for _ in range(4)]
    nodes = lab.start_all(hosts)
    cut, rest = nodes[-1], nodes[:-1]
    cut_id = cut.status()["node_id"]
    wait_until(lambda: connected(nodes), 30, "a connected mesh")
    before = [d.post(f"before, from {d.host.name}") for d in nodes]
    wait_until(lambda: converged(nodes, ops=len(before)), 30, "first convergence")

    lab.partition([cut.host])
    wait_until(lambda: not cut.peer_ids(), 20, "the cut host to lose its peers")
    wait_until(lambda: all(cut_id not in d.peer_ids() for d in rest), 20,
               "the others to drop the cut host")
    during = [cut.post(f"alone {i}") for i in range(3)]
    during += [rest[0].post(f"without the cut host {i}") for i in range(3)]
    wait_until(lambda: converged(rest, ops=len(before) + 3), 30, "the rest to agree")
    assert cut.status()["ops"] == len(before) + 3

    lab.heal()
    total = len(before) + len(during)
    wait_until(lambda: bool(cut.peer_ids()), 60, "the cut host to reconnect")
    wait_until(lambda: converged(nodes, ops=total), 30, "every op on every node")
