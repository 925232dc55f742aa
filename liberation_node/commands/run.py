"""`run` (the daemon) and `config` (the settings it would use, and where each came from).

The flags of `run` and `config` are made from config.py's SETTINGS: one flag per
setting, no default of their own (an absent flag leaves the environment,
config.toml or the default in charge).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import config, datadir
from ..config import Resolved, Setting, toml_value
from ..settingkinds import BOOL, SECONDS, STRING, STRINGS
from .common import data_dir_errors, data_dir_option, echo_json, json_option

F = Callable[..., Any]


class _KindType(click.ParamType):  # type: ignore[type-arg]
    """A flag's value read like the environment's (config.py `Kind.text`)."""

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        self.name = setting.kind.describe

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.setting.kind.text(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _param(setting: Setting) -> str:
    return setting.key.replace(".", "__")


def _check(setting: Setting) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value != ():
            try:
                setting.checked(tuple(value) if setting.kind is STRINGS else value)
            except ValueError as exc:
                raise click.BadParameter(str(exc)) from None
        return value

    return callback


def _option(setting: Setting) -> Callable[[F], F]:
    shown = setting.empty if setting.default in ((), "") else toml_value(setting.default)
    help_text = f"{setting.help} [default: {shown}; env {setting.env}]"
    if setting.kind is BOOL:
        flag = setting.option[2:]
        return click.option(f"--{flag}/--no-{flag}", _param(setting), default=None,
                            help=help_text)
    if setting.kind is STRINGS:
        return click.option(setting.option, _param(setting), multiple=True,
                            metavar=setting.metavar or "TEXT", callback=_check(setting),
                            help=help_text)
    metavar = setting.metavar or {STRING: "TEXT", SECONDS: "SECONDS"}.get(setting.kind, "N")
    return click.option(setting.option, _param(setting), type=_KindType(setting), default=None,
                        metavar=metavar, callback=_check(setting), help=help_text)


def setting_options(function: F) -> F:
    for setting in reversed(config.SETTINGS):
        function = _option(setting)(function)
    return function


def _flags(params: dict[str, Any]) -> dict[str, Any]:
    return {s.key: params.pop(_param(s)) for s in config.SETTINGS}


def settings_of(path: Path, flags: dict[str, Any]) -> Resolved:
    """The effective settings for the data directory at `path`, which may not exist
    yet (then config.toml is not there either); creates and changes nothing."""
    file = path / datadir.CONFIG_FILE
    return config.resolve(path, config.read_file(file) if file.exists() else None,
                          os.environ, flags)


# -- run ------------------------------------------------------------------------------------


@click.command("run")
@data_dir_option
@setting_options
@click.option("--recover", is_flag=True,
              help="Start on a missing or empty replica (after losing or restoring the data "
                   "directory): writes wait until a peer has sent this node's own feed back.")
@click.option("--debug", is_flag=True, help="DEBUG logs, and tracebacks of start-up failures "
                                            "in the log.")
def run(data_dir: Path | None, recover: bool, debug: bool, **params: Any) -> None:
    """Run the node: join the mesh, sync, serve the control API. Ctrl-C stops it
    cleanly (a second Ctrl-C forces). Creates the identity on first use. One node per
    data directory: a second `run` on the same one exits at once.

    Every setting comes from its flag, else its LIBERATION_* variable, else
    config.toml in the data directory, else its default (see: liberation-node config).
    """
    from .. import daemon
    from ..bootstrap import BootstrapError
    from ..bootstrap import resolve as resolve_bootstrap

    flags = _flags(params)
    with data_dir_errors():
        path = datadir.resolve_path(data_dir)
        wanted = settings_of(path, flags).values["network"]  # for a new data directory
        node_dir, created = datadir.init(path, None if wanted.source == "default"
                                         else wanted.value)
        settings = config.resolve(path, node_dir.config, os.environ, flags)
    if created:
        click.echo(f"created {node_dir.path}; node id {node_dir.identity.text}", err=True)
    node_config = dataclasses.replace(settings.node_config(), debug=debug,
                                      new_identity=created, recover=recover)
    try:  # refuse bad lists before starting
        resolve_bootstrap(node_config.bootstrap, node_config.network,
                          genesis=node_config.genesis)
    except BootstrapError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        daemon.run(node_config)
    except daemon.StartupError as exc:  # the traceback is in the log at DEBUG (--debug)
        raise click.ClickException(str(exc)) from None


# -- config ---------------------------------------------------------------------------------


@click.command("config", short_help="Print the effective configuration and its sources.")
@data_dir_option
@json_option
@setting_options
def config_command(data_dir: Path | None, as_json: bool, **params: Any) -> None:
    """Print the configuration `run` would use, and where each value comes from
    (default, config.toml, env or flag). Give `run`'s flags to see their effect.

    The text output is valid TOML: each setting with its value, and its source
    as a comment. Nothing is created or changed.
    """
    with data_dir_errors():
        settings = settings_of(datadir.resolve_path(data_dir), _flags(params))
    where = _data_dir_source(data_dir)
    if as_json:
        echo_json({
            "data_dir": {"value": str(settings.data_dir), "source": where},
            "config_file": str(settings.data_dir / datadir.CONFIG_FILE),
            "settings": {key: {"value": list(v.value) if isinstance(v.value, tuple)
                               else v.value, "source": v.source,
                               "origin": v.origin or None}
                         for key, v in settings.values.items()},
        })
        return
    file = settings.data_dir / datadir.CONFIG_FILE
    click.echo(f"# data directory: {settings.data_dir} ({where})")
    click.echo(f"# config file:    {file}{'' if file.exists() else ' (not created yet)'}")
    rows = [(f"{key} = {toml_value(v.value)}", v.source if v.source in ("default", "config.toml")
             else f"{v.source} {v.origin}") for key, v in settings.values.items()]
    width = max(len(line) for line, _ in rows)
    for line, source in rows:
        click.echo(f"{line.ljust(width)}  # {source}")


def _data_dir_source(data_dir: Path | None) -> str:
    if data_dir is not None:
        return "flag --data-dir"
    if os.environ.get(datadir.ENV_DATA_DIR):
        return f"env {datadir.ENV_DATA_DIR}"
    return "default"
