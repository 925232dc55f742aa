"""The resource ledger: `ledger`, `balance` to read; `register`, `claim`, `transfer` to act.

Amounts travel as integer cents (API contract) and are shown as dollars.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from .common import client, data_dir_option, echo_json, json_option, node_errors
from .output import dollars, short, table, when

_limit_option = click.option("--limit", type=click.IntRange(1, 500), default=50,
                             show_default=True, help="Rows per page.")
_cursor_option = click.option("--cursor", default=None, metavar="CURSOR",
                              help="Start at this page (printed after a page with more).")


@click.command("ledger", short_help="Show the pool and every human's balance.")
@data_dir_option
@json_option
@_limit_option
@_cursor_option
@click.option("--all", "every", is_flag=True, help="Every human, page after page.")
def ledger(data_dir: Path | None, as_json: bool, limit: int, cursor: str | None,
           every: bool) -> None:
    """Show the pool, your account and the registered humans with their balances."""
    node = client(data_dir)
    with node_errors():
        summary = node.ledger()
        if every:
            humans, following = list(node.every("/api/v1/ledger/humans", "humans")), None
        else:
            humans, following = node.page("/api/v1/ledger/humans", "humans", limit, cursor)
    if as_json:
        echo_json({"ledger": summary, "humans": humans, "next_cursor": following})
        return
    pool = summary.get("pool")
    pool = pool if isinstance(pool, dict) else {}
    click.echo(f"{'pool':<9} {dollars(pool.get('available_cents'))} available of "
               f"{dollars(pool.get('total_cents'))} "
               f"({dollars(pool.get('distributed_cents'))} distributed)")
    click.echo(f"{'humans':<9} {summary.get('humans', '?')} registered")
    me = summary.get("me")
    if isinstance(me, dict):
        click.echo(f"{'you':<9} {me.get('name') or short(me.get('id'))}: balance "
                   f"{dollars(me.get('balance_cents'))}, spendable "
                   f"{dollars(me.get('spendable_cents'))}")
    else:
        click.echo(f"{'you':<9} not registered (liberation-node register NAME)")
    if humans:
        click.echo()
        rows = [(h.get("name") or "-", dollars(h.get("balance_cents")),
                 dollars(h.get("spendable_cents")), dollars(h.get("total_received_cents")),
                 when(h.get("last_claim_ms")) if h.get("last_claim_ms") else "never",
                 h.get("status", "?"), h.get("id")) for h in humans]
        for line in table(("NAME", "BALANCE", "SPENDABLE", "RECEIVED", "LAST CLAIM", "STATUS",
                           "ID"), rows, right={1, 2, 3}):
            click.echo(line)
    _more(following, "ledger")


def _more(cursor: str | None, command: str) -> None:
    if cursor is not None:
        click.echo(f"more: liberation-node {command} --cursor {cursor} (or --all)", err=True)


@click.command("balance", short_help="Show a human's balance and recent transactions.")
@data_dir_option
@json_option
@click.argument("node_id", metavar="[ID]", required=False)
@click.option("--limit", type=click.IntRange(1, 500), default=10, show_default=True,
              help="Recent transactions to show.")
def balance(data_dir: Path | None, as_json: bool, node_id: str | None, limit: int) -> None:
    """Show the balance of human ID (default: this node's own) and their recent
    transactions."""
    node = client(data_dir)
    with node_errors():
        if node_id is None:
            human = node.ledger().get("me")
            if not isinstance(human, dict):
                raise click.ClickException("this node is not registered as a human (register "
                                           "with: liberation-node register NAME)")
        else:
            human = node.human(node_id)
            if human is None:
                raise click.ClickException(f"{node_id} is not registered as a human")
        subject = str(human.get("id"))
        history, following = node.page("/api/v1/ledger/transactions", "transactions", limit,
                                       human=subject)
    if as_json:
        echo_json({"human": human, "transactions": history, "next_cursor": following})
        return
    name = human.get("name")
    click.echo(f"{name} ({subject})" if name else subject)
    for label, key in (("balance", "balance_cents"), ("spendable", "spendable_cents"),
                       ("received", "total_received_cents")):
        click.echo(f"{label:<11} {dollars(human.get(key))}")
    click.echo(f"{'registered':<11} {when(human.get('registered_ms'))}, last claim "
               f"{when(human.get('last_claim_ms')) if human.get('last_claim_ms') else 'never'}")
    click.echo(f"{'status':<11} {human.get('status', '?')}")
    if history:
        click.echo()
        for line in table(("TIME", "KIND", "AMOUNT", "WITH", "MEMO", "STATUS"),
                          [_transaction(t, subject) for t in history], right={2}):
            click.echo(line)


def _transaction(t: dict[str, Any], subject: str) -> tuple[str, ...]:
    """One row: money leaving `subject` is negative, a transfer shows the other side."""
    amount = t.get("amount_cents")
    kind = str(t.get("kind", "?"))
    other = "-"
    if kind == "transfer":
        outgoing = t.get("human_id") == subject
        other = ("to " if outgoing else "from ") + short(
            t.get("counterparty") if outgoing else t.get("human_id"))
        if outgoing and isinstance(amount, int):
            amount = -amount
    status = str(t.get("status", "?"))
    if status == "void" and t.get("reason"):
        status = f"void ({t['reason']})"
    return (when(t.get("timestamp_ms")), kind, dollars(amount), other, t.get("memo") or "",
            status)


# -- writes ---------------------------------------------------------------------------------


@click.command("register", short_help="Register this node as a human; prints the op id.")
@data_dir_option
@click.argument("name", default="")
def register(data_dir: Path | None, name: str) -> None:
    """Register this node's identity as a human, with an optional NAME; prints the op id."""
    with node_errors():
        click.echo(client(data_dir).register(name))


@click.command("claim", short_help="Claim this week's flow; prints the op id.")
@data_dir_option
def claim(data_dir: Path | None) -> None:
    """Claim this week's flow (the current ISO week); prints the op id."""
    with node_errors():
        click.echo(client(data_dir).claim())


@click.command("transfer")
@data_dir_option
@click.argument("to", metavar="TO")
@click.argument("amount", metavar="AMOUNT")
@click.option("--cents", is_flag=True, help="AMOUNT is a whole number of cents.")
@click.option("--memo", default="", help="A note for the recipient.")
def transfer(data_dir: Path | None, to: str, amount: str, cents: bool, memo: str) -> None:
    """Pay AMOUNT to node id TO; prints the op id.

    AMOUNT is in dollars with at most two decimals (12, 12.5, 12.50), or with
    --cents a whole number of cents (1250). No signs, separators or exponents.
    """
    amount_cents = parse_amount(amount, cents)
    with node_errors():
        click.echo(client(data_dir).transfer(to, amount_cents, memo))


def parse_amount(text: str, cents: bool) -> int:
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
