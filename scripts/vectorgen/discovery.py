"""Vectors for LAN discovery (protocols/discovery.md): the TXT record a node publishes,
how TXT data reads, and which services found on the LAN are peers.

Built with `liberation_node.discovery.dnssd`; every judged service is seen by the same
receiver, the identity of seed 01 on network `testnet`, protocol 1, whose links are
198.18.1.0/24 and fd77:0:0:1::/64.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from liberation_node.core.identity import id_to_text
from liberation_node.discovery import dnssd
from liberation_node.discovery.dnssd import Found, Service, encode_txt, judge, parse_txt

from .common import NETWORK, who

RECEIVER = who(1)
PEER = who(2)
LINKS = ["198.18.1.0/24", "fd77:0:0:1::/64"]
ADDRESS = "198.18.1.12"


def _txt(pairs: list[tuple[str, str]]) -> bytes:
    return encode_txt(pairs)


def _ours(node: Any = PEER, network: str = NETWORK, protocol: int = 1) -> bytes:
    return dnssd.advertised_txt(node.public_key, network, protocol)


def _txt_case(name: str, description: str, data: bytes) -> dict[str, Any]:
    try:
        pairs = parse_txt(data)
    except dnssd.TxtError:
        return {"name": name, "description": description, "hex": data.hex(), "valid": False}
    return {"name": name, "description": description, "hex": data.hex(), "valid": True,
            "pairs": {k: (None if v is None else v.decode("latin-1")) for k, v in
                      pairs.items()}}


def _txt_cases() -> list[dict[str, Any]]:
    return [
        _txt_case("ours", "the record of discovery.md §1.3", _ours(RECEIVER)),
        _txt_case("case_and_repeats", "keys compare without case; the first occurrence "
                  "counts", _txt([("Protocol", "1"), ("protocol", "2")])),
        _txt_case("no_value", "a string without '=': a key with no value",
                  b"\x05alone"),
        _txt_case("empty_value", "'key=': an empty value", b"\x04key="),
        _txt_case("equals_in_value", "the value is everything after the first '='",
                  _txt([("x", "a=b")])),
        _txt_case("skipped", "an empty string, an empty key and a key with a byte outside "
                  "printable ASCII are skipped", b"\x00\x02=v\x03\xff=1\x03k=v"),
        _txt_case("empty", "no strings at all", b""),
        _txt_case("truncated", "a length byte running past the end", b"\x0aprotocol="),
    ]


def _service_case(name: str, description: str, txt: bytes, port: int = 7411,
                  addresses: tuple[str, ...] = (ADDRESS,)) -> dict[str, Any]:
    links = [ipaddress.ip_network(n) for n in LINKS]
    verdict = judge(Service(f"x.{dnssd.SERVICE_TYPE}", txt, port, addresses),
                    network=NETWORK, protocol=1, me=RECEIVER.public_key, links=links)
    case: dict[str, Any] = {"name": name, "description": description, "txt_hex": txt.hex(),
                            "port": port, "addresses": list(addresses)}
    if isinstance(verdict, Found):
        case |= {"verdict": "found", "id": id_to_text(verdict.node_id),
                 "urls": list(verdict.urls)}
    else:
        case |= {"verdict": verdict.reason.value}
    return case


def _service_cases() -> list[dict[str, Any]]:
    peer = PEER.text
    return [
        _service_case("peer", "a node of our network and version", _ours()),
        _service_case("both_families", "IPv4 first, repeats dropped, IPv6 in brackets",
                      _ours(), addresses=("fd77:0:0:1::12", ADDRESS, ADDRESS)),
        _service_case("too_many_addresses", "at most 8 URLs",
                      _ours(), addresses=tuple(f"198.18.1.{i}" for i in range(20, 30))),
        _service_case("oversize", "TXT data over 1,300 bytes", b"\x00" * 1301),
        _service_case("truncated", "TXT data that does not read", b"\x0aprotocol="),
        _service_case("no_protocol", "no protocol key",
                      _txt([("network", NETWORK), ("id", peer)])),
        _service_case("protocol_leading_zero", "protocol '01' is not in its form",
                      _txt([("protocol", "01"), ("network", NETWORK), ("id", peer)])),
        _service_case("protocol_too_long", "protocol of 6 digits",
                      _txt([("protocol", "100000"), ("network", NETWORK), ("id", peer)])),
        _service_case("other_protocol", "protocol 2: checked before anything else",
                      _txt([("protocol", "2")])),
        _service_case("no_network", "no network key", _txt([("protocol", "1")])),
        _service_case("other_network", "another network", _ours(network="othernet")),
        _service_case("network_case", "network names compare byte for byte",
                      _txt([("protocol", "1"), ("network", NETWORK.upper()), ("id", peer)])),
        _service_case("no_id", "no id key", _txt([("protocol", "1"), ("network", NETWORK)])),
        _service_case("id_not_canonical", "an id in upper case is not canonical",
                      _txt([("protocol", "1"), ("network", NETWORK), ("id", peer.upper())])),
        _service_case("self", "our own service", _ours(RECEIVER)),
        _service_case("port_zero", "SRV port 0", _ours(), port=0),
        _service_case("loopback_and_such", "loopback, unspecified, multicast, broadcast "
                      "and IPv4-mapped addresses are never usable", _ours(),
                      addresses=("127.0.0.1", "::1", "0.0.0.0", "224.0.0.251",
                                 "255.255.255.255", "::ffff:198.18.1.12")),
        _service_case("link_local_v6", "IPv6 link-local needs a zone a URL cannot carry",
                      _ours(), addresses=("fe80::1", "fe80::1%2")),
        _service_case("off_link", "addresses outside the receiver's links", _ours(),
                      addresses=("192.0.2.1", "2001:db8::1")),
    ]


def build() -> dict[str, Any]:
    return {
        "description": "LAN discovery by mDNS/DNS-SD. 'advertised': the instance, host name "
                       "and TXT data (hex) of the node of seed 02 on network 'testnet'. "
                       "'txt': TXT data and how it reads (discovery.md §3.2): 'pairs' with "
                       "lower-case keys and values as text (null: a key without '='), or "
                       "valid false. 'cases': what the receiver (seed 01, 'testnet', "
                       "protocol 1, links 'receiver.links') makes of a resolved service "
                       "(TXT data, SRV port, A/AAAA addresses): 'found' with the node id and "
                       "its signaling URLs, or the reason it is ignored (discovery.md §5).",
        "spec": "protocols/discovery.md §2, §3, §5",
        "constants": {"service_type": dnssd.SERVICE_TYPE,
                      "max_txt_bytes": dnssd.MAX_TXT_BYTES, "max_urls": dnssd.MAX_URLS},
        "advertised": {"id": PEER.text, "network": NETWORK, "protocol": 1,
                       "instance": dnssd.service_name(PEER.public_key),
                       "host": dnssd.host_name(PEER.public_key), "txt_hex": _ours().hex()},
        "receiver": {"id": RECEIVER.text, "network": NETWORK, "protocol": 1, "links": LINKS},
        "txt": _txt_cases(),
        "cases": _service_cases(),
    }
