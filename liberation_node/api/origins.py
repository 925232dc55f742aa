"""Web origins as browsers send them (RFC 6454), for `--allow-origin` (transport.md §3.9).

Apart from api/peer.py so that checking the configuration needs no HTTP library.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def parse_origin(text: str) -> str:
    """An origin as browsers send it in `Origin` (RFC 6454): scheme://host[:port], lower
    case, without a default port; ValueError says what is wrong."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"origin {text!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname \
            or parts.path not in ("",) or parts.query or parts.fragment or parts.username:
        raise ValueError(f"origin {text!r}: expected scheme://host[:port], e.g. "
                         "https://app.example.org (no path, not 'null' or '*')")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")
