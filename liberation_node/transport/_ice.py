"""The two things we need from aioice that aiortc does not expose. Private on purpose.

Both reach the aioice `Connection` behind a peer connection through aiortc's
public attributes (`pc.sctp.transport.transport.iceGatherer`) and then the
gatherer's private `_connection`; everything that depends on aiortc/aioice
internals lives in this module, and it fails closed when they change.

Host addresses. aioice gathers host candidates on every address of every
interface except 127.0.0.1 (`aioice.ice.get_host_addresses`, called by
`Connection.gather_candidates`, which hands the list to
`Connection.get_component_candidates(component, addresses)`), and has no
setting to choose them. Rather than patching that module function for the
whole process, `restrict_host_addresses` wraps `get_component_candidates` on
this one connection's instance so it binds exactly the configured addresses;
other peer connections in the process are untouched. It must run after the
gatherer exists (after `createDataChannel` for an offer, after
`setRemoteDescription` for an answer) and before `setLocalDescription`, which
gathers. The caller then checks the host candidates in the resulting SDP, so a
change in aioice that bypassed the wrapper would be caught, not silently
gather on every interface.
"""

from __future__ import annotations

# First: aiortc loads without PyAV (see there).
from . import _nomedia  # noqa: F401

# isort: split
from collections.abc import Awaitable, Callable
from typing import Any

import aioice.turn
from aiortc import RTCPeerConnection

from .errors import TransportError

# The receive buffer of every ICE socket (SO_RCVBUF), which aioice sets from this
# module constant when it binds one (256 KiB by default). SCTP lets a peer have up
# to its receive window, 1 MiB in aiortc, in flight; while our loop is busy for a
# few milliseconds (a batch of ops being applied) a 256 KiB socket buffer overflows
# on a fast link, and every datagram dropped there is a loss to SCTP: its window
# halves, the sender walks its sent queue on every SACK with gaps, and a bulk
# transfer ran at a fifth of what the channel carries (scripts/bench_streaming.py).
# The kernel caps it at net.core.rmem_max; it is memory only while data waits.
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
aioice.turn.UDP_SOCKET_BUFFER_SIZE = max(aioice.turn.UDP_SOCKET_BUFFER_SIZE,
                                         UDP_RECEIVE_BUFFER)


def _connection(pc: RTCPeerConnection) -> Any:
    sctp = pc.sctp
    if sctp is None:
        raise TransportError("peer connection has no SCTP transport yet")
    return getattr(sctp.transport.transport.iceGatherer, "_connection", None)


def restrict_host_addresses(pc: RTCPeerConnection, addresses: tuple[str, ...]) -> None:
    """Make this peer connection gather host candidates on `addresses` only."""
    if not addresses:
        return  # aioice's default: every interface address but loopback
    connection = _connection(pc)
    gather: Callable[..., Awaitable[Any]] | None = getattr(
        connection, "get_component_candidates", None)
    if gather is None or getattr(connection, "_local_candidates_start", True):
        raise TransportError("cannot restrict ICE addresses with this aioice version")
    allowed = list(addresses)

    async def gather_on_allowed(component: int, addresses: list[str],
                                timeout: int = 5) -> Any:
        return await gather(component=component, addresses=allowed, timeout=timeout)

    connection.get_component_candidates = gather_on_allowed


def selected_remote_address(pc: RTCPeerConnection) -> str | None:
    """The remote "host:port" of the nominated ICE candidate pair, for logs."""
    try:
        pair = _connection(pc)._nominated.get(1)
        host, port = pair.remote_addr
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    except Exception:  # not nominated yet, or aioice changed: only used for logs
        return None
