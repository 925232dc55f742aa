"""Properties of the candidate rules (transport.md §3.4 rules 10-13): whatever an SDP
carries, the node uses at most 8 unicast UDP candidates with a port, never a name, and
what it hands on checks again to the same thing."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liberation_node.core import scope
from liberation_node.transport import signal
from liberation_node.transport.errors import SignalError

HEAD = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:Wx3k", "a=ice-pwd:q8Jf0mR2vT6yB1nC4dE7gH",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass", "a=mid:0"]

hosts = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(["0.0.0.0", "::", "224.0.0.251", "ff02::fb", "255.255.255.255",
                     "240.1.2.3", "127.0.0.1", "fe80::1%eth0", "x.local", "node.example.org"]))
candidates = st.lists(st.tuples(hosts, st.integers(0, 65535), st.integers(0, 2**31 - 1),
                                st.sampled_from(["udp", "udp", "tcp"]), st.sampled_from([1, 1, 2])),
                      min_size=1, max_size=32)


def sdp_of(cands: list[tuple[str, int, int, str, int]], end: bool) -> str:
    lines = [f"a=candidate:{i} {comp} {proto} {prio} {host} {port} typ host"
             for i, (host, port, prio, proto, comp) in enumerate(cands)]
    return "\r\n".join([*HEAD, *lines, *(["a=end-of-candidates"] if end else [])]) + "\r\n"


@settings(max_examples=300, deadline=None)
@given(candidates, st.booleans())
def test_what_is_used_is_bounded_unicast_and_stable(
        cands: list[tuple[str, int, int, str, int]], end: bool) -> None:
    sdp = sdp_of(cands, end)
    try:
        used = signal.check_sdp("offer", sdp)
    except SignalError as exc:
        bad = [(h, p) for h, p, *_ in cands if p == 0 or _scope(h) in signal.NO_DESTINATION]
        usable = [c for c in cands if _scope(c[0]) not in (None, *signal.NO_DESTINATION)
                  and c[3] == "udp" and c[4] == 1 and c[1] != 0]
        assert bad or not usable, str(exc)
        return
    assert 1 <= len(used.candidates) <= signal.MAX_USED_CANDIDATES
    for _, host, port in used.candidates:
        assert 0 < port < 65536 and _scope(host) not in (None, *signal.NO_DESTINATION)
    assert len(set(used.candidates)) == len(used.candidates)
    again = signal.check_sdp("offer", used.sdp)  # handed on, it checks to the same
    assert (again.candidates, again.sdp) == (used.candidates, used.sdp)
    assert used.sdp.count("a=end-of-candidates") == 1


def _scope(host: str) -> str | None:
    try:
        return scope.address_scope(host)
    except ValueError:
        return None


@pytest.mark.parametrize("host", ["::ffff:224.0.0.1", "::ffff:0.0.0.0", "0.255.255.255"])
def test_mapped_and_this_network_addresses_are_refused(host: str) -> None:
    assert ipaddress.ip_address(host.split("%")[0])
    with pytest.raises(SignalError, match="no peer is there"):
        signal.check_sdp("offer", sdp_of([("192.0.2.1", 5000, 1, "udp", 1),
                                          (host, 5000, 1, "udp", 1)], True))
