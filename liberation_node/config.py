"""Every setting of a running node, with its default, in one place (like uvicorn's Config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .core.mesh import MeshConfig
from .core.peering import PeeringConfig
from .discovery.config import MdnsConfig
from .transport.config import TransportConfig

DEFAULT_PEER_PORT = 7411
DEFAULT_CONTROL_PORT = 7412


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    network: str
    name: str = ""
    peer_host: str = "0.0.0.0"  # the peer port is for the network (DESIGN §4)
    peer_port: int = DEFAULT_PEER_PORT  # 0: pick a free port
    control_host: str = "127.0.0.1"  # the control port is for this machine only
    control_port: int = DEFAULT_CONTROL_PORT
    # URLs other nodes should use to reach our peer port; () = derive from the bound
    # address; advertise=False = publish none (behind NAT: reachable by relay only).
    public_urls: tuple[str, ...] = ()
    advertise: bool = True
    bootstrap: tuple[str, ...] = ()  # signaling URLs or bootstrap/*.toml files
    transport: TransportConfig = field(default_factory=TransportConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    peering: PeeringConfig = field(default_factory=PeeringConfig)
    mdns: MdnsConfig = field(default_factory=MdnsConfig)  # LAN discovery, on by default
    health_interval_s: float = 10.0
    log_json: bool = False
