"""The running node itself: `status`, `peers`, `topology`, `address`, `stop` and `open`."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import click

from ..api import runfile
from ..api.client import NodeNotRunning
from .common import (
    client,
    data_dir_errors,
    data_dir_option,
    echo_json,
    json_option,
    node_errors,
)
from .output import dollars, duration, now_ms, rtt, short, since, size, table, who


@click.command("status", short_help="Show the running node.")
@data_dir_option
@json_option
def status(data_dir: Path | None, as_json: bool) -> None:
    """Show the running node: identity, health, join address, peers, replica, ledger."""
    with node_errors():
        info = client(data_dir).status()
    if as_json:
        echo_json(info)
        return
    for label, value in _status_rows(info):
        click.echo(f"{label:<9} {value}")


def _status_rows(info: dict[str, Any]) -> list[tuple[str, str]]:
    name = info.get("name")
    rows = [("node", f"{name} ({info.get('node_id')})" if name else str(info.get("node_id"))),
            ("network", f"{info.get('network')}  version {info.get('version', '?')}  "
                        f"up {duration(info.get('uptime_s'))}"),
            ("health", _health(info.get("health")))]
    if info.get("writable") is False:
        rows.append(("writes", f"refused: {info.get('write_error') or 'unknown reason'}"))
    join = info.get("join_urls")
    for i, url in enumerate(join if isinstance(join, list) else []):
        rows.append(("join" if i == 0 else "", str(url)))
    peers = info.get("peers")
    peers = peers if isinstance(peers, list) else []
    rows.append(("peers", f"{len(peers)} connected"))
    for peer in peers:
        rows.append(("", f"{peer.get('id')}  rtt {rtt(peer.get('rtt_ms'))}  "
                         f"{peer.get('address') or ''}".rstrip()))
    rows.append(("replica", f"{info.get('ops')} ops from {info.get('authors', '?')} authors, "
                            f"{info.get('records', '?')} records, "
                            f"{info.get('pending', '?')} pending"))
    rows.append(("ledger", f"{info.get('humans', '?')} humans, pool "
                           f"{dollars(info.get('pool_available_cents'))} available"))
    rows += _store_rows(info.get("store"))
    offset = info.get("clock_offset_ms")
    if isinstance(offset, int):
        rows.append(("clock", f"{offset:+d} ms from the median of peers' clocks"))
    if info.get("clock_warning"):
        rows.append(("", f"WARNING: {info['clock_warning']}"))
    rows.append(("digest", str(info.get("digest"))))
    if info.get("data_dir"):
        rows.append(("data dir", str(info["data_dir"])))
    return rows


def _store_rows(store: object) -> list[tuple[str, str]]:
    """The store's size by kind (store/sizes.py), in two lines."""
    if not isinstance(store, dict) or not isinstance(store.get("kinds"), dict):
        return []
    kinds: dict[str, Any] = store["kinds"]

    def bytes_of(*names: str) -> int:
        return sum(int(kinds.get(n, {}).get("bytes", 0)) for n in names)

    posts = kinds.get("message.post", {})
    texts = kinds.get("contents", {})
    parts = [f"{size(store.get('file_bytes'))} on disk"
             + (f" (+{size(store.get('wal_bytes'))} WAL)" if store.get("wal_bytes") else ""),
             f"ledger {size(bytes_of('human.register', 'ledger.claim', 'ledger.transfer'))}",
             f"{posts.get('count', 0)} posts {size(bytes_of('message.post', 'message.retract'))}",
             f"their texts {size(texts.get('bytes', 0))}",
             f"records {size(bytes_of('records'))}"]
    rows = [("store", ", ".join(parts))]
    retention = store.get("retention")
    if isinstance(retention, dict):
        budget = retention.get("budget_bytes")
        limit = f"of {size(budget)}" if isinstance(budget, int) and budget else "(no limit)"
        rows.append(("", f"other people's texts: {size(retention.get('droppable_bytes'))} "
                         f"{limit}; {retention.get('dropped', 0)} dropped since start"))
    return rows


