"""mDNS over IPv6 only (`--no-mdns-ipv4`), on a LAN with IPv6 addresses: the nodes
find each other by AAAA records and dial the IPv6 signaling URL."""

from __future__ import annotations

from scripts.meshlab import Lab, wait_until


def test_two_nodes_find_each_other_over_ipv6_alone(lab: Lab) -> None:
    lab.ipv6 = True
    hosts = [lab.add_host() for _ in range(2)]
    nodes = lab.start_all(hosts, extra_for=lambda h: [
        "--no-mdns-ipv4", "--peer-host", "::", "--ice-address", Lab.v6(h.address)])
    a, b = nodes
    a_id = a.status()["node_id"]
    wait_until(lambda: a_id in b.peer_ids(), 30, "the two to connect")
    for finder, found in ((a, b), (b, a)):  # whoever dialed first, both find the other
        assert finder.status()["mdns"]["advertised"] == [Lab.v6(finder.host.address)]
        url = f"http://[{Lab.v6(found.host.address)}]:7411/v1/signal"
        finder.wait_for_log(lambda line, url=url: "mDNS: found" in line and url in line, 20,
                            f"{finder.host.name} to find the other at {url}")
    assert not any("mDNS: found" in line and "198.18." in line for line in b.log() + a.log())
