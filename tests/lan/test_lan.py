"""One LAN, no bootstrap list anywhere: the nodes find each other by mDNS alone
(protocols/discovery.md), a node of another network on the same LAN is seen and
never connected, and standard tools see the service with its TXT keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from liberation_node.discovery.dnssd import SERVICE_TYPE
from scripts.meshlab import Daemon, Lab, connected, converged, wait_until
from tests.netns import skip_or_fail

from .avahi import Avahi, missing_tools
from .conftest import new_lab

FIVE = 5


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with new_lab(tmp_path_factory.mktemp("lan")) as lab:
        hosts = [lab.add_host() for _ in range(FIVE)]
        stranger = lab.add_host(name="stranger")
        lab.add_host(name="observer")  # runs no node: avahi looks from there
        lab.start_all(hosts)
        lab.start(stranger, network="elsewhere")
        yield lab


def nodes(lab: Lab) -> list[Daemon]:
    return [d for d in lab.daemons if d.network != "elsewhere"]


def stranger(lab: Lab) -> Daemon:
    return next(d for d in lab.daemons if d.network == "elsewhere")


def short(node_id: str) -> str:
    return node_id[:10]


def test_five_hosts_find_each_other_by_mdns_alone_and_converge(lan: Lab) -> None:
    five = nodes(lan)
    ids = {d.host.name: d.status()["node_id"] for d in five}
    wait_until(lambda: connected(five), 30, "a connected mesh")
    for d in five:  # every node heard every other by mDNS: nothing else told them
        others = {short(i) for n, i in ids.items() if n != d.host.name}
        wait_until(lambda d=d, others=others: others <= set(d.status()["mdns"]["peers"]), 15,
                   f"{d.host.name} to find the four others by mDNS")
        assert d.status()["candidates"].get("bootstrap", 0) == 0
    posted = [d.post(f"hello from {d.host.name}") for d in five]
    assert len(set(posted)) == FIVE
    wait_until(lambda: converged(five, ops=FIVE), 30, "the five digests to agree")


def test_a_node_of_another_network_on_the_lan_is_never_connected(lan: Lab) -> None:
    five, other = nodes(lan), stranger(lan)
    other_id = other.status()["node_id"]
    # Each side saw the other's service (so this test could fail) and ignored it.
    for d in five:
        d.wait_for_log(lambda line: "other_network" in line and other_id in line, 20,
                       "the stranger's service to be ignored")
        node_id = d.status()["node_id"]
        other.wait_for_log(lambda line, n=node_id: "other_network" in line and n in line, 20,
                           f"{d.host.name}'s service to be ignored by the stranger")
    wait_until(lambda: connected(five), 30, "a connected mesh")
    for d in five:
        assert other_id not in d.peer_ids()
        assert not any(short(other_id) in line for line in d.log() if "dialing" in line)
    assert other.status()["peers"] == []
    assert other.status()["mdns"]["peers"] == []
    assert not any("dialing" in line for line in other.log())


def test_the_service_is_visible_to_avahi_browse_with_its_txt_keys(lan: Lab) -> None:
    missing = missing_tools()
    if missing:
        skip_or_fail(f"avahi observer: {', '.join(missing)} not installed")
    observer = next(h for h in lan.hosts if h.name == "observer")
    avahi = Avahi(observer, lan.workdir / "avahi")
    service = SERVICE_TYPE.removesuffix(".local.")
    wanted = {d.status()["node_id"]: d for d in nodes(lan)}

    def listed() -> dict[str, list[str]]:
        entries = {e[3]: e for e in avahi.browse(service)}
        return entries if set(wanted) <= set(entries) else {}

    entries = wait_until(listed, 30, f"avahi-browse to list every {service} of network lab")
    for node_id, d in wanted.items():
        # =;iface;proto;instance;type;domain;host;address;port;txt
        entry = entries[node_id]
        assert entry[4] == service and entry[5] == "local"
        assert entry[7] in (d.host.address, Lab.v6(d.host.address)) or entry[7].startswith("fe80")
        assert entry[8] == "7411"
        txt = set(entry[9].split(" "))
        assert {f'"id={node_id}"', '"network=lab"', '"protocol=1"'} <= txt, entry[9]
    other = stranger(lan).status()["node_id"]
    assert other in {e[3] for e in avahi.browse(service)}  # there, for those who look


def test_a_copied_identity_is_not_advertised_twice(lab: Lab) -> None:
    """Probing (RFC 6762 §8.1) finds the instance name, the node id, taken on the LAN:
    the second node browses but does not advertise (protocols/discovery.md §2)."""
    import shutil

    first = lab.start(lab.add_host())
    first.wait_for_log(lambda line: "mDNS: advertising" in line, 20, "the first to advertise")
    copy = lab.add_host()
    shutil.copytree(first.data_dir, lab.workdir / copy.name,
                    ignore=shutil.ignore_patterns("run.json", "*.lock", "lock"))
    second = lab.start(copy)
    second.wait_for_log(lambda line: "advertises this node's id" in line, 20,
                        "the copy to find its name taken")
    assert second.status()["mdns"]["advertised"] == []
    assert first.status()["mdns"]["advertised"] == [first.host.address]
