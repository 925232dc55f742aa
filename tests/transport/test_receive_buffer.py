"""ICE sockets get a receive buffer that holds what SCTP may have in flight
(liberation_node/transport/_ice.py): with aioice's 256 KiB, datagrams were dropped in
the kernel while the loop was busy, and SCTP took each drop for congestion."""

from __future__ import annotations

import socket
from pathlib import Path

import aioice

from liberation_node.transport import _ice


async def test_an_ice_socket_gets_the_larger_receive_buffer() -> None:
    connection = aioice.Connection(ice_controlling=True, components=1)
    try:
        await connection.get_component_candidates(component=1, addresses=["127.0.0.1"])
        sock = connection._protocols[0].transport.get_extra_info("socket")
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        await connection.close()
    cap = int(Path("/proc/sys/net/core/rmem_max").read_text())
    # Linux reports twice what was set (its bookkeeping), capped at rmem_max.
    assert got >= 2 * min(_ice.UDP_RECEIVE_BUFFER, cap)
    assert got > 2 * 262144 or cap <= 262144
