"""The network transport (DESIGN.md §4): WebRTC data channels between peers.

Public surface: `WebRtcTransport` dials and answers, `Link` is one open channel,
`TransportConfig` holds the settings, and every error is a `TransportError`.
"""

from .config import IceServer, TransportConfig, parse_ice_server
from .errors import ConnectTimeout, LinkClosed, SignalError, TransportError
from .webrtc import LABEL, PROTOCOL, Link, WebRtcTransport

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
