"""The `liberation-node` command: a thin click layer over the data directory, the
configuration and the running node's control API.

Each subcommand lives in a module of `liberation_node.commands` (or the
simulator's), imported only when that command runs or help lists it: a command
that talks to the running node must not pay for the daemon's imports
(scripts/bench_cli.py). Nothing here decides protocol matters.

Exit statuses: 0 done; 1 the data directory, the configuration or the node's
answer says no (one line on stderr, no traceback); 2 bad usage (click's own
errors); 3 no node is running for the data directory.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any, ClassVar

import click

from . import __version__, datadir
from .commands.common import data_dir_errors, data_dir_option
from .commands.output import dollars


def _check_network(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            datadir.check_network(value)
        except datadir.DataDirError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


class _Commands(click.Group):
    """Commands whose modules load only when used."""

    lazy: ClassVar[dict[str, str]] = {
        "run": "liberation_node.commands.run:run",
        "config": "liberation_node.commands.run:config_command",
        **{name: f"liberation_node.commands.node:{name}"
           for name in ("status", "peers", "topology", "address", "stop")},
        "open": "liberation_node.commands.node:open_page",
        "events": "liberation_node.commands.events:events",
        **{name: f"liberation_node.commands.ledger:{name}"
           for name in ("ledger", "balance", "register", "claim", "transfer")},
        **{name: f"liberation_node.commands.feed:{name}" for name in ("feed", "post", "retract")},
        "simulate": "liberation_node.sim.command:simulate",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr = self.lazy[name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=datadir.APP_NAME)
def main() -> None:
    """A peer-to-peer mesh node: signed operations, CRDT replicas, gossip.

    Start one with `liberation-node run`; the other commands read and act on the
    running node (exit status 3 when none runs for the data directory).
    """


@main.command()
@data_dir_option
@click.option("--network", default=None, callback=_check_network,
              help="Network name, fixed when the data directory is made [default: "
                   "$LIBERATION_NETWORK, else liberation].")
def init(data_dir: Path | None, network: str | None) -> None:
    """Create the identity and the store, and print the node id."""
    import asyncio
    import os

    from . import config

    with data_dir_errors():
        path = datadir.resolve_path(data_dir)
        wanted = config.resolve(path, None, os.environ, {"network": network}).values["network"]
        node_dir, created = datadir.init(path, None if wanted.source == "default" else
                                         wanted.value)
        asyncio.run(_init_store(node_dir))
    state = "created" if created else "already exists, kept as it is:"
    click.echo(f"{state} {node_dir.path} (network {node_dir.config.network})", err=True)
    click.echo(node_dir.identity.text)


@main.command("id")
@data_dir_option
def show_id(data_dir: Path | None) -> None:
    """Print the node id."""
    with data_dir_errors():
        node_dir = datadir.load(datadir.resolve_path(data_dir))
    click.echo(node_dir.identity.text)


@main.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def summary(data_dir: Path | None, as_json: bool) -> None:
    """Print what the replica on disk holds (no node needs to run)."""
    with data_dir_errors():
        # load, never init: a mistyped --data-dir must not make a new identity
        node_dir = datadir.load(datadir.resolve_path(data_dir))
    import asyncio

    from .runtime import tune_gc

    tune_gc()
    with data_dir_errors():
        # The edge of the program: the one place here that reads the clock.
        summary = asyncio.run(_summary(node_dir, now=time.time_ns() // 1_000_000))
    if as_json:
        click.echo(json.dumps(summary))
        return
    for label, key in (("node id", "node_id"), ("network", "network"),
                       ("data dir", "data_dir"), ("ops", "ops"), ("authors", "authors"),
                       ("records", "records"), ("digest", "digest")):
        click.echo(f"{label:<10} {summary[key]}")
    click.echo(f"{'pool':<10} {dollars(summary['pool_available_cents'])} available")
    click.echo(f"{'humans':<10} {summary['humans']} registered")


async def _init_store(node_dir: datadir.DataDir) -> None:
    from .store import StoreError, bind_network

    async with node_dir.open_store() as store:
        try:
            await bind_network(store, node_dir.config.network)
        except StoreError as exc:
            raise datadir.DataDirError(str(exc)) from None


async def _summary(node_dir: datadir.DataDir, now: int) -> dict[str, Any]:
    from .store import SqliteStore, StoreError, open_replica

    # Read-only: a running node may hold the store (and its lock); this changes nothing.
    try:
        async with SqliteStore(node_dir.store_path, read_only=True) as store:
            replica = await open_replica(store, node_dir.config.network, now=now,
                                         read_only=True)
    except StoreError as exc:
        raise datadir.DataDirError(str(exc)) from None
    ledger = replica.ledger
    return {
        "node_id": node_dir.identity.text, "network": replica.network,
        "data_dir": str(node_dir.path),
        "ops": len(replica.ops),
        "authors": len(replica.feeds),
        "records": len(replica.records),
        "digest": replica.digest().hex(),
        # Cents, as on the wire: JSON readers need not trust floats with money.
        "pool_available_cents": ledger.pool_available,
        "humans": sum(1 for acct in ledger.accounts.values() if acct.registered_at is not None),
    }
