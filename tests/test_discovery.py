"""The DNS-SD record and its judgment (liberation_node/discovery/dnssd.py,
protocols/discovery.md): the TXT codec, what a service found on the LAN becomes,
and which interfaces mDNS uses. The real thing, between hosts, is tests/lan/."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liberation_node.core.identity import id_to_text
from liberation_node.discovery.config import MdnsConfig
from liberation_node.discovery.dnssd import (
    MAX_TXT_BYTES,
    MAX_URLS,
    SERVICE_TYPE,
    Found,
    Ignored,
    Reason,
    Service,
    TxtError,
    advertised_txt,
    encode_txt,
    host_name,
    judge,
    parse_txt,
    service_name,
    usable_addresses,
)
from liberation_node.discovery.interfaces import choose

ME = bytes([1]) * 32
PEER = bytes([2]) * 32
LAN = [ipaddress.ip_network("198.18.1.0/24"), ipaddress.ip_network("fd77:0:0:1::/64")]


def service(txt: bytes, port: int = 7411, addresses: tuple[str, ...] = ("198.18.1.12",),
            ) -> Service:
    return Service(service_name(PEER), txt, port, addresses)


def judged(txt: bytes, **kw: Any) -> Found | Ignored:
    return judge(service(txt, **kw), network="lab", protocol=1, me=ME, links=LAN)


# -- the TXT record ---------------------------------------------------------------------------


def test_our_txt_record_byte_for_byte() -> None:
    text = id_to_text(PEER)
    assert advertised_txt(PEER, "lab", 1) == (
        b"\x0aprotocol=1" + b"\x0bnetwork=lab" + bytes([3 + len(text)]) + b"id=" + text.encode())
    assert SERVICE_TYPE == "_liberation-node._tcp.local."
    assert service_name(PEER) == f"{text}.{SERVICE_TYPE}"
    assert host_name(PEER) == f"{text}.local."
    assert len(text) <= 63  # one DNS label


def test_parse_follows_rfc6763() -> None:
    data = encode_txt([("Protocol", "1"), ("protocol", "2"), ("flag", ""), ("x", "a=b")])
    data += b"\x00" + b"\x02=v" + b"\x04flag"  # empty string, empty key, second flag
    assert parse_txt(data) == {"protocol": b"1", "flag": b"", "x": b"a=b"}
    assert parse_txt(b"\x05alone") == {"alone": None}  # a key without '=': no value
    assert parse_txt(b"") == {}
    assert parse_txt(b"\x03\xff=1") == {}  # a key outside printable ASCII is skipped
    with pytest.raises(TxtError):
        parse_txt(b"\x0aprotocol=")  # one byte short


def test_encode_refuses_what_it_could_not_write() -> None:
    for bad in ("", "a=b", "é"):
        with pytest.raises(ValueError):
            encode_txt([(bad, "1")])
    with pytest.raises(ValueError):
        encode_txt([("k", "v" * 254)])


keys = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="="),
               min_size=1, max_size=9)
values = st.text(max_size=60).filter(lambda v: len(v.encode()) <= 240)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=8))
def test_txt_round_trip(pairs: dict[str, str]) -> None:
    unique = {}
    for k, v in pairs.items():
        unique.setdefault(k.lower(), (k, v))
    data = encode_txt(unique.values())
    assert parse_txt(data) == {k: v.encode() for k, (_, v) in unique.items()}


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_parse_takes_any_bytes_without_crashing(data: bytes) -> None:
    try:
        pairs = parse_txt(data)
    except TxtError:
        return
    assert all(k == k.lower() and "=" not in k and k for k in pairs)


# -- judging a service ------------------------------------------------------------------------


def test_a_peer_of_our_network_is_found_with_its_urls() -> None:
    verdict = judged(advertised_txt(PEER, "lab", 1),
                     addresses=("fd77:0:0:1::12", "198.18.1.12", "198.18.1.12"))
    assert verdict == Found(PEER, ("http://198.18.1.12:7411/v1/signal",
                                   "http://[fd77:0:0:1::12]:7411/v1/signal"))


@pytest.mark.parametrize(("txt", "reason"), [
    (b"\x01" * 10, Reason.MALFORMED),  # framing
    (encode_txt([("network", "lab"), ("id", id_to_text(PEER))]), Reason.MALFORMED),
    (encode_txt([("protocol", "01"), ("network", "lab")]), Reason.MALFORMED),
    (encode_txt([("protocol", "+1")]), Reason.MALFORMED),
    (encode_txt([("protocol", "123456")]), Reason.MALFORMED),
    (encode_txt([("protocol", "2"), ("network", "other")]), Reason.OTHER_PROTOCOL),
    (encode_txt([("protocol", "1"), ("network", "other")]), Reason.OTHER_NETWORK),
    (encode_txt([("protocol", "1"), ("network", "Lab")]), Reason.OTHER_NETWORK),
    (encode_txt([("protocol", "1"), ("network", "lab")]), Reason.MALFORMED),  # no id
    (encode_txt([("protocol", "1"), ("network", "lab"), ("id", "lnxyz")]), Reason.MALFORMED),
    (encode_txt([("protocol", "1"), ("network", "lab"),
                 ("id", id_to_text(PEER).upper())]), Reason.MALFORMED),  # not canonical
    (advertised_txt(ME, "lab", 1), Reason.SELF),
    (b"\x00" * (MAX_TXT_BYTES + 1), Reason.OVERSIZE),
])
def test_what_is_ignored_and_why(txt: bytes, reason: Reason) -> None:
    verdict = judged(txt)
    assert isinstance(verdict, Ignored) and verdict.reason is reason, verdict


def test_protocol_is_checked_before_anything_else_in_the_record() -> None:
    # A later version may change every other key: its record is "another protocol".
    verdict = judged(encode_txt([("protocol", "7")]))
    assert isinstance(verdict, Ignored) and verdict.reason is Reason.OTHER_PROTOCOL


@pytest.mark.parametrize(("port", "addresses"), [
    (0, ("198.18.1.12",)),
    (7411, ()),
    (7411, ("127.0.0.1", "::1", "0.0.0.0", "224.0.0.251", "255.255.255.255")),
    (7411, ("fe80::1%2", "fe80::1")),  # link-local IPv6 needs a zone a URL cannot carry
    (7411, ("192.0.2.1", "2001:db8::1")),  # not on any of our links
    (7411, ("::ffff:198.18.1.12", "not an address")),
])
def test_no_usable_address(port: int, addresses: tuple[str, ...]) -> None:
    verdict = judged(advertised_txt(PEER, "lab", 1), port=port, addresses=addresses)
    assert isinstance(verdict, Ignored) and verdict.reason is Reason.NO_ADDRESS


def test_addresses_are_bounded_and_ipv4_first() -> None:
    many = [f"fd77:0:0:1::{i}" for i in range(1, 6)] + [f"198.18.1.{i}" for i in range(1, 11)]
    kept = usable_addresses(many, LAN)
    assert len(kept) == 15 and kept[0] == "198.18.1.1"
    verdict = judged(advertised_txt(PEER, "lab", 1), addresses=tuple(many))
    assert isinstance(verdict, Found) and len(verdict.urls) == MAX_URLS
    assert usable_addresses(["169.254.3.4"], [ipaddress.ip_network("169.254.0.0/16")]) == [
        "169.254.3.4"]  # IPv4 link-local is what a LAN without DHCP has


ids = st.binary(min_size=32, max_size=32)
networks = st.text("abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=64)


@settings(max_examples=200, deadline=None)
@given(ids, networks, st.integers(0, 99_999))
def test_every_advertisement_is_found_by_a_node_of_its_network_and_version(
        node_id: bytes, network: str, protocol: int) -> None:
    txt = advertised_txt(node_id, network, protocol)
    found = judge(service(txt), network=network, protocol=protocol, me=ME, links=LAN)
    if node_id == ME:
        assert isinstance(found, Ignored)
    else:
        assert found == Found(node_id, ("http://198.18.1.12:7411/v1/signal",))
    other = judge(service(txt), network=network + "x", protocol=protocol, me=ME, links=LAN)
    assert isinstance(other, Ignored)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=MAX_TXT_BYTES + 20), st.integers(-5, 70_000),
       st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=40)), max_size=12))
def test_judge_takes_anything_without_crashing(txt: bytes, port: int,
                                               addresses: list[str]) -> None:
    verdict = judge(Service("x", txt, port, tuple(addresses)), network="lab", protocol=1,
                    me=ME, links=LAN)
    if isinstance(verdict, Found):
        assert 1 <= len(verdict.urls) <= MAX_URLS and verdict.node_id != ME


# -- interfaces -------------------------------------------------------------------------------


@dataclass
class FakeIP:
    ip: str | tuple[str, int, int]
    network_prefix: int


@dataclass
class FakeAdapter:
    name: str
    index: int | None
    ips: list[FakeIP]


ADAPTERS = [
    FakeAdapter("lo", 1, [FakeIP("127.0.0.1", 8), FakeIP(("::1", 0, 0), 128)]),
    FakeAdapter("eth0", 2, [FakeIP("198.18.1.10", 24), FakeIP(("fe80::1", 0, 2), 64)]),
    FakeAdapter("wlan0", 3, [FakeIP(("fd77::5", 0, 0), 64)]),
    FakeAdapter("down0", None, [FakeIP("10.9.9.9", 8)]),
]


def test_every_interface_with_a_usable_address_by_default() -> None:
    chosen = choose(ADAPTERS, MdnsConfig())
    assert [(i.name, i.index) for i in chosen] == [("eth0", 2), ("wlan0", 3)]
    assert chosen[0].addresses == ("198.18.1.10", "fe80::1")
    assert ipaddress.ip_network("198.18.1.0/24") in chosen[0].networks


def test_interfaces_and_families_are_configuration() -> None:
    assert [i.name for i in choose(ADAPTERS, MdnsConfig(ipv6=False))] == ["eth0"]
    v6 = choose(ADAPTERS, MdnsConfig(ipv4=False))
    assert [i.name for i in v6] == ["eth0", "wlan0"] and v6[0].ipv4 == ()
    assert [i.name for i in choose(ADAPTERS, MdnsConfig(interfaces=("wlan0",)))] == ["wlan0"]
    assert choose(ADAPTERS, MdnsConfig(interfaces=("lo",))) == []  # loopback is never usable
    with pytest.raises(ValueError):
        MdnsConfig(ipv4=False, ipv6=False)
    with pytest.raises(ValueError):
        MdnsConfig(interfaces=("eth 0",))


def test_the_decisions_are_sans_io() -> None:
    """dnssd.py decides like the core does: no sockets, clock, randomness or zeroconf
    (the same rule as tests/test_purity.py, for this module outside the core)."""
    import ast
    from pathlib import Path

    import liberation_node.discovery.dnssd as dnssd
    from tests.test_purity import BANNED

    tree = ast.parse(Path(dnssd.__file__).read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module]
    assert [m for m in imported if m.split(".")[0] in BANNED] == []


def test_the_example_of_the_spec() -> None:
    """protocols/discovery.md §1.3, byte for byte."""
    from liberation_node.core.identity import Identity

    node = Identity.from_seed(bytes([1]) * 32)
    assert node.text == "lnrkeohxlubhyzl7ks3mwtzos5olfgocn7dwkbeg7toseadnapn5ogcwi"
    assert advertised_txt(node.public_key, "testnet", 1).hex() == (
        "0a70726f746f636f6c3d310f6e6574776f726b3d746573746e65743c69643d6c"
        "6e726b656f68786c756268797a6c376b73336d77747a6f73356f6c66676f636e"
        "3764776b62656737746f736561646e61706e356f67637769")
    verdict = judge(Service(service_name(node.public_key),
                            advertised_txt(node.public_key, "testnet", 1), 7411,
                            ("198.18.1.10",)),
                    network="testnet", protocol=1, me=ME, links=LAN)
    assert verdict == Found(node.public_key, ("http://198.18.1.10:7411/v1/signal",))
