"""The `liberation-node` command: a thin click layer over the data directory and the store.

Each command resolves its options into a data directory (datadir.py) and hands
over; nothing here decides protocol matters. Exit codes: 0 done; 1 the data
directory or its store cannot be used (one line on stderr, no traceback); 2 bad
usage (click's own errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import click

from . import __version__, datadir
from .api.client import ControlClient, ControlError
from .config import DEFAULT_CONTROL_PORT, DEFAULT_PEER_PORT
from .core.bodies import CHANNELS, MAX_PRIORITY, MIN_PRIORITY
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


class _Commands(click.Group):
    """Commands whose modules load only when used: the simulator is heavy to import
    and `run` should start fast (scripts/bench_daemons.py startup)."""

    lazy: ClassVar[dict[str, tuple[str, str]]] = {
        "simulate": ("liberation_node.sim.command", "simulate")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr = self.lazy[name]
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--name", default="", help="A display name, published in node.info.")
@click.option("--peer-host", default="0.0.0.0", show_default=True,
              help="Address of the peer port (signaling, reachable from the network).")
@click.option("--peer-port", type=click.IntRange(0, 65535), default=DEFAULT_PEER_PORT,
              show_default=True, help="Peer port; 0 picks a free one.")
@click.option("--control-port", type=click.IntRange(0, 65535), default=DEFAULT_CONTROL_PORT,
              show_default=True, help="Control port on 127.0.0.1 (API, status); 0 picks one.")
@click.option("--bootstrap", multiple=True, metavar="URL[#ID]|FILE.toml",
              help="A peer's signaling URL (optionally #its node id) or a bootstrap list; "
                   "repeatable.")
@click.option("--ice-server", multiple=True, metavar="URL",
              help="STUN/TURN server (stun:host:port, turn:user:pass@host:port); default none.")
@click.option("--ice-address", multiple=True, metavar="IP",
              help="Local address ICE may use; repeatable [default: all but loopback].")
@click.option("--public-url", multiple=True, metavar="URL",
              help="Signaling URL to advertise instead of the bound address; repeatable.")
@click.option("--no-advertise", is_flag=True,
              help="Advertise no URL (behind NAT): peers reach this node by relay only.")
@click.option("--no-mdns", is_flag=True,
              help="Do not advertise or browse by mDNS (LAN discovery is on by default).")
@click.option("--mdns-interface", multiple=True, metavar="NAME",
              help="Interface for mDNS; repeatable [default: every one with an address].")
@click.option("--mdns-family", type=click.Choice(["all", "ipv4", "ipv6"]), default="all",
              show_default=True, help="Address families mDNS uses.")
@click.option("--low", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Dial more peers below this many.")
@click.option("--high", type=click.IntRange(1, 128), default=8, show_default=True,
              help="Drop the worst peers above this many.")
@click.option("--log-json", is_flag=True, help="Structured JSON logs on stderr.")
def run(data_dir: Path | None, network: str | None, name: str, peer_host: str, peer_port: int,
        control_port: int, bootstrap: tuple[str, ...], ice_server: tuple[str, ...],
        ice_address: tuple[str, ...], public_url: tuple[str, ...], no_advertise: bool,
        no_mdns: bool, mdns_interface: tuple[str, ...], mdns_family: str, low: int, high: int,
        log_json: bool) -> None:
    """Run the node: join the mesh, sync, serve the control API. Ctrl-C stops it
    cleanly (a second Ctrl-C forces). Creates the identity on first use."""
    from . import daemon
    from .bootstrap import BootstrapError, resolve
    from .config import NodeConfig
    from .core.peering import PeeringConfig
    from .discovery import MdnsConfig
    from .transport import TransportConfig

    with _one_line_errors():
        node_dir, created = datadir.init(datadir.resolve_path(data_dir), network)
    if created:
        click.echo(f"created {node_dir.path}; node id {node_dir.identity.text}", err=True)
    try:
        transport = TransportConfig(ice_servers=ice_server, ice_addresses=ice_address)
        mdns = MdnsConfig(enabled=not no_mdns, interfaces=mdns_interface,
                          ipv4=mdns_family != "ipv6", ipv6=mdns_family != "ipv4")
        resolve(bootstrap, node_dir.config.network)  # refuse bad lists before starting
        if low > high:
            raise ValueError(f"--low {low} is above --high {high}")
    except (ValueError, BootstrapError) as exc:
        raise click.BadParameter(str(exc)) from None
    config = NodeConfig(
        data_dir=node_dir.path, network=node_dir.config.network, name=name,
        peer_host=peer_host, peer_port=peer_port, control_port=control_port,
        public_urls=public_url, advertise=not no_advertise, bootstrap=bootstrap,
        transport=transport, peering=PeeringConfig(low=low, high=high), mdns=mdns,
        log_json=log_json)
    try:
        daemon.run(config)
    except OSError as exc:  # a port in use, most likely
        raise click.ClickException(f"cannot start: {exc}") from None


@main.command()
@_data_dir_option
@_network_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def summary(data_dir: Path | None, network: str | None, as_json: bool) -> None:
    """Print what the replica on disk holds (no node needs to run; creates it if new)."""
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


# -- commands that talk to the running node (api/client.py) -------------------------------
# Exit 1 with one line also when no node runs or the node refuses the request.


@contextlib.contextmanager
def _node_errors() -> Iterator[None]:
    try:
        yield
    except (ControlError, datadir.DataDirError) as exc:
        raise click.ClickException(str(exc).replace("\n", " ")) from None


def _client(data_dir: Path | None) -> ControlClient:
    return ControlClient(datadir.resolve_path(data_dir))


@main.command()
@_data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the node's status as JSON.")
def status(data_dir: Path | None, as_json: bool) -> None:
    """Show the running node: id, network, peers with round-trip times, ops, digest."""
    with _node_errors():
        info = _client(data_dir).status()
    if as_json:
        click.echo(json.dumps(info))
        return
    rows = [("node id", info.get("node_id")), ("network", info.get("network")),
            ("version", info.get("version")), ("uptime", _duration(info.get("uptime_s"))),
            ("peers", len(info.get("peers") or []))]
    for label, value in rows:
        click.echo(f"{label:<10} {value if value is not None else '?'}")
    for peer in info.get("peers") or []:
        rtt = peer.get("rtt_ms")
        click.echo(f"{'':<10} {peer.get('id')}  rtt {'?' if rtt is None else rtt} ms"
                   f"  {peer.get('address') or ''}")
    click.echo(f"{'ops':<10} {info.get('ops')} (pending {info.get('pending', '?')})")
    if "records" in info:
        click.echo(f"{'records':<10} {info['records']}")
    if "humans" in info:
        click.echo(f"{'humans':<10} {info['humans']} registered")
    if isinstance(info.get("pool_available_cents"), int):
        click.echo(f"{'pool':<10} {_dollars(info['pool_available_cents'])} available")
    click.echo(f"{'digest':<10} {info.get('digest')}")


def _duration(seconds: object) -> str | None:
    if not isinstance(seconds, int | float):
        return None
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


@main.command()
@_data_dir_option
@click.argument("text")
@click.option("--channel", type=click.Choice(CHANNELS), default=None,
              help="Channel [default: direct with --to, else social].")
@click.option("--priority", type=click.IntRange(MIN_PRIORITY, MAX_PRIORITY), default=1,
              show_default=True)
@click.option("--to", "to", metavar="ID", default=None,
              help="Recipient node id, for a direct message.")
def post(data_dir: Path | None, text: str, channel: str | None, priority: int,
         to: str | None) -> None:
    """Post TEXT as a message; prints the new op id."""
    with _node_errors():
        click.echo(_client(data_dir).post(text, channel or ("direct" if to else "social"),
                                          priority, to))


@main.command()
@_data_dir_option
@click.argument("name", default="")
def register(data_dir: Path | None, name: str) -> None:
    """Register this node's identity as a human, with an optional NAME; prints the op id."""
    with _node_errors():
        click.echo(_client(data_dir).register(name))


