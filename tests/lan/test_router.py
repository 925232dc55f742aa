"""Two LANs joined only by a router (unicast forwarding, no multicast across): a node
on LAN B that knows one bootstrap address on LAN A joins both LANs' nodes; the others
on LAN B, which know nothing of LAN A, reach it through peer exchange (node.info
records carry each node's signaling URL)."""

from __future__ import annotations

from scripts.meshlab import Lab, connected, converged, wait_until


def test_a_node_bootstrapped_across_a_router_joins_both_lans(lab: Lab) -> None:
    lan_a, lan_b = lab.add_lan(), lab.add_lan()
    lab.add_router([lan_a, lan_b])
    a_hosts = [lab.add_host(lan_a, f"a{i}") for i in (1, 2, 3)]
    b1, b2 = lab.add_host(lan_b, "b1"), lab.add_host(lan_b, "b2")
    a_nodes = lab.start_all(a_hosts)
    joiner = lab.start(b1, bootstrap=[a_nodes[0].url])
    neighbour = lab.start(b2)
    everyone = [*a_nodes, joiner, neighbour]
    ids = {d.host.name: d.status()["node_id"] for d in everyone}
    a_ids = {ids[h.name] for h in a_hosts}

    for d in everyone:
        d.post(f"from {d.host.name}")
    wait_until(lambda: connected(everyone), 45, "one mesh across the router")
    wait_until(lambda: converged(everyone, ops=len(everyone)), 45, "every op everywhere")

    def joined_both() -> bool:
        peers = joiner.peer_ids()
        return ids["b2"] in peers and len(peers & a_ids) >= 2
    wait_until(joined_both, 45, "b1 to hold peers on both LANs, not only its bootstrap")
    # b2 was told of no LAN A address: it reached LAN A by peer exchange.
    wait_until(lambda: bool(neighbour.peer_ids() & a_ids), 45, "b2 to connect across")
    assert neighbour.status()["candidates"].get("bootstrap", 0) == 0
    # mDNS stayed on each LAN: no node found one of the other LAN by it.
    for d in everyone:
        found = set(d.status()["mdns"]["peers"])
        same_lan = {ids[h.name][:10] for h in lab.hosts if h.daemon and h.lan is d.host.lan}
        assert found <= same_lan, (d.host.name, found)
