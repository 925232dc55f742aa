"""The `liberation-node` command: a thin click layer over the data directory and the store.

Each command resolves its options into a data directory (datadir.py) and hands
over; nothing here decides protocol matters. Exit codes: 0 done; 1 the data
directory or its store cannot be used (one line on stderr, no traceback); 2 bad
usage (click's own errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from . import __version__, datadir
from .core.replica import Replica
from .runtime import tune_gc
from .store import StoreError, bind_network, open_replica


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """Turn a problem with the user's files into one line on stderr and exit code 1."""
    try:
        yield
    except (datadir.DataDirError, StoreError) as exc:
        raise click.ClickException(str(exc).replace("\n", " ")) from None


def _check_network(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            datadir.check_network(value)
        except datadir.DataDirError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


_data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help=f"Data directory [default: ${datadir.ENV_DATA_DIR}, else "
         f"$XDG_DATA_HOME/{datadir.APP_NAME}, else ~/.local/share/{datadir.APP_NAME}]")
_network_option = click.option(
    "--network", default=None, callback=_check_network,
    help=f"Network name, fixed when the data directory is made [default: "
         f"{datadir.DEFAULT_NETWORK}]")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=datadir.APP_NAME)
def main() -> None:
    """A peer-to-peer mesh node: signed operations, CRDT replicas, gossip."""


@main.command()
@_data_dir_option
@_network_option
def init(data_dir: Path | None, network: str | None) -> None:
    """Create the identity and the store, and print the node id."""
    with _one_line_errors():
        node_dir, created = datadir.init(datadir.resolve_path(data_dir), network)
        asyncio.run(_init_store(node_dir))
    state = "created" if created else "already exists, kept as it is:"
    click.echo(f"{state} {node_dir.path} (network {node_dir.config.network})", err=True)
    click.echo(node_dir.identity.text)


@main.command("id")
@_data_dir_option
def show_id(data_dir: Path | None) -> None:
    """Print the node id."""
    with _one_line_errors():
        node_dir = datadir.load(datadir.resolve_path(data_dir))
    click.echo(node_dir.identity.text)


@main.command()
@_data_dir_option
@_network_option
@click.option("--no-mdns", is_flag=True, help="Do not use mDNS on the LAN (used by the daemon).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def run(data_dir: Path | None, network: str | None, no_mdns: bool, as_json: bool) -> None:
    """Open the node (creating it on first use) and print what its replica holds.

    A later version keeps running as the daemon; `--no-mdns` is accepted now
    so that command lines stay the same.
    """
    tune_gc()
    with _one_line_errors():
        node_dir, _ = datadir.init(datadir.resolve_path(data_dir), network)
        # The edge of the program: the one place here that reads the clock.
        summary = asyncio.run(_summary(node_dir, now=time.time_ns() // 1_000_000))
    if as_json:
        click.echo(json.dumps(summary))
        return
    for label, key in (("node id", "node_id"), ("network", "network"),
                       ("data dir", "data_dir"), ("ops", "ops"), ("authors", "authors"),
                       ("records", "records"), ("digest", "digest")):
        click.echo(f"{label:<10} {summary[key]}")
    click.echo(f"{'pool':<10} {_dollars(summary['pool_available_cents'])} available")
    click.echo(f"{'humans':<10} {summary['humans']} registered")


async def _init_store(node_dir: datadir.DataDir) -> None:
    async with node_dir.open_store() as store:
        await bind_network(store, node_dir.config.network)


async def _summary(node_dir: datadir.DataDir, now: int) -> dict[str, Any]:
    async with node_dir.open_store() as store:
        replica = await open_replica(store, node_dir.config.network, now=now)
    return {"node_id": node_dir.identity.text, "network": replica.network,
            "data_dir": str(node_dir.path), **_replica_summary(replica)}


def _replica_summary(replica: Replica) -> dict[str, Any]:
    ledger = replica.ledger
    return {
        "ops": len(replica.ops),
        "authors": len(replica.feeds),
        "records": len(replica.records),
        "digest": replica.digest().hex(),
        # Cents, as on the wire: JSON readers need not trust floats with money.
        "pool_available_cents": ledger.pool_available,
        "humans": sum(1 for acct in ledger.accounts.values() if acct.registered_at is not None),
    }


def _dollars(cents: int) -> str:
    whole, part = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}${whole:,}.{part:02d}"
