"""binding.json: the connection binding value and the offer/answer checks (transport.md §3-§4).

The binding value is computed with `liberation_node.transport.signal.binding`
and recomputed here from the rule of transport.md §4.2, so the file cannot
state bytes the implementation does not produce. The SDP cases are fixed texts
(no aiortc I/O: `signal.parse` only parses); each valid one records the
fingerprint and candidates the check extracts, each refused one the start of
the error message, checked against `signal.parse` here.

Fingerprints are not taken from real certificates: the binding only depends on
the text of the a=fingerprint lines, so `_fp(label)` is the SHA-256 of a label,
written as RFC 8122 writes a fingerprint.
"""

from __future__ import annotations

import hashlib
from typing import Any

from liberation_node.transport import signal
from liberation_node.transport.errors import SignalError


def _hex_pairs(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


def _fp(label: str) -> str:
    """A fingerprint as the Description carries it: "sha-256 " and 32 upper-case hex pairs."""
    return f"{signal.BINDING_ALGORITHM} {_hex_pairs(hashlib.sha256(label.encode()).digest())}"


def _rule(local: str, remote: str) -> bytes:
    """transport.md §4.2, spelled out: both lines, sorted as bytes, joined by one LF."""
    lines = sorted([local.encode("ascii"), remote.encode("ascii")])
    return lines[0] + b"\n" + lines[1]


# -- SDP texts ----------------------------------------------------------------------------

FP_OFFER = _hex_pairs(hashlib.sha256(b"offerer certificate").digest())
FP_ANSWER = _hex_pairs(hashlib.sha256(b"answerer certificate").digest())


def _sdp(lines: list[str], eol: str = "\r\n") -> str:
    return eol.join(lines) + eol


def _offer_lines(fingerprint: str = f"sha-256 {FP_OFFER}",
                 candidates: tuple[str, ...] = ("192.0.2.10",)) -> list[str]:
    """A minimal offer of the shape aiortc writes: one data channel, every candidate."""
    return [
        "v=0",
        "o=- 3912345678 3912345678 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic:WMS *",
        "m=application 50000 UDP/DTLS/SCTP webrtc-datachannel",
        f"c=IN IP4 {candidates[0] if ':' not in candidates[0] else '0.0.0.0'}",
        "a=mid:0",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
        *(f"a=candidate:{i + 1} 1 udp 2130706431 {host} {50000 + i} typ host"
          for i, host in enumerate(candidates)),
        "a=end-of-candidates",
        "a=ice-ufrag:Wx3k",
        "a=ice-pwd:q8Jf0mR2vT6yB1nC4dE7gH",
        f"a=fingerprint:{fingerprint}",
        "a=setup:actpass",
    ]


def _answer_lines() -> list[str]:
    """The answer: lower-case hex and an upper-case algorithm name, which the check
    normalises ("sha-256", upper-case hex), and a relay candidate beside a host one."""
    return [
        "v=0",
        "o=- 3912345679 3912345679 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic:WMS *",
        "m=application 50010 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 198.51.100.20",
        "a=mid:0",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
        "a=candidate:1 1 udp 2130706431 198.51.100.20 50010 typ host",
        "a=candidate:2 1 udp 16777215 203.0.113.5 61000 typ relay raddr 0.0.0.0 rport 0",
        "a=end-of-candidates",
        "a=ice-ufrag:Zp9q",
        "a=ice-pwd:v1Lk7sN0aW3eR5tY8uI2oP",
        f"a=fingerprint:SHA-256 {FP_ANSWER.lower()}",
        "a=setup:active",
    ]


def _replace(lines: list[str], old: str, new: str | None) -> list[str]:
    """`lines` with the line starting with `old` replaced by `new` (None: removed)."""
    out = []
    for line in lines:
        if line.startswith(old):
            if new is not None:
                out.append(new)
        else:
            out.append(line)
    assert out != lines, old
    return out


def _padded(size: int) -> str:
    """The minimal offer padded with an unknown attribute to exactly `size` UTF-8 bytes."""
    base = _sdp(_offer_lines())
    pad = size - len(base) - len("a=x-pad:\r\n")
    text = base + f"a=x-pad:{'x' * pad}\r\n"
    assert len(text.encode()) == size
    return text


def _sdp_cases() -> list[tuple[str, str, str, Any]]:
    """(name, description, expected type, message)."""
    offer, answer = _offer_lines(), _answer_lines()
    fp_line = f"a=fingerprint:sha-256 {FP_OFFER}"

    def msg(lines: list[str], kind: str = "offer") -> dict[str, str]:
        return {"type": kind, "sdp": _sdp(lines)}

    thirty_two = tuple(f"192.0.2.{i}" for i in range(1, 33))
    thirty_three = (*thirty_two, "192.0.2.33")
    return [
        ("offer_minimal", "a minimal offer: one data channel, one host candidate, "
         "a=end-of-candidates, one sha-256 fingerprint", "offer", msg(offer)),
        ("answer_minimal", "an answer; the fingerprint is written in lower case with an "
         "upper-case algorithm name and comes out normalised", "answer", msg(answer, "answer")),
        ("offer_lf_line_endings", "lines ended by LF alone are accepted", "offer",
         {"type": "offer", "sdp": _sdp(offer, "\n")}),
        ("offer_session_level_fingerprint", "the fingerprint at session level (before m=)",
         "offer", msg(offer[:4] + [fp_line] + [x for x in offer[4:] if x != fp_line])),
        ("offer_more_fingerprints", "sha-384 and sha-512 lines beside the sha-256 one "
         "(aiortc writes all three); only sha-256 enters the binding", "offer",
         msg([*offer, "a=fingerprint:sha-384 " + _hex_pairs(bytes(range(48))),
              "a=fingerprint:sha-512 " + _hex_pairs(bytes(range(64)))])),
        ("offer_ipv6_candidate", "an IPv6 literal is an IP address", "offer",
         msg(_offer_lines(candidates=("2001:db8::10",)))),
        ("offer_32_candidates", "MAX_CANDIDATES (32) candidates", "offer",
         msg(_offer_lines(candidates=thirty_two))),
        ("offer_16384_bytes", "an SDP of exactly MAX_SDP_BYTES (16,384) bytes", "offer",
         {"type": "offer", "sdp": _padded(signal.MAX_SDP_BYTES)}),
        # refused
        ("not_an_object", "the message is a JSON array", "offer", ["offer", _sdp(offer)]),
        ("extra_key", "a key beside 'type' and 'sdp'", "offer", {**msg(offer), "trickle": "no"}),
        ("sdp_not_a_string", "'sdp' is a number", "offer", {"type": "offer", "sdp": 5}),
        ("answer_for_offer", "an answer where an offer is expected", "offer",
         msg(answer, "answer")),
        ("offer_16385_bytes", "one byte over MAX_SDP_BYTES", "offer",
         {"type": "offer", "sdp": _padded(signal.MAX_SDP_BYTES + 1)}),
        ("unparseable", "an m= line whose port is not a number", "offer",
         msg(_replace(offer, "m=application", "m=application x UDP/DTLS/SCTP "
                      "webrtc-datachannel"))),
        ("audio_section", "an m=audio section instead of m=application", "offer",
         msg(_replace(offer, "m=application", "m=audio 50000 UDP/TLS/RTP/SAVPF 111"))),
        ("two_sections", "two m=application sections", "offer", msg(offer + offer[6:])),
        ("not_dtls_sctp", "m=application over plain UDP/SCTP", "offer",
         msg(_replace(offer, "m=application", "m=application 50000 UDP/SCTP "
                      "webrtc-datachannel"))),
        ("no_ice_password", "no a=ice-pwd", "offer", msg(_replace(offer, "a=ice-pwd", None))),
        ("no_sha256_fingerprint", "only a sha-1 fingerprint", "offer",
         msg(_replace(offer, "a=fingerprint", "a=fingerprint:sha-1 "
                      + _hex_pairs(bytes(range(20)))))),
        ("two_sha256_fingerprints", "two sha-256 lines at media level", "offer",
         msg([*offer, f"a=fingerprint:sha-256 {FP_ANSWER}"])),
        ("session_and_media_fingerprint", "the same sha-256 line at session and at media "
         "level: two lines", "offer", msg([*offer[:4], fp_line, *offer[4:]])),
        ("fingerprint_31_bytes", "a sha-256 fingerprint of 31 bytes", "offer",
         msg(_replace(offer, "a=fingerprint", fp_line[:-3]))),
        ("trickle_ice", "no a=end-of-candidates: candidates would trickle", "offer",
         msg(_replace(offer, "a=end-of-candidates", None))),
        ("no_candidates", "no a=candidate line", "offer",
         msg(_replace(offer, "a=candidate", None))),
        ("33_candidates", "MAX_CANDIDATES + 1 candidates", "offer",
         msg(_offer_lines(candidates=thirty_three))),
        ("mdns_candidate", "a candidate named by an mDNS name", "offer",
         msg(_offer_lines(candidates=("1f0c5a3e-4b7d-4e21-9a6b-2c1d3e4f5a6b.local",)))),
        ("dns_candidate", "a candidate named by a DNS name", "offer",
         msg(_offer_lines(candidates=("node.example.org",)))),
    ]


def _check(name: str, description: str, expected: str, message: Any) -> dict[str, Any]:
    case: dict[str, Any] = {"name": name, "description": description, "expected_type": expected,
                            "message": message}
    try:
        checked = signal.parse(message, expected)
    except SignalError as exc:
        text = str(exc)
        # The stable part of the message: up to the first detail that quotes the input.
        stable = text.split(" (", 1)[0] if "unparseable" in text else text
        return {**case, "valid": False, "error": stable, "fingerprint": None,
                "candidates": None}
    return {**case, "valid": True, "error": None, "fingerprint": checked.fingerprint,
            "candidates": [list(c) for c in checked.candidates]}


def _binding_case(name: str, description: str, local: str, remote: str) -> dict[str, Any]:
    value = signal.binding(local, remote)
    assert value == _rule(local, remote) == signal.binding(remote, local)
    return {"name": name, "description": description, "local": local, "remote": remote,
            "binding_hex": value.hex(), "binding_text": value.decode("ascii"),
            "size": len(value)}


def build() -> dict[str, Any]:
    sdp = [_check(*c) for c in _sdp_cases()]
    by_name = {c["name"]: c for c in sdp}
    offer_fp, answer_fp = (by_name[n]["fingerprint"] for n in ("offer_minimal", "answer_minimal"))
    a, b = _fp("certificate of a"), _fp("certificate of b")
    m1, m2 = _fp("relay's certificate towards b"), _fp("relay's certificate towards a")
    cases = [
        _binding_case("offer_and_answer", "the dialer's view of offer_minimal answered by "
                      "answer_minimal: local = its offer's fingerprint", offer_fp, answer_fp),
        _binding_case("offer_and_answer_other_end", "the answerer's view of the same "
                      "connection: the same bytes", answer_fp, offer_fp),
        _binding_case("sorted_by_bytes", "the lines are sorted as byte strings, whichever "
                      "is local", b, a),
        _binding_case("first_difference_late", "fingerprints equal in their first 15 bytes",
                      "sha-256 " + _hex_pairs(bytes(15) + bytes([0x0A]) + bytes(16)),
                      "sha-256 " + _hex_pairs(bytes(15) + bytes([0x09]) + bytes(range(16)))),
        _binding_case("reflected", "an offer answered with its own fingerprint (a reflected "
                      "connection): the two lines are equal; HELLO's self_connection check "
                      "catches it (sync.md §4.1)", a, a),
    ]
    relay = {
        "description": "A relay carrying the signaling swaps in its own fingerprints: "
                       "a ends up with a DTLS session to the relay (certificate m2), b with "
                       "another (m1). Each end's binding value names the certificates of its "
                       "own DTLS session, so the two differ and a HELLO signed on one "
                       "connection does not verify on the other (transport.md §4.3).",
        "a": _binding_case("relay_a_side", "a's connection: a's certificate and m2", a, m2),
        "b": _binding_case("relay_b_side", "b's connection: b's certificate and m1", b, m1),
    }
    assert relay["a"]["binding_hex"] != relay["b"]["binding_hex"]
    return {
        "description": "The connection binding value (transport.md §4): 'cases' give two "
                       "fingerprints as the offer/answer check extracts them ('sha-256 ' and "
                       "32 upper-case hex pairs) and the binding value, both lines sorted as "
                       "bytes and joined by one LF, without a final LF. 'relay' shows why a "
                       "signaling relay cannot sit in the middle. 'sdp' are offers and "
                       "answers as they arrive ('message', any JSON value) checked for "
                       "'expected_type' (transport.md §3.4): a valid one gives the "
                       "fingerprint and the candidates (type, address); a refused one the "
                       "reference's error message ('error', a prefix of it).",
        "spec": "protocols/transport.md §3.4, §4",
        "constants": {"algorithm": signal.BINDING_ALGORITHM,
                      "max_sdp_bytes": signal.MAX_SDP_BYTES,
                      "max_candidates": signal.MAX_CANDIDATES},
        "cases": cases,
        "relay": relay,
        "sdp": sdp,
    }
