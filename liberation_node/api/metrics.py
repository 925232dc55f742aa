"""`/metrics` in the Prometheus text exposition format (version 0.0.4).

Written by hand rather than with prometheus-client: every number already sits
in the node's status and counters, so tables of (key, metric, help) are all it
takes (the tests parse the output with prometheus-client's own parser). A key
the node does not report is left out rather than reported as zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._http import Refusals

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

COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("bytes_received", "received_bytes_total", "Bytes received on peer data channels."),
    ("bytes_sent", "sent_bytes_total", "Bytes sent on peer data channels."),
    ("messages_received", "received_messages_total",
     "Data channel messages (batches of frames) received."),
    ("messages_sent", "sent_messages_total", "Data channel messages sent."),
    ("links_opened", "links_opened_total", "Data channels opened, dialed or answered."),
    ("events_published", "events_published_total", "Events published on the event bus."),
    ("events_dropped", "events_dropped_total",
     "Events a slow event-stream subscriber missed."),
    ("bans", "peer_bans_total", "Peers banned for their score (protocols/sync.md §4.7)."),
)
LABELLED: tuple[tuple[str, str, str, str], ...] = (  # (counter, metric, label, help)
    ("penalties", "peer_penalties_total", "penalty",
     "Penalties that lowered a peer's score, by kind (protocols/sync.md §4.7)."),
    ("signals_dropped", "relayed_signals_dropped_total", "why",
     "SIGNAL frames not relayed, by why (protocols/sync.md §7.3)."),
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


def _family(lines: list[str], kind: str, name: str, help_text: str,
            samples: list[tuple[str, str]]) -> None:
    lines += [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} {kind}"]
    lines += [f"{PREFIX}{name}{labels} {value}" for labels, value in samples]


def _store_sizes(lines: list[str], store: Mapping[str, Any]) -> None:
    """The store's size by kind (store/sizes.py): op headers per op kind, post contents,
    records; the files; what retention may drop and has dropped."""
    kinds = store.get("kinds")
    if isinstance(kinds, Mapping):
        for field, name, help_text in (
                ("bytes", "store_bytes", "Bytes held, by kind: op headers per op kind, post "
                 "contents (texts), records."),
                ("count", "store_items", "Items held, by kind (as liberation_store_bytes).")):
            samples = [(f'{{kind="{_label(kind)}"}}', value) for kind, sizes in
                       sorted(kinds.items()) if isinstance(sizes, Mapping)
                       and (value := _number(sizes.get(field))) is not None]
            if samples:
                _family(lines, "gauge", name, help_text, samples)
    files = [(f'{{file="{label}"}}', value) for key, label in (("file_bytes", "database"),
                                                               ("wal_bytes", "wal"))
             if (value := _number(store.get(key))) is not None]
    if files:
        _family(lines, "gauge", "store_file_bytes", "Size of the store's files.", files)
    retention = store.get("retention")
    if isinstance(retention, Mapping):
        for key, kind, name, help_text in (
                ("droppable_bytes", "gauge", "retention_droppable_bytes",
                 "Bytes of other people's post contents that retention may drop."),
                ("budget_bytes", "gauge", "retention_budget_bytes",
                 "The retention budget for those bytes (0: no limit)."),
                ("dropped", "counter", "retention_dropped_total",
                 "Post contents dropped by retention since the node started.")):
            value = _number(retention.get(key))
            if value is not None:
                _family(lines, kind, name, help_text, [("", value)])


def render(status: Mapping[str, Any], counters: Mapping[str, Any], refusals: Refusals,
           digest_age_s: float) -> str:
    """The exposition text for one scrape; `digest_age_s` is how long the digest held still."""
    lines: list[str] = []
    info = ",".join(f'{key}="{_label(status[key])}"'
                    for key in ("node_id", "network", "version") if key in status)
    _family(lines, "gauge", "info", "This node; the value is always 1.", [(f"{{{info}}}", "1")])
    peers = status.get("peers") or []
    _family(lines, "gauge", "peers", "Peers with an open session.", [("", str(len(peers)))])
    rtts = [(f'{{peer="{_label(p.get("id"))}"}}', value) for p in peers
            if isinstance(p, Mapping) and (value := _number(p.get("rtt_ms"))) is not None]
    if rtts:
        _family(lines, "gauge", "peer_rtt_milliseconds", "Round-trip time to each peer.", rtts)
    for key, name, help_text in GAUGES:
        value = _number(status.get(key))
        if value is not None:
            _family(lines, "gauge", name, help_text, [("", value)])
    writable = status.get("writable")
    if isinstance(writable, bool):
        _family(lines, "gauge", "writable",
                "1 while local writes are accepted, 0 while paused (own feed being checked "
                "with peers, or the store cannot commit).", [("", str(int(writable)))])
    store = status.get("store")
    if isinstance(store, Mapping) and isinstance(store.get("ok"), bool):
        _family(lines, "gauge", "store_ok", "1 while the store commits, 0 while it fails.",
                [("", str(int(store["ok"])))])
        queued = _number(store.get("queued_ops"))
        if queued is not None:
            _family(lines, "gauge", "store_queued_ops", "Ops waiting for the store's commit.",
                    [("", queued)])
        _store_sizes(lines, store)
    offset = _number(status.get("clock_offset_ms"))
    if offset is not None:
        _family(lines, "gauge", "clock_offset_milliseconds",
                "This node's clock minus the median of its peers' (sync.md §4.4).",
                [("", offset)])
    _family(lines, "gauge", "digest_age_seconds",
            "Seconds the replica digest has not changed, as seen by scrapes.",
            [("", f"{digest_age_s:.3f}")])
    for key, name, help_text in COUNTERS:
        value = _number(counters.get(key))
        if value is not None:
            _family(lines, "counter", name, help_text, [("", value)])
    for key, name, label, help_text in LABELLED:
        values = counters.get(key)
        if isinstance(values, Mapping):
            _family(lines, "counter", name, help_text,
                    [(f'{{{label}="{_label(k)}"}}', str(v)) for k, v in sorted(values.items())])
    rejections = counters.get("rejections")
    if isinstance(rejections, Mapping):
        _family(lines, "counter", "rejected_inputs_total",
                "Ops, records and frames from peers refused, by reason (protocols/ops.md §7).",
                [(f'{{reason="{_label(reason)}"}}', str(count))
                 for reason, count in sorted(rejections.items())])
    _family(lines, "counter", "http_refused_requests_total",
            "HTTP requests refused, by port and status.",
            [(f'{{port="{_label(port)}",status="{status_code}"}}', str(count))
             for (port, status_code), count in sorted(refusals.counts.items())])
    _family(lines, "counter", "http_malformed_requests_total",
            "HTTP requests that could not be parsed, by port.",
            [(f'{{port="{_label(port)}"}}', str(count))
             for port, count in sorted(refusals.malformed.items())])
    _family(lines, "counter", "http_refused_connections_total",
            "Connections closed at once, over the port's caps, by port.",
            [(f'{{port="{_label(port)}"}}', str(count))
             for port, count in sorted(refusals.connections.items())])
    _family(lines, "counter", "http_aborted_requests_total",
            "HTTP requests whose client went away before the answer, by port.",
            [(f'{{port="{_label(port)}"}}', str(count))
             for port, count in sorted(refusals.gone.items())])
    return "\n".join(lines) + "\n"
