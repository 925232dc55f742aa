"""binding.json: the connection binding value and the offer/answer checks (transport.md §3-§4).

The binding value is computed with `liberation_node.transport.signal.binding`
and recomputed here from the rule of transport.md §4.2, so the file cannot
state bytes the implementation does not produce. The SDP cases are fixed texts
(no aiortc I/O: `signal.parse` only parses); each valid one records the
fingerprint, the candidates the check keeps and the SDP it hands to the WebRTC
stack, each refused one the start of the error message, checked against
`signal.parse` here.

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
                 candidates: tuple[str, ...] = ("192.0.2.10",),
                 lines: tuple[str, ...] | None = None) -> list[str]:
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
        *(lines if lines is not None else
          (f"a=candidate:{i + 1} 1 udp 2130706431 {host} {50000 + i} typ host"
           for i, host in enumerate(candidates))),
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


def _browser_offer() -> list[str]:
    """An offer of the shape Chromium writes for one data channel: host candidates
    hidden behind mDNS names, a TCP candidate, a server-reflexive one from STUN, no
    a=end-of-candidates, a=ice-options:trickle."""
    return [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS",
        "m=application 54400 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 198.51.100.7",
        "a=candidate:3442447574 1 udp 2113937151 5f0e3c1a-7d4b-4e21-9a6b-2c1d3e4f5a6b.local "
        "54400 typ host generation 0 network-cost 999",
        "a=candidate:2181542406 1 tcp 1518280447 5f0e3c1a-7d4b-4e21-9a6b-2c1d3e4f5a6b.local "
        "9 typ host tcptype active generation 0 network-cost 999",
        "a=candidate:842163049 1 udp 1677729535 198.51.100.7 54400 typ srflx raddr 0.0.0.0 "
        "rport 0 generation 0 network-cost 999",
        "a=ice-ufrag:R2fX",
        "a=ice-pwd:3ds4Wm0fh2RM0FTKkNMSL+Zp",
        "a=ice-options:trickle",
        f"a=fingerprint:sha-256 {FP_OFFER}",
        "a=setup:actpass",
        "a=mid:0",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
    ]


def _candidate(n: int, host: str, port: int, priority: int = 2130706431,
               transport: str = "udp", component: int = 1) -> str:
    return f"a=candidate:{n} {component} {transport} {priority} {host} {port} typ host"


def _sdp_cases() -> list[tuple[str, str, str, Any]]:
    """(name, description, expected type, message)."""
    offer, answer = _offer_lines(), _answer_lines()
    fp_line = f"a=fingerprint:sha-256 {FP_OFFER}"

    def msg(lines: list[str], kind: str = "offer") -> dict[str, str]:
        return {"type": kind, "sdp": _sdp(lines)}

    thirty_two = tuple(f"192.0.2.{i}" for i in range(1, 33))
    thirty_three = (*thirty_two, "192.0.2.33")
    ip = _candidate(1, "192.0.2.10", 50000)

    def with_candidates(*lines: str) -> dict[str, str]:
        return msg(_offer_lines(lines=lines))

    ranked = tuple(_candidate(i + 1, f"192.0.2.{i + 1}", 50000, priority=p) for i, p in
                   enumerate((5, 90, 10, 90, 70, 60, 50, 40, 30, 20)))
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
        ("offer_32_candidates", "MAX_CANDIDATES (32) candidates: the first "
         "MAX_USED_CANDIDATES (8) are used (equal priorities: in SDP order)", "offer",
         msg(_offer_lines(candidates=thirty_two))),
        ("offer_used_by_priority", "10 candidates: the 8 of highest priority are used, equal "
         "priorities in SDP order; the SDP handed on keeps their lines in place", "offer",
         with_candidates(*ranked)),
        ("offer_without_end_of_candidates", "no a=end-of-candidates (browsers never write it): "
         "every candidate is there anyway, since nothing trickles; the SDP handed on ends "
         "its candidates with a=end-of-candidates", "offer",
         msg(_replace(offer, "a=end-of-candidates", None))),
        ("offer_mdns_and_ip_candidates", "an mDNS name beside an IP candidate: the name is "
         "ignored (never resolved), the IP one used", "offer",
         with_candidates(_candidate(1, "1f0c5a3e-4b7d-4e21-9a6b-2c1d3e4f5a6b.local", 50000), ip)),
        ("offer_tcp_candidate", "a TCP candidate beside a UDP one: ignored (UDP only)", "offer",
         with_candidates(ip, _candidate(2, "192.0.2.11", 9, transport="tcp"))),
        ("offer_duplicate_candidates", "the same address and port twice: used once", "offer",
         with_candidates(ip, _candidate(2, "192.0.2.10", 50000, priority=1))),
        ("offer_loopback_and_link_local", "loopback and link-local candidates are addresses "
         "like others here (the answerer's ICE settings decide what it pairs them with)",
         "offer", with_candidates(_candidate(1, "127.0.0.1", 50000),
                                  _candidate(2, "fe80::1%eth0", 50001))),
        ("browser_offer", "the shape of a Chromium offer: mDNS host names and a TCP "
         "candidate are ignored, its server-reflexive candidate used; no "
         "a=end-of-candidates", "offer", msg(_browser_offer())),
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
        ("no_candidates", "no a=candidate line", "offer",
         msg(_replace(offer, "a=candidate", None))),
        ("no_candidates_no_end", "no a=candidate line and no a=end-of-candidates", "offer",
         msg(_replace(_replace(offer, "a=candidate", None), "a=end-of-candidates", None))),
        ("33_candidates", "MAX_CANDIDATES + 1 candidates", "offer",
         msg(_offer_lines(candidates=thirty_three))),
        ("mdns_candidate", "only a candidate named by an mDNS name: nothing usable", "offer",
         msg(_offer_lines(candidates=("1f0c5a3e-4b7d-4e21-9a6b-2c1d3e4f5a6b.local",)))),
        ("dns_candidate", "only a candidate named by a DNS name: nothing usable", "offer",
         msg(_offer_lines(candidates=("node.example.org",)))),
        ("tcp_candidate_only", "only a TCP candidate: nothing usable", "offer",
         with_candidates(_candidate(1, "192.0.2.11", 9, transport="tcp"))),
        ("multicast_candidate", "a multicast candidate beside a good one: the offer is "
         "refused (the node would send STUN checks to a group)", "offer",
         with_candidates(ip, _candidate(2, "224.0.0.251", 5353))),
        ("ipv6_multicast_candidate", "an IPv6 multicast candidate", "offer",
         with_candidates(ip, _candidate(2, "ff02::1", 5000))),
        ("broadcast_candidate", "the broadcast address 255.255.255.255", "offer",
         with_candidates(ip, _candidate(2, "255.255.255.255", 5000))),
        ("unspecified_candidate", "the unspecified address 0.0.0.0", "offer",
         with_candidates(ip, _candidate(2, "0.0.0.0", 5000))),
        ("ipv6_unspecified_candidate", "the unspecified address ::", "offer",
         with_candidates(ip, _candidate(2, "::", 5000))),
        ("port_0_candidate", "a candidate with port 0", "offer",
         with_candidates(ip, _candidate(2, "192.0.2.11", 0))),
        # the grammar of §3.10
        ("non_ascii", "a character that is not printable ASCII (in s=)", "offer",
         msg(_replace(offer, "s=", "s=caf\u00e9"))),
        ("line_separator_in_a_line", "U+2028 inside a line: only LF ends a line, and it is "
         "not printable ASCII", "offer", msg(_replace(offer, "s=", "s=-\u2028x=1"))),
        ("empty_line", "an empty line", "offer", msg(_replace(offer, "s=", "s=-\r\n"))),
        ("first_line_not_v0", "the first line is not v=0", "offer",
         msg(["v=1", *offer[1:]])),
        ("unknown_line_type", "a line type RFC 8866 does not define", "offer",
         msg([*offer, "x=1"])),
        ("candidate_without_typ", "an a=candidate line without 'typ' (RFC 8839 §5.1)", "offer",
         with_candidates("a=candidate:1 1 udp 2130706431 192.0.2.10 50000 host")),
        ("candidate_priority_over_32_bits", "a candidate priority above 2^32 - 1", "offer",
         with_candidates(_candidate(1, "192.0.2.10", 50000, priority=2**32))),
        ("candidate_port_over_65535", "a candidate port above 65535", "offer",
         with_candidates(ip, _candidate(2, "192.0.2.11", 65536))),
        ("m_port_over_65535", "an m= port above 65535", "offer",
         msg(_replace(offer, "m=application", "m=application 70000 UDP/DTLS/SCTP "
                      "webrtc-datachannel"))),
        ("rtp_attribute", "an a=rtpmap line: RTP attributes have no place in a data channel's "
         "SDP", "offer", msg([*offer, "a=rtpmap:111 opus/48000/2"])),
        ("ice_pwd_too_short", "an a=ice-pwd of 21 characters (RFC 8839 §5.4: 22 to 256)",
         "offer", msg(_replace(offer, "a=ice-pwd", "a=ice-pwd:" + "p" * 21))),
        ("setup_unknown", "an a=setup value RFC 4145 does not define", "offer",
         msg(_replace(offer, "a=setup", "a=setup:whenever"))),
        ("fingerprint_not_hex", "an a=fingerprint value that is not hex pairs (RFC 8122 §5)",
         "offer", msg(_replace(offer, "a=fingerprint", "a=fingerprint:sha-256 XY:ZZ"))),
    ]


def _check(name: str, description: str, expected: str, message: Any) -> dict[str, Any]:
    case: dict[str, Any] = {"name": name, "description": description, "expected_type": expected,
                            "message": message}
    try:
        checked = signal.parse(message, expected)
    except SignalError as exc:
        text = str(exc)
        # The stable part of the message: up to the first detail that quotes the input.
        quoting = ("unparseable", "no usable candidate")
        stable = text.split(" (", 1)[0] if any(q in text for q in quoting) else text
        return {**case, "valid": False, "error": stable, "fingerprint": None,
                "candidates": None, "sdp_used": None}
    return {**case, "valid": True, "error": None, "fingerprint": checked.fingerprint,
            "candidates": [list(c) for c in checked.candidates], "sdp_used": checked.sdp}


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
                       "fingerprint, the candidates used (type, address, port) and "
                       "'sdp_used', the SDP handed to the WebRTC stack; a refused one the "
                       "reference's error message ('error', a prefix of it).",
        "spec": "protocols/transport.md §3.4, §4",
        "constants": {"algorithm": signal.BINDING_ALGORITHM,
                      "max_sdp_bytes": signal.MAX_SDP_BYTES,
                      "max_candidates": signal.MAX_CANDIDATES,
                      "max_used_candidates": signal.MAX_USED_CANDIDATES},
        "cases": cases,
        "relay": relay,
        "sdp": sdp,
    }