@main.command()
@_data_dir_option
def claim(data_dir: Path | None) -> None:
    """Claim this week's flow (the current ISO week); prints the op id."""
    with _node_errors():
        click.echo(_client(data_dir).claim())


@main.command()
@_data_dir_option
@click.argument("to", metavar="TO")
@click.argument("amount", metavar="AMOUNT")
@click.option("--cents", is_flag=True, help="AMOUNT is a whole number of cents.")
@click.option("--memo", default="", help="A note for the recipient.")
def transfer(data_dir: Path | None, to: str, amount: str, cents: bool, memo: str) -> None:
    """Pay AMOUNT to node id TO; prints the op id.

    AMOUNT is in dollars with at most two decimals (12, 12.5, 12.50), or with
    --cents a whole number of cents (1250). No signs, separators or exponents.
    """
    amount_cents = _parse_amount(amount, cents)
    with _node_errors():
        click.echo(_client(data_dir).transfer(to, amount_cents, memo))


def _parse_amount(text: str, cents: bool) -> int:
    """Dollars "12.50" (or cents "1250") as integer cents: no floats near money."""
    match = re.fullmatch(r"(\d{1,16})" if cents else r"(\d{1,14})(?:\.(\d{1,2}))?", text)
    if match is None:
        raise click.BadParameter("a whole number of cents, like 1250" if cents else
                                 "dollars with at most two decimals, like 12.50",
                                 param_hint="AMOUNT")
    value = int(match[1]) if cents else int(match[1]) * 100 + int((match[2] or "").ljust(2, "0"))
    if value <= 0:
        raise click.BadParameter("must be more than zero", param_hint="AMOUNT")
    return value


@main.command()
@_data_dir_option
@click.argument("op_id", metavar="OP_ID")
def retract(data_dir: Path | None, op_id: str) -> None:
    """Withdraw your own post OP_ID (its op id in hex); prints the retract op's id."""
    with _node_errors():
        click.echo(_client(data_dir).retract(op_id))


