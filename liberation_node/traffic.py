"""What the node counts about its links, for the peers list and /metrics (docs/api.md).

Per open link: when it opened, which side dialed, how we found the peer and
the bytes each way; for the whole run: totals that only grow (Prometheus
counters). Plain counting, no I/O. (Refused inputs are counted by the mesh,
`Mesh.rejected`.)
"""

from __future__ import annotations

from dataclasses import dataclass

# How a peer was found (docs/api.md, peers): a candidate's source (core/candidates.py
# Source, lower-cased), "relay" for a dial by relayed signaling, "inbound" when it
# dialed us.
FOUND_BY = ("operator", "bootstrap", "mdns", "record", "relay", "inbound")


@dataclass(slots=True)
class LinkTraffic:
    since_ms: int  # wall clock when the link opened
    direction: str  # "out": we dialed; "in": it dialed us
    found_by: str
    bytes_in: int = 0
    bytes_out: int = 0


class Traffic:
    def __init__(self) -> None:
        self.links: dict[int, LinkTraffic] = {}
        self.bytes_in = 0
        self.bytes_out = 0
        self.messages_in = 0
        self.messages_out = 0
        self.links_opened = 0

    def opened(self, link: int, now_ms: int, *, initiator: bool) -> None:
        self.links_opened += 1
        self.links[link] = LinkTraffic(now_ms, "out" if initiator else "in",
                                       "record" if initiator else "inbound")

    def found(self, link: int, how: str) -> None:
        """A dial's link: how we found the peer we dialed (known once the dial returns)."""
        stats = self.links.get(link)
        if stats is not None and how in FOUND_BY:
            stats.found_by = how

    def received(self, link: int, size: int) -> None:
        self.bytes_in += size
        self.messages_in += 1
        stats = self.links.get(link)
        if stats is not None:
            stats.bytes_in += size

    def sent(self, link: int, size: int) -> None:
        self.bytes_out += size
        self.messages_out += 1
        stats = self.links.get(link)
        if stats is not None:
            stats.bytes_out += size

    def closed(self, link: int) -> None:
        self.links.pop(link, None)

    def counters(self) -> dict[str, object]:
        return {"bytes_received": self.bytes_in, "bytes_sent": self.bytes_out,
                "messages_received": self.messages_in, "messages_sent": self.messages_out,
                "links_opened": self.links_opened}
