"""What the node advertises as its signaling URLs (transport.md §3, A.1)."""

from __future__ import annotations

from pathlib import Path

from liberation_node.advertise import advertised_urls
from liberation_node.config import NodeConfig
from liberation_node.transport import TransportConfig


def cfg(**kw: object) -> NodeConfig:
    return NodeConfig(data_dir=Path("/nonexistent"), network="t", **kw)  # type: ignore[arg-type]


def test_advertised_urls() -> None:
    assert advertised_urls(cfg(peer_host="127.0.0.1"), 7411) == ("http://127.0.0.1:7411/v1/signal",)
    assert advertised_urls(cfg(advertise=False), 7411) == ()
    assert advertised_urls(cfg(public_urls=("https://x.org/v1/signal",)), 1) == (
        "https://x.org/v1/signal",)
    assert advertised_urls(cfg(peer_host="::1"), 5) == ("http://[::1]:5/v1/signal",)
    wild = cfg(transport=TransportConfig(ice_addresses=("10.1.2.3",)))
    assert advertised_urls(wild, 7411) == ("http://10.1.2.3:7411/v1/signal",)
    # A wildcard bind never advertises loopback while the host has another address.
    urls = advertised_urls(cfg(), 7411)
    assert urls and all(u.startswith("http://") for u in urls)
    assert all("127.0.0.1" not in u for u in urls) or urls == ("http://127.0.0.1:7411/v1/signal",)
