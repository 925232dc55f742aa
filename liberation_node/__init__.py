"""liberation-node: one identical peer-to-peer daemon per participant.

The protocol core (`liberation_node.core`) is sans-IO: time and randomness are
arguments, and it never touches sockets, files, the clock or the event loop.
"""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
