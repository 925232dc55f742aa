"""The node's side of LAN discovery: mDNS runs only when configured, a peer found on the
LAN becomes a candidate for the connection manager, and one it gave up on is asked about
again later (protocols/discovery.md §6, §6.1).

A mixin of `Node` (node.py), which owns every attribute named below.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from . import clock
from .core.candidates import Source
from .core.identity import short_id

if TYPE_CHECKING:
    from .config import NodeConfig
    from .core.identity import Identity
    from .core.peering import Peering
    from .discovery.mdns import LanDiscovery

log = logging.getLogger("liberation_node")


class NodeLan:
    """mDNS discovery started, and its findings handed to the connection manager."""

    # Owned and set by Node (node.py).
    config: NodeConfig
    identity: Identity
    peering: Peering
    stopping: bool
    _lan: LanDiscovery | None

    if TYPE_CHECKING:  # the other parts of Node, which these call
        def _service(self) -> None: ...
        def _spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]: ...

    def _start_lan(self, peer_port: int) -> None:
        from .discovery.mdns import LanDiscovery  # zeroconf loads only when mDNS is on

        cfg = self.config
        self._lan = LanDiscovery(
            cfg.discovery, me=self.identity.public_key, network=cfg.network,
            protocol=cfg.mesh.session.protocol_version, port=peer_port,
            bind_host=cfg.peer_host, ice_addresses=cfg.transport.ice_addresses,
            found=self._lan_found, lost=self._lan_lost)
        self._spawn(self._lan.start(), name="mdns")

    def _lan_found(self, node_id: bytes, urls: tuple[str, ...]) -> None:
        """A peer of our network advertised on the LAN: a candidate; the connection
        manager decides whether to dial it (discovery.md §6)."""
        self.peering.learn(node_id, urls, Source.MDNS, clock.now_ms())
        if not self.stopping:
            self._service()

    def _lan_lost(self, node_id: bytes) -> None:
        if self.peering.forget(node_id, Source.MDNS):
            log.info("forgot %s: its mDNS service is gone", short_id(node_id))

    def _lan_forgotten(self) -> None:
        """mDNS candidates the connection manager gave up on: the LAN is asked about them
        again later (discovery.md §6.1)."""
        for node_id in self.peering.lan_forgotten():
            log.info("forgot %s: its mDNS record may be a dead node's (%d failed dials)",
                     short_id(node_id), self.config.peering.mdns_max_failures)
            if self._lan is not None:
                self._lan.forgotten(node_id)
