"""`/metrics` in the Prometheus text exposition format (version 0.0.4), from `status()`.

Written by hand rather than with prometheus-client: every number already sits
in the node's status, so a table of (status key, metric, help) is all it takes.
A key the status lacks is left out rather than reported as zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "liberation_"

GAUGES: tuple[tuple[str, str, str], ...] = (
    ("ops", "ops", "Operations held in the replica."),
    ("records", "records", "Records (node.info, node.links) held in the replica."),
    ("pending", "pending_ops", "Operations waiting for their causal past."),
    ("humans", "humans", "Registered identities."),
    ("pool_available_cents", "pool_available_cents", "Resource pool still available, in cents."),
    ("uptime_s", "uptime_seconds", "Seconds since the node started."),
)


def _label(value: object) -> str:
    text = str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return repr(float(value)) if isinstance(value, float) else str(value)


def _gauge(lines: list[str], name: str, help_text: str, samples: list[tuple[str, str]]) -> None:
    lines += [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} gauge"]
    lines += [f"{PREFIX}{name}{labels} {value}" for labels, value in samples]


def render(status: Mapping[str, Any], digest_age_s: float) -> str:
    """The exposition text for one scrape; `digest_age_s` is how long the digest held still."""
    lines: list[str] = []
    info = ",".join(f'{key}="{_label(status[key])}"'
                    for key in ("node_id", "network", "version") if key in status)
    _gauge(lines, "info", "This node; the value is always 1.", [(f"{{{info}}}", "1")])
    peers = status.get("peers") or []
    _gauge(lines, "peers", "Peers with an open session.", [("", str(len(peers)))])
    rtts = [(f'{{peer="{_label(p.get("id"))}"}}', value) for p in peers
            if isinstance(p, Mapping) and (value := _number(p.get("rtt_ms"))) is not None]
    if rtts:
        _gauge(lines, "peer_rtt_milliseconds", "Round-trip time to each peer.", rtts)
    for key, name, help_text in GAUGES:
        value = _number(status.get(key))
        if value is not None:
            _gauge(lines, name, help_text, [("", value)])
    _gauge(lines, "digest_age_seconds",
           "Seconds the replica digest has not changed, as seen by scrapes.",
           [("", f"{digest_age_s:.3f}")])
    return "\n".join(lines) + "\n"
