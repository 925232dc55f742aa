"""What the transport raises. All are `TransportError`, so a caller can catch one class.

As in core/errors.py, "the peer (or whoever carried its signaling) sent
something bad" (`SignalError`) is kept apart from failures to connect and from
using a link that is gone.
"""

from __future__ import annotations


class TransportError(Exception):
    """A connection could not be made or used."""


class SignalError(TransportError):
    """An offer or answer from the network was malformed or not what we speak."""


class ConnectTimeout(TransportError):
    """No open data channel within `TransportConfig.connect_timeout_s`."""


class LinkClosed(TransportError):
    """The link closed (by either end, or the transport shut down)."""
