"""The network transport (DESIGN.md §4): WebRTC data channels between peers.

Public surface: `WebRtcTransport` dials and answers, `Link` is one open channel,
`TransportConfig` holds the settings, and every error is a `TransportError`.
"""

from typing import TYPE_CHECKING, Any

from .config import IceServer, TransportConfig, parse_ice_server
from .errors import ConnectTimeout, LinkClosed, SignalError, TransportError

if TYPE_CHECKING:
    from .webrtc import LABEL, PROTOCOL, Link, WebRtcTransport

_LAZY = {"LABEL", "PROTOCOL", "Link", "WebRtcTransport"}


def __getattr__(name: str) -> Any:
    # aiortc takes ~0.2 s to import (without PyAV: _nomedia.py): loaded on first use,
    # so a node answers its control port before the WebRTC stack is even in memory.
    if name in _LAZY:
        from . import webrtc

        return getattr(webrtc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "LABEL",
    "PROTOCOL",
    "ConnectTimeout",
    "IceServer",
    "Link",
    "LinkClosed",
    "SignalError",
    "TransportConfig",
    "TransportError",
    "WebRtcTransport",
    "parse_ice_server",
]
