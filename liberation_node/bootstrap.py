"""Bootstrap peer lists (bootstrap/*.toml) and --bootstrap arguments (bootstrap/README.md)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .core.identity import id_from_text


class BootstrapError(Exception):
    """A bootstrap list or argument cannot be used; the message says why."""


@dataclass(frozen=True)
class BootstrapPeer:
    url: str
    node_id: bytes | None  # the id expected to answer there, when the list names it


def _check_url(url: str, where: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise BootstrapError(f"{where}: {url!r} is not an http(s) signaling URL")
    return url


def load_list(path: Path, network: str) -> list[BootstrapPeer]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BootstrapError(f"{path}: {exc}") from exc
    if data.get("network") != network:
        return []  # a list for another network: not ours
    peers = []
    for n, entry in enumerate(data.get("peer", []), 1):
        where = f"{path} peer {n}"
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise BootstrapError(f"{where}: needs url = \"http://host:port/v1/signal\"")
        node_id = None
        if "id" in entry:
            try:
                node_id = id_from_text(str(entry["id"]))
            except ValueError as exc:
                raise BootstrapError(f"{where}: bad id: {exc}") from exc
        peers.append(BootstrapPeer(_check_url(entry["url"], where), node_id))
    return peers


def resolve(arguments: tuple[str, ...], network: str) -> list[BootstrapPeer]:
    """Each argument is a signaling URL (optionally `URL#<node id>`) or a .toml list."""
    peers: list[BootstrapPeer] = []
    for arg in arguments:
        if arg.endswith(".toml"):
            peers.extend(load_list(Path(arg), network))
            continue
        url, _, expected = arg.partition("#")
        node_id = None
        if expected:
            try:
                node_id = id_from_text(expected)
            except ValueError as exc:
                raise BootstrapError(f"--bootstrap {arg}: bad node id: {exc}") from exc
        peers.append(BootstrapPeer(_check_url(url, "--bootstrap"), node_id))
    return peers
