"""LAN discovery against protocols/vectors/discovery.json (protocols/discovery.md).

Expected values come only from the JSON: the TXT record a node publishes, how TXT
data reads, and what a receiver makes of each resolved service.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from liberation_node.core.identity import Identity, id_from_text
from liberation_node.discovery import dnssd

from .test_vectors import named

VECTORS = Path(__file__).resolve().parents[1] / "protocols" / "vectors"
DATA: dict[str, Any] = json.loads((VECTORS / "discovery.json").read_text(encoding="utf-8"))


def test_constants_and_our_record() -> None:
    constants, ours = DATA["constants"], DATA["advertised"]
    assert constants["service_type"] == dnssd.SERVICE_TYPE == "_liberation-node._tcp.local."
    assert constants["max_txt_bytes"] == dnssd.MAX_TXT_BYTES
    assert constants["max_urls"] == dnssd.MAX_URLS
    node = Identity.from_seed(bytes([2]) * 32)
    assert ours["id"] == node.text
    assert dnssd.advertised_txt(node.public_key, ours["network"], ours["protocol"]).hex() == (
        ours["txt_hex"])
    assert dnssd.service_name(node.public_key) == ours["instance"]
    assert dnssd.host_name(node.public_key) == ours["host"]


@named(DATA["txt"])
def test_txt(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    if not case["valid"]:
        with pytest.raises(dnssd.TxtError):
            dnssd.parse_txt(data)
        return
    pairs = dnssd.parse_txt(data)
    assert {k: None if v is None else v.decode("latin-1") for k, v in pairs.items()} == (
        case["pairs"])


@named(DATA["cases"])
def test_services(case: dict[str, Any]) -> None:
    receiver = DATA["receiver"]
    service = dnssd.Service(f"x.{dnssd.SERVICE_TYPE}", bytes.fromhex(case["txt_hex"]),
                            case["port"], tuple(case["addresses"]))
    verdict = dnssd.judge(service, network=receiver["network"], protocol=receiver["protocol"],
                          me=id_from_text(receiver["id"]),
                          links=[ipaddress.ip_network(n) for n in receiver["links"]])
    if case["verdict"] == "found":
        assert verdict == dnssd.Found(id_from_text(case["id"]), tuple(case["urls"]))
    else:
        assert isinstance(verdict, dnssd.Ignored)
        assert verdict.reason.value == case["verdict"]