def _health(report: object) -> str:
    """A health report (health.py: checks, each with "ok") in one line."""
    if not isinstance(report, dict):
        return "not checked yet"
    checks = report.get("checks", report)
    failing = sorted(name for name, check in checks.items()
                     if isinstance(check, dict) and check.get("ok") is False)
    if report.get("ok") is True or (not failing and report.get("ok") is None):
        return "ok"
    return f"not ok: {', '.join(failing) or 'see liberation-node status --json'}"


@click.command("peers", short_help="List the peers.")
@data_dir_option
@json_option
def peers(data_dir: Path | None, as_json: bool) -> None:
    """List the peers: name, state, round-trip time, traffic, how each was found."""
    with node_errors():
        found = client(data_dir).peers()
    if as_json:
        echo_json({"peers": found})
        return
    if not found:
        click.echo("no peers (see: liberation-node address, to invite one)", err=True)
        return
    now = now_ms()
    rows = [(who(p.get("id"), p.get("name")), short(p.get("id")), p.get("state") or "?",
             p.get("direction") or "-", rtt(p.get("rtt_ms")), size(p.get("bytes_in")),
             size(p.get("bytes_out")), since(p.get("since_ms"), now), p.get("found_by") or "-",
             p.get("address") or "-") for p in found]
    for line in table(("NAME", "ID", "STATE", "DIR", "RTT", "IN", "OUT", "SINCE", "FOUND BY",
                       "ADDRESS"), rows, right={4, 5, 6, 7}):
        click.echo(line)


@click.command("topology", short_help="Show the mesh: nodes, links, routes.")
@data_dir_option
@json_option
def topology(data_dir: Path | None, as_json: bool) -> None:
    """Show the mesh as this node sees it: nodes, links with round-trip times, routes."""
    with node_errors():
        mesh = client(data_dir).topology()
    if as_json:
        echo_json(mesh)
        return
    nodes = [n for n in mesh.get("nodes") or [] if isinstance(n, dict)]
    names = {n.get("id"): who(n.get("id"), n.get("name")) for n in nodes}

    def name(node_id: object) -> str:
        return names.get(node_id) or short(node_id)

    now = now_ms()
    click.echo(f"nodes ({len(nodes)})")
    for line in table(("NAME", "ID", "", "EXPIRES IN"),
                      [(who(n.get("id"), n.get("name")), n.get("id"),
                        "this node" if n.get("me") else
                        "connected" if n.get("connected") else "",
                        _until(n.get("expires_ms"), now)) for n in nodes]):
        click.echo("  " + line)
    links = [x for x in mesh.get("links") or [] if isinstance(x, dict)]
    click.echo(f"links ({len(links)})")
    for line in table(("", "", "", "RTT"), [(name(x.get("a")), "--", name(x.get("b")),
                                             rtt(x.get("rtt_ms"))) for x in links],
                      right={3})[1:]:
        click.echo("  " + line)
    routes = [r for r in mesh.get("routes") or [] if isinstance(r, dict)]
    click.echo(f"routes ({len(routes)})")
    for line in table(("TO", "NEXT HOP", "HOPS"),
                      [(name(r.get("to")), name(r.get("next_hop")), r.get("hops", "?"))
                       for r in routes], right={2}):
        click.echo("  " + line)


def _until(ms: object, now: int) -> str:
    if not isinstance(ms, int) or isinstance(ms, bool):
        return "-"
    return duration(max(0, ms - now) / 1000)


# -- address --------------------------------------------------------------------------------


@click.command("address", short_help="Print the join URLs a friend passes to --bootstrap.")
@data_dir_option
@json_option
def address(data_dir: Path | None, as_json: bool) -> None:
    """Print the join URLs (URL#ID) a friend passes to `liberation-node run --bootstrap`,
    one per usable interface.

    From the running node; when none runs, computed from the configuration (the
    addresses a node started now would have).
    """
    node = client(data_dir)
    with node_errors():
        try:
            status: dict[str, Any] | None = node.status()
        except NodeNotRunning:
            status = None
    if status is None:
        urls, running = _configured_join_urls(node.data_dir), False
    else:
        urls, running = _running_join_urls(status), True
    if as_json:
        echo_json({"join_urls": urls, "running": running})
        return
    if not running:
        click.echo(f"no node is running for {node.data_dir}; with this configuration it "
                   "would be reached at:", err=True)
    for url in urls:
        click.echo(url)


