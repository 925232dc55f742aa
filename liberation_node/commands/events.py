"""`events`: follow the running node's event stream (GET /api/v1/events, a WebSocket)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from .common import client, data_dir_option, node_errors
from .output import dollars, oneline, short


@click.command("events", short_help="Follow the node's events as they happen.")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print each event as one JSON line.")
@click.option("--type", "types", multiple=True, metavar="PREFIX",
              help="Only events whose type starts with PREFIX (e.g. truth., mesh.); "
                   "repeatable.")
@click.option("-n", "--count", type=click.IntRange(min=1), default=None,
              help="Stop after this many events [default: follow until Ctrl-C].")
def events(data_dir: Path | None, as_json: bool, types: tuple[str, ...],
           count: int | None) -> None:
    """Follow what happens on the node as it happens: messages spreading, ledger
    changes, peers connecting and leaving, health checks, your own actions."""
    node = client(data_dir)
    shown = 0

    def opened() -> None:
        click.echo(f"following the events of the node for {node.data_dir} (Ctrl-C stops)",
                   err=True)

    try:
        with node_errors():
            for event in node.events(opened):
                kind = str(event.get("type", "?"))
                if types and not kind.startswith(types):
                    continue
                click.echo(json.dumps(event, ensure_ascii=False) if as_json else _line(event))
                shown += 1
                if count is not None and shown >= count:
                    return
    except KeyboardInterrupt:  # the usual way to stop following
        return
    click.echo("the node closed the event stream (it is stopping)", err=True)


def _line(event: dict[str, Any]) -> str:
    """`HH:MM:SS type key=value ...`, with ids shortened and cents in dollars."""
    fields = []
    for key, value in event.items():
        if key == "type":
            continue
        if isinstance(value, str) and value.startswith("ln") and len(value) > 40:
            value = short(value)
        elif isinstance(value, str) and len(value) == 64 and key in ("op", "id"):
            value = value[:12]
        elif key.endswith("_cents") or key == "amount":
            value = dollars(value)
        elif isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"))
        fields.append(f"{key}={oneline(value, 80)}")
    return f"{time.strftime('%H:%M:%S')} {event.get('type', '?')}  {' '.join(fields)}".rstrip()
