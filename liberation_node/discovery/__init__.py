"""Finding peers on the LAN by mDNS/DNS-SD (DESIGN §4; protocols/discovery.md).

`dnssd` is sans-IO (the service type, the TXT record, whether a service found is a
peer); `mdns` is the zeroconf adapter the node runs (imported only when mDNS is on);
`interfaces` chooses the interfaces; `config` holds the settings.
"""

from .config import MdnsConfig

__all__ = ["MdnsConfig"]