def _running_join_urls(status: dict[str, Any]) -> list[str]:
    urls = status.get("join_urls")
    if isinstance(urls, list) and all(isinstance(u, str) for u in urls):
        return urls
    # A node from before join_urls (API contract): its first signaling URL.
    peer_url, node_id = status.get("peer_url"), status.get("node_id")
    if isinstance(peer_url, str) and peer_url and isinstance(node_id, str):
        return [f"{peer_url}#{node_id}"]
    raise click.ClickException("the running node reports no join address")


def _configured_join_urls(path: Path) -> list[str]:
    from .. import config, datadir

    with data_dir_errors():
        node_dir = datadir.load(path)  # the identity: the #ID part
        node_config = config.resolve(path, node_dir.config, os.environ, {}).node_config()
    if not node_config.advertise:
        raise click.ClickException("this node advertises no address (advertise = false): "
                                   "others reach it by relay only")
    if node_config.peer_port == 0:
        raise click.ClickException("the peer port is picked when the node starts "
                                   "(peer_port = 0): start it, then ask again")
    from ..node import advertised_urls  # the node's own rule (transport.md §3)

    return [f"{url}#{node_dir.identity.text}"
            for url in advertised_urls(node_config, node_config.peer_port)]


# -- stop -----------------------------------------------------------------------------------


@click.command("stop", short_help="Stop the running node and wait until it exits.")
@data_dir_option
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds to wait for the node to exit.")
def stop(data_dir: Path | None, timeout: float) -> None:
    """Stop the running node (SIGTERM, as Ctrl-C does: it says goodbye to its peers
    and flushes its store) and wait until it has exited."""
    node = client(data_dir)
    with node_errors():
        info = node.run_info()
    if not _is_node(info.pid):
        raise click.ClickException(
            f"process {info.pid} named in {node.data_dir / runfile.RUN_FILE} is not a "
            "liberation-node; not stopping it (remove run.json if the node is gone)")
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:  # it exited since we looked
        pass
    except PermissionError:
        raise click.ClickException(f"not allowed to stop process {info.pid} (run this as the "
                                   "node's user)") from None
    if not _wait_exit(info.pid, timeout):
        raise click.ClickException(f"the node (pid {info.pid}) is still running after "
                                   f"{timeout:g} s; `kill -KILL {info.pid}` forces it")
    click.echo(f"stopped the node for {node.data_dir} (pid {info.pid})", err=True)


def _is_node(pid: int) -> bool:
    """Whether `pid` still runs a liberation-node (a crashed node's pid may be reused
    by another program, which must not get our SIGTERM). Without /proc: trusted."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            command = file.read()
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # no /proc here at all: trust run.json
    except OSError:
        return True
    return b"liberation" in command


def _wait_exit(pid: int, timeout: float) -> bool:
    """Wait until process `pid` is gone; False if it still runs after `timeout` s.
    On Linux a pidfd says so the moment it happens; elsewhere, poll."""
    deadline = time.monotonic() + timeout
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        import select

        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(timeout * 1000))
        finally:
            os.close(fd)
    while runfile.pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


# -- open -----------------------------------------------------------------------------------


@click.command("open", short_help="Open the status page (one-time login link).")
@data_dir_option
@click.option("--no-browser", is_flag=True, help="Only print the link.")
def open_page(data_dir: Path | None, no_browser: bool) -> None:
    """Open the node's status page: print a one-time login link (it works once, for a
    minute) and open it in a browser when one is available."""
    with node_errors():
        login = client(data_dir).login()
    url = login.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise click.ClickException("the node answered /api/v1/login without a login link")
    click.echo(url)
    if not no_browser and _has_browser():
        import webbrowser

        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            opened = False
        if not opened:
            click.echo("no browser could be opened: open the link above yourself", err=True)


def _has_browser() -> bool:
    """A browser can show a page here: one is named in $BROWSER, a desktop session
    runs, or the system has its own opener. A text browser taking over a terminal
    (lynx on a Raspberry Pi over ssh) would not help."""
    import sys

    return bool(os.environ.get("BROWSER") or os.environ.get("DISPLAY")
                or os.environ.get("WAYLAND_DISPLAY") or sys.platform in ("darwin", "win32"))
