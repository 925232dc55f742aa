"""What the subcommands share: the --data-dir and --json options, one-line errors,
the client of the running node and the exit statuses.

Exit statuses: 0 done; 1 the command failed (one line on stderr, no traceback);
2 bad usage (click's own errors); 3 no node is running for the data directory.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import datadir

if TYPE_CHECKING:  # loaded by the commands that talk to a node, not by --version
    from ..api.client import ControlClient

EXIT_NOT_RUNNING = 3


class NotRunning(click.ClickException):
    exit_code = EXIT_NOT_RUNNING


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help=f"Data directory [default: ${datadir.ENV_DATA_DIR}, else "
         f"$XDG_DATA_HOME/{datadir.APP_NAME}, else ~/.local/share/{datadir.APP_NAME}]")

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print JSON (one object) instead of text.")


def one_line(exc: BaseException) -> str:
    return str(exc).replace("\n", " ")


@contextlib.contextmanager
def node_errors() -> Iterator[None]:
    """A failed call is one line on stderr: exit 3 when no node runs, else 1."""
    from ..api.client import ControlError, NodeNotRunning

    try:
        yield
    except NodeNotRunning as exc:
        raise NotRunning(one_line(exc)) from None
    except (ControlError, datadir.DataDirError) as exc:
        raise click.ClickException(one_line(exc)) from None


@contextlib.contextmanager
def data_dir_errors() -> Iterator[None]:
    """A problem with the user's files or settings (a `DataDirError`, config.py's
    `ConfigError` too) is one line on stderr and exit status 1."""
    try:
        yield
    except datadir.DataDirError as exc:
        raise click.ClickException(one_line(exc)) from None


def client(data_dir: Path | None) -> ControlClient:
    """The client of the node running for the chosen data directory. Its "no node"
    message names the directory and how to start a node there."""
    from ..api.client import ControlClient

    path = datadir.resolve_path(data_dir)
    hint = "liberation-node run"
    if data_dir is not None:
        hint += f" --data-dir {path}"
    elif os.environ.get(datadir.ENV_DATA_DIR):
        hint = f"{datadir.ENV_DATA_DIR}={path} liberation-node run"
    return ControlClient(path, start_hint=hint)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))
