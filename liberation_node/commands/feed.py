"""The message feed: `feed` to read; `post` and `retract` to write."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import click

from ..api.client import ControlClient
from .common import client, data_dir_option, echo_json, json_option, node_errors
from .output import table, when, who

# core/bodies.py CHANNELS and priorities, repeated so that this command need not
# load the core (tests/cli/test_commands.py checks that they agree).
CHANNELS = ("billboard", "social", "media", "direct")
MIN_PRIORITY, MAX_PRIORITY = 1, 10
OP_ID_HEX = 64
MIN_PREFIX = 6
# Why a message's text is not shown (core/reading.py; docs/api.md `unreadable`).
UNREADABLE = {
    "not_for_this_node": "[private: between two other nodes]",
    "dropped": "[text not kept on this node]",
    "retracted": "[retracted: text removed]",
    "invalid": "[unreadable]",
}


@click.command("feed", short_help="Read the message feed, newest first.")
@data_dir_option
@json_option
@click.option("--channel", type=click.Choice(CHANNELS), default=None,
              help="Only this channel.")
@click.option("--author", metavar="ID", default=None, help="Only posts by this node id.")
@click.option("--to", "to", metavar="ID", default=None,
              help="Only direct messages to this node id.")
@click.option("--state", type=click.Choice(("active", "retracted", "all")), default="active",
              show_default=True, help="Posts still standing, withdrawn ones, or both.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Messages per page.")
@click.option("--cursor", default=None, metavar="CURSOR",
              help="Start at this page (printed after a page with more).")
@click.option("--all", "every", is_flag=True, help="Every message, page after page.")
def feed(data_dir: Path | None, as_json: bool, channel: str | None, author: str | None,
         to: str | None, state: str, limit: int, cursor: str | None, every: bool) -> None:
    """Read the message feed, newest first."""
    node = client(data_dir)
    query = {"channel": channel, "author": author, "to": to, "state": state}
    with node_errors():
        if every:
            messages, following = list(node.every("/api/v1/messages", "messages", **query)), None
        else:
            messages, following = node.page("/api/v1/messages", "messages", limit, cursor,
                                             **query)
    if as_json:
        echo_json({"messages": messages, "next_cursor": following})
        return
    if not messages:
        click.echo("no messages", err=True)
    else:
        for line in table(("TIME", "ID", "CHANNEL", "FROM", "TEXT"),
                          [_row(m) for m in messages]):
            click.echo(line)
    if following is not None:
        click.echo(f"more: liberation-node feed --cursor {following} (or --all)", err=True)


def _row(message: dict[str, Any]) -> tuple[str, ...]:
    channel = str(message.get("channel", "?"))
    priority = message.get("priority")
    if isinstance(priority, int) and priority != MIN_PRIORITY:
        channel += f" !{priority}"
    sender = who(message.get("author"), message.get("author_name"))
    if message.get("to"):
        sender += f" -> {who(message.get('to'), None)}"
    text = message.get("text")
    if not isinstance(text, str):  # this node cannot show it, and says why (docs/api.md)
        text = UNREADABLE.get(str(message.get("unreadable")), "[cannot be shown]")
    elif message.get("retracted"):
        text = f"[retracted] {text}"
    if message.get("encrypted") and message.get("readable"):
        text = f"[private] {text}"
    if message.get("forked"):  # its author equivocated: void (protocols/ops.md §9)
        text = f"[void: forked] {text}"
    op_id = message.get("id")
    return (when(message.get("timestamp_ms")), op_id[:8] if isinstance(op_id, str) else "?",
            channel, sender, text)


@click.command("post", short_help="Post a message; prints the op id. With --to: private.")
@data_dir_option
@click.argument("text")
@click.option("--channel", type=click.Choice(CHANNELS), default=None,
              help="Channel [default: direct with --to, else social].")
@click.option("--priority", type=click.IntRange(MIN_PRIORITY, MAX_PRIORITY), default=1,
              show_default=True)
@click.option("--to", "to", metavar="ID", default=None,
              help="Recipient node id: a private, end-to-end encrypted message.")
def post(data_dir: Path | None, text: str, channel: str | None, priority: int,
         to: str | None) -> None:
    """Post TEXT as a message; prints the new op id.

    With --to, a direct message: end-to-end encrypted, so that only the recipient's
    node and this one can read it. Every node still stores and relays it, and sees
    that this node wrote a direct message, when, and its size rounded up (see
    protocols/ops.md §13.1). Other posts are public."""
    with node_errors():
        click.echo(client(data_dir).post(text, channel or ("direct" if to else "social"),
                                         priority, to))


@click.command("retract", short_help="Withdraw one of your posts; prints the op id.")
@data_dir_option
@click.argument("op_id", metavar="OP_ID")
def retract(data_dir: Path | None, op_id: str) -> None:
    """Withdraw your own post OP_ID: its op id in hex, or the first characters of it
    (at least 6, as `feed` shows them); prints the retract op's id."""
    op_id = op_id.lower()
    if not MIN_PREFIX <= len(op_id) <= OP_ID_HEX or not set(op_id) <= set(string.hexdigits):
        raise click.BadParameter(f"an op id: {OP_ID_HEX} hex characters, or at least "
                                 f"{MIN_PREFIX} of its first ones", param_hint="OP_ID")
    node = client(data_dir)
    with node_errors():
        full = op_id if len(op_id) == OP_ID_HEX else _own_post(node, op_id)
        click.echo(node.retract(full))


def _own_post(node: ControlClient, prefix: str) -> str:
    """The id of this node's one active post whose id starts with `prefix`."""
    me = node.status().get("node_id")
    found = [m.get("id") for m in node.every("/api/v1/messages", "messages", author=me,
                                             state="active")
             if isinstance(m.get("id"), str) and m["id"].startswith(prefix)]
    if len(found) != 1:
        raise click.ClickException(
            f"no active post of yours starts with {prefix}" if not found else
            f"{len(found)} of your posts start with {prefix}: give more of the id")
    return str(found[0])
