"""Signaling messages (offer and answer) and the connection's binding value (DESIGN.md §4).

An offer or answer travels as `{"type": "offer" | "answer", "sdp": "..."}`,
over HTTP (`POST /v1/signal`) or relayed through the mesh, so both come from
the network and are checked here before aiortc sees them: the shape and size,
then the SDP itself. We only speak one data channel over DTLS/SCTP with every
candidate in the SDP (no trickle ICE), so anything else is refused.

Candidates (protocols/transport.md §3.4 rules 10-14). Every candidate is in
the SDP: the protocol never trickles, so an SDP without `a=end-of-candidates`
(browsers never write it) is complete as it is. Each candidate is usable (UDP,
component 1, an IP literal, a port), ignored (a `.local` or DNS name: aioice
would resolve one over multicast DNS, which this node never sends, or DNS; TCP,
which aioice does not do) or refused with the whole SDP (an unspecified,
multicast, broadcast or reserved address, or port 0: no peer sits there, and
the node would send STUN checks to them). At least one must be usable; at most
MAX_USED_CANDIDATES are used, each one costing a few STUN checks. The SDP given
to aiortc keeps only those, and ends its candidates with `a=end-of-candidates`.

Binding value. Each end's DTLS certificate fingerprint is in its SDP
(a=fingerprint lines). aiortc checks the certificate the peer presents in the
DTLS handshake against the fingerprints of the remote SDP (line numbers of
aiortc 1.16.0): `RTCPeerConnection.setRemoteDescription` keeps the remote
SDP's `media.dtls` (rtcpeerconnection.py:982) and `__connect` starts DTLS with
it (:1103); the SSL context demands a peer certificate
(rtcdtlstransport.py:199, VERIFY_FAIL_IF_NO_PEER_CERT); `start()` calls
`_validate_peer_identity` right after the handshake (:536), which requires
every fingerprint of a supported algorithm to match the peer's certificate and
otherwise fails the transport (:433-450); SCTP, hence the data channel, only
starts on a "connected" DTLS transport (rtcpeerconnection.py:1104). So once
the channel is open, the SHA-256 fingerprints of the local and remote SDP are
the two certificates actually at the ends of this DTLS session. Sorted and
joined, both ends compute the same bytes. Whoever carries the signaling can
only connect through itself by putting its own fingerprints into the SDPs it
forwards; then each end sees a different remote fingerprint and the two
binding values differ, so a HELLO signed over one does not verify on the other
(protocols/sync.md §4, core/session.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiortc.sdp import SessionDescription

from ..core.scope import MULTICAST, RESERVED, UNSPECIFIED, address_scope
from .errors import SignalError

MAX_SDP_BYTES = 16 * 1024  # one data channel and a few dozen candidates fit in ~4 KiB
MAX_CANDIDATES = 32  # a=candidate lines accepted in one SDP
MAX_USED_CANDIDATES = 8  # of those, used: each costs STUN checks (issue: reflection)
NO_DESTINATION = frozenset({UNSPECIFIED, MULTICAST, RESERVED})  # refused candidate scopes
BINDING_ALGORITHM = "sha-256"  # mandatory to implement (RFC 8827 §6.5); aiortc offers it
_SHA256_HEX = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){31}")  # RFC 8122 §5 fingerprint


@dataclass(frozen=True)
class Description:
    """A checked offer or answer."""

    type: str
    sdp: str
    fingerprint: str  # "sha-256 AB:CD:...", as in its a=fingerprint line, hex upper case
    candidates: tuple[tuple[str, str, int], ...]  # (type, address, port) of those used
    ignored: tuple[str, ...] = ()  # why each ignored candidate was (for logs)

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "sdp": self.sdp}


def parse(message: object, expected_type: str, ignore: frozenset[str] = frozenset()
          ) -> Description:
    """Check an offer or answer dict from the network; raises SignalError. Candidates
    whose address is in a scope of `ignore` (core/scope.py) are ignored."""
    if not isinstance(message, dict):
        raise SignalError(f"{expected_type}: expected a dict, got {type(message).__name__}")
    if set(message) != {"type", "sdp"}:
        raise SignalError(f"{expected_type}: expected exactly the keys 'type' and 'sdp', "
                          f"got {sorted(map(repr, message))}")
    kind, sdp = message["type"], message["sdp"]
    if not isinstance(kind, str) or not isinstance(sdp, str):
        raise SignalError(f"{expected_type}: 'type' and 'sdp' must be strings")
    if kind != expected_type:
        raise SignalError(f"expected an {expected_type}, got type {kind[:20]!r}")
    return check_sdp(kind, sdp, ignore)


# What "parses as SDP" means (transport.md §3.10): RFC 8866 lines, and for the lines a
# node reads, the grammar of their RFC, exactly. Everything else is left to the stack.
_TYPES = frozenset("vosiuepcbtrzkam")  # RFC 8866 §9
_TOKEN = r"[\x21-\x7e]+"
_GRAMMAR = {
    "m": re.compile(rf"m=[a-z]+ ([0-9]{{1,5}})(?:/[0-9]{{1,5}})? [A-Za-z0-9/]+(?: {_TOKEN})+"),
    "c": re.compile(rf"c=IN IP[46] {_TOKEN}"),  # RFC 8866 §5.7
}
_ATTRIBUTE = re.compile(r"a=([A-Za-z0-9-]+)(?::(.*))?")  # RFC 8866 §5.13, att-field
_VALUES = {
    # RFC 8839 §5.1: foundation, component, transport, priority, address, port, typ, type
    "candidate": re.compile(rf"[A-Za-z0-9+/]{{1,32}} [0-9]{{1,3}} [A-Za-z]+ ([0-9]{{1,10}}) "
                            rf"{_TOKEN} ([0-9]{{1,5}}) typ [A-Za-z]+(?: {_TOKEN} {_TOKEN})*"),
    "fingerprint": re.compile(r"[A-Za-z0-9-]+ [0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*"),  # RFC 8122
    "ice-ufrag": re.compile(r"[A-Za-z0-9+/]{4,256}"),  # RFC 8839 §5.4
    "ice-pwd": re.compile(r"[A-Za-z0-9+/]{22,256}"),
    "setup": re.compile(r"active|passive|actpass|holdconn"),  # RFC 4145 §4
    "sctp-port": re.compile(r"([0-9]{1,5})"),  # RFC 8841 §5
    "max-message-size": re.compile(r"[0-9]{1,10}"),
}
_RTP = frozenset({"rtpmap", "fmtp", "rtcp", "rtcp-fb", "ssrc", "ssrc-group", "extmap"})


def _grammar(kind: str, sdp: str) -> None:
    """Refuse an SDP that is not, line for line, in the grammar of transport.md §3.10."""
    lines = sdp.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the line end of the last line
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        why = _line_error(line, number)
        if why is not None:
            raise SignalError(f"{kind}: unparseable SDP (line {number}: {why})")


def _line_error(line: str, number: int) -> str | None:
    if not line or not all(" " <= c <= "~" for c in line):
        return "empty, or not printable ASCII"
    if len(line) < 2 or line[1] != "=" or line[0] not in _TYPES:
        return "not <type>=<value> with a type of RFC 8866"
    if number == 1 and line != "v=0":
        return "the first line is not v=0"
    shape = _GRAMMAR.get(line[0])
    if shape is not None:
        match = shape.fullmatch(line)
        if match is None or (line[0] == "m" and int(match.group(1)) > 65535):
            return f"not an {line[0]}= line"
        return None
    if line[0] != "a":
        return None
    attribute = _ATTRIBUTE.fullmatch(line)
    if attribute is None:
        return "not an attribute"
    name, value = attribute.group(1), attribute.group(2)
    if name in _RTP:
        return f"a={name} is an RTP attribute: no data channel has one"
    pattern = _VALUES.get(name)
    if pattern is None:
        return None
    match = pattern.fullmatch(value or "")
    if match is None:
        return f"a={name} does not follow its grammar"
    if name == "candidate" and (int(match.group(1)) > 2**32 - 1 or int(match.group(2)) > 65535):
        return "a=candidate priority or port out of range"
    if name == "sctp-port" and int(match.group(1)) > 65535:
        return "a=sctp-port out of range"
    return None


def check_sdp(kind: str, sdp: str, ignore: frozenset[str] = frozenset()) -> Description:
    """Check the SDP of an offer or answer (ours too); raises SignalError."""
    size = len(sdp.encode("utf-8", "surrogatepass"))
    if size > MAX_SDP_BYTES:
        raise SignalError(f"{kind}: SDP of {size} bytes, at most {MAX_SDP_BYTES}")
    _grammar(kind, sdp)
    try:
        session = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser asserts and unpacks freely
        raise SignalError(f"{kind}: unparseable SDP ({type(exc).__name__}: {exc})") from None
    if len(session.media) != 1 or session.media[0].kind != "application":
        raise SignalError(f"{kind}: expected exactly one m=application section")
    media = session.media[0]
    if "DTLS/SCTP" not in media.profile:
        raise SignalError(f"{kind}: m=application is not DTLS/SCTP but {media.profile!r}")
    if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
        raise SignalError(f"{kind}: no ICE username fragment or password")
    fingerprints = media.dtls.fingerprints if media.dtls is not None else []
    ours = [f for f in fingerprints if f.algorithm.lower() == BINDING_ALGORITHM]
    if len(ours) != 1:
        raise SignalError(f"{kind}: expected one a=fingerprint:{BINDING_ALGORITHM} line, "
                          f"got {len(ours)}")
    fingerprint = ours[0].value.upper()
    if not _SHA256_HEX.fullmatch(fingerprint):
        raise SignalError(f"{kind}: malformed {BINDING_ALGORITHM} fingerprint")
    # Rule 10: no a=end-of-candidates is fine: nothing trickles, the SDP is complete.
    if not 0 < len(media.ice_candidates) <= MAX_CANDIDATES:
        raise SignalError(f"{kind}: {len(media.ice_candidates)} candidates, "
                          f"expected 1..{MAX_CANDIDATES}")
    lines = sdp.splitlines()
    raw = [i for i, line in enumerate(lines) if line.startswith("a=candidate:")]
    if len(raw) != len(media.ice_candidates):
        raise SignalError(f"{kind}: candidates outside the m=application section")
    usable: list[tuple[int, int, str, str, int]] = []  # -priority, order, type, ip, port
    ignored: list[str] = []
    for order, candidate in enumerate(media.ice_candidates):
        host, port = str(candidate.ip), int(candidate.port)
        try:
            scope = address_scope(host)
        except ValueError:
            ignored.append(f"{host[:64]!r} is not an IP address (names are not resolved)")
            continue
        if scope in NO_DESTINATION or not 0 < port < 65536:
            what = "broadcast" if host == "255.255.255.255" else scope
            raise SignalError(f"{kind}: candidate {host[:64]} port {port}: "
                              f"{'port 0' if port == 0 else what + ' address'}, "
                              "no peer is there")
        if scope in ignore:
            ignored.append(f"{host} {port}: {scope} address, not used by this node")
            continue
        if str(candidate.protocol).lower() != "udp" or candidate.component != 1:
            ignored.append(f"{host} {port}: {candidate.protocol} component "
                           f"{candidate.component} (UDP component 1 only)")
            continue
        if any(u[3:] == (host, port) for u in usable):
            ignored.append(f"{host} {port}: a duplicate")
            continue
        usable.append((-int(candidate.priority), order, str(candidate.type), host, port))
    if not usable:
        raise SignalError(f"{kind}: no usable candidate ({'; '.join(ignored)[:300]})")
    used = sorted(usable)[:MAX_USED_CANDIDATES]
    ignored += [f"{u[3]} {u[4]}: over {MAX_USED_CANDIDATES} candidates"
                for u in sorted(usable)[MAX_USED_CANDIDATES:]]
    keep = {raw[u[1]] for u in used}
    in_order = sorted(used, key=lambda u: u[1])  # as they were in the SDP
    return Description(kind, _rewrite(sdp, lines, keep, raw[-1]),
                       f"{BINDING_ALGORITHM} {fingerprint}",
                       tuple((t, ip, port) for _, _, t, ip, port in in_order), tuple(ignored))


def _rewrite(sdp: str, lines: list[str], keep: set[int], last: int) -> str:
    """The SDP with only the candidate lines `keep` and a=end-of-candidates after the
    last candidate line (the SDP as sent when nothing is dropped and it is there)."""
    out = []
    for i, line in enumerate(lines):
        dropped = line.startswith("a=candidate:") and i not in keep
        if not dropped and line != "a=end-of-candidates":
            out.append(line)
        if i == last:
            out.append("a=end-of-candidates")
    eol = "\r\n" if "\r\n" in sdp else "\n"
    return eol.join(out) + eol


def binding(local_fingerprint: str, remote_fingerprint: str) -> bytes:
    """The binding value: both fingerprints, sorted, one per line. Same on both ends."""
    return "\n".join(sorted((local_fingerprint, remote_fingerprint))).encode("ascii")
