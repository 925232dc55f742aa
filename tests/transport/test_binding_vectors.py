"""The binding value and the offer/answer checks against protocols/vectors/binding.json
(protocols/transport.md §3.4, §4).

Expected values come only from the JSON. The binding value is recomputed here from
the rule of transport.md §4.2 and asked of `signal.binding`; each offer or answer
is given to `signal.parse` (which only parses: no aiortc I/O).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from liberation_node.transport import signal
from liberation_node.transport.errors import SignalError

from ..test_vectors import named

VECTORS = Path(__file__).resolve().parents[2] / "protocols" / "vectors"
DATA: dict[str, Any] = json.loads((VECTORS / "binding.json").read_text(encoding="utf-8"))

Json = dict[str, Any]


def rule(local: str, remote: str) -> bytes:
    """§4.2: both fingerprint lines as ASCII, sorted as bytes, joined by one LF."""
    return b"\n".join(sorted([local.encode("ascii"), remote.encode("ascii")]))


def test_constants() -> None:
    constants = DATA["constants"]
    assert constants["algorithm"] == signal.BINDING_ALGORITHM == "sha-256"
    assert constants["max_sdp_bytes"] == signal.MAX_SDP_BYTES
    assert constants["max_candidates"] == signal.MAX_CANDIDATES
    assert constants["max_used_candidates"] == signal.MAX_USED_CANDIDATES


def check_binding(case: Json) -> bytes:
    value = bytes.fromhex(case["binding_hex"])
    assert len(value) == case["size"] and value.decode("ascii") == case["binding_text"]
    assert rule(case["local"], case["remote"]) == value
    assert signal.binding(case["local"], case["remote"]) == value
    assert signal.binding(case["remote"], case["local"]) == value  # the other end's view
    return value


@named(DATA["cases"])
def test_binding_value(case: Json) -> None:
    value = check_binding(case)
    # "sha-256 " + 32 hex pairs: 103 bytes a line, one LF between, none at the end.
    assert len(value) == 2 * 103 + 1 and not value.endswith(b"\n")


def test_a_relay_in_the_middle_gets_two_binding_values() -> None:
    relay = DATA["relay"]
    assert check_binding(relay["a"]) != check_binding(relay["b"])


def test_binding_from_the_checked_offer_and_answer() -> None:
    """The first case's fingerprints are those the check extracts from the SDP cases."""
    sdp = {c["name"]: c for c in DATA["sdp"]}
    first = DATA["cases"][0]
    assert (first["local"], first["remote"]) == (sdp["offer_minimal"]["fingerprint"],
                                                 sdp["answer_minimal"]["fingerprint"])


@named(DATA["sdp"])
def test_offer_and_answer_checks(case: Json) -> None:
    if case["valid"]:
        checked = signal.parse(case["message"], case["expected_type"])
        assert checked.type == case["expected_type"] == case["message"]["type"]
        assert checked.fingerprint == case["fingerprint"]
        assert [list(c) for c in checked.candidates] == case["candidates"]
        assert checked.sdp == case["sdp_used"]  # what the WebRTC stack is given
        assert checked.as_dict() == {"type": case["expected_type"], "sdp": case["sdp_used"]}
        # Only candidate lines and a=end-of-candidates may differ from what was sent.
        sent = [x for x in case["message"]["sdp"].splitlines()
                if not x.startswith(("a=candidate:", "a=end-of-candidates"))]
        used = [x for x in case["sdp_used"].splitlines()
                if not x.startswith(("a=candidate:", "a=end-of-candidates"))]
        assert sent == used
        assert case["sdp_used"].count("a=end-of-candidates") == 1
        assert case["sdp_used"].count("a=candidate:") == len(case["candidates"])
        assert len(case["candidates"]) <= DATA["constants"]["max_used_candidates"]
    else:
        with pytest.raises(SignalError) as refused:
            signal.parse(case["message"], case["expected_type"])
        assert case["error"] in str(refused.value)


def test_an_sdp_that_needs_no_change_is_handed_on_as_sent() -> None:
    minimal = {c["name"]: c for c in DATA["sdp"]}["offer_minimal"]
    assert minimal["sdp_used"] == minimal["message"]["sdp"]


def test_ignored_scopes() -> None:
    """What a node that does not use loopback keeps of an offer (transport.md §6.3)."""
    case = {c["name"]: c for c in DATA["sdp"]}["offer_loopback_and_link_local"]
    kept = signal.parse(case["message"], "offer", frozenset({"loopback"}))
    assert [list(c) for c in kept.candidates] == case["candidates"][1:]
    assert "127.0.0.1" not in kept.sdp and any("loopback" in why for why in kept.ignored)
    only = {c["name"]: c for c in DATA["sdp"]}["offer_minimal"]["message"]
    loopback_only = {**only, "sdp": only["sdp"].replace("192.0.2.10", "127.0.0.1")}
    with pytest.raises(SignalError, match="no usable candidate"):
        signal.parse(loopback_only, "offer", frozenset({"loopback"}))


def test_size_limit_counts_utf8_bytes() -> None:
    sizes = {c["name"]: len(c["message"]["sdp"].encode("utf-8")) for c in DATA["sdp"]
             if c["name"].startswith("offer_1638")}
    assert sizes == {"offer_16384_bytes": DATA["constants"]["max_sdp_bytes"],
                     "offer_16385_bytes": DATA["constants"]["max_sdp_bytes"] + 1}
