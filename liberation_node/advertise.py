"""The signaling URLs a node publishes and prints as its join address (protocols/
transport.md §3, A.1).

Apart from node.py so that the fast CLI's `address` command uses the node's own rule
without importing the daemon (aiohttp, the core).
"""

from __future__ import annotations

from .config import NodeConfig

WILDCARDS = ("0.0.0.0", "", "::")


def signal_url(host: str, port: int) -> str:
    """The peer port's signaling URL on `host` (an IPv6 address in brackets)."""
    return f"http://[{host}]:{port}/v1/signal" if ":" in host else f"http://{host}:{port}/v1/signal"


def advertised_urls(cfg: NodeConfig, port: int) -> tuple[str, ...]:
    """The signaling URLs we publish in node.info (transport.md §3, A.1): the operator's
    --public-url; else the bound address; for a wildcard bind, the addresses ICE may
    use, else this host's non-loopback IPv4 addresses (a loopback URL would send other
    machines to themselves)."""
    if not cfg.advertise:
        return ()
    if cfg.public_urls:
        return cfg.public_urls
    if cfg.peer_host not in WILDCARDS:
        return (signal_url(cfg.peer_host, port),)
    hosts = list(cfg.transport.ice_addresses)
    if not hosts:
        import ifaddr  # the interface list aioice also uses

        hosts = sorted({str(ip.ip) for adapter in ifaddr.get_adapters() for ip in adapter.ips
                        if isinstance(ip.ip, str) and not ip.ip.startswith("127.")})
    return tuple(signal_url(h, port) for h in (hosts or ["127.0.0.1"])[:8])
