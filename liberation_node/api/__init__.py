"""The node's HTTP surfaces (DESIGN §4), in aiohttp.

    control.py   the control port: JSON API, event WebSocket, /metrics (loopback, token)
    peer.py      the peer port: WebRTC signaling and node info (the network)
    client.py    the CLI's client of the control port
    runfile.py   <data dir>/run.json: where a running node listens
"""
