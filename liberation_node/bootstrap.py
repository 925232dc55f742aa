"""Bootstrap peer lists (bootstrap/*.toml) and --bootstrap arguments (protocols/transport.md §8).

A peer is named by its signaling URL, in any of the forms a person is likely to
paste, all normalised here and nowhere else (`signaling_url`):

    http://192.0.2.10:7411/v1/signal    the full URL
    http://192.0.2.10:7411              the peer port: /v1/signal is added
    192.0.2.10:7411, [2001:db8::1]:7411 host and port: http:// and /v1/signal are added
    node.example.org                    a host alone: the default peer port, 7411

optionally followed by `#` and the node id expected there (`URL#ln…`).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .core.identity import id_from_text

SIGNAL_PATH = "/v1/signal"
DEFAULT_PEER_PORT = 7411  # as config.DEFAULT_PEER_PORT (not imported: keep this module light)


class BootstrapError(Exception):
    """A bootstrap list or argument cannot be used; the message says why."""


@dataclass(frozen=True)
class BootstrapPeer:
    url: str
    node_id: bytes | None  # the id expected to answer there, when the list names it


def signaling_url(text: str) -> str:
    """The signaling URL for what a person wrote (see the module docstring); ValueError
    says what is wrong."""
    raw = text.strip()
    if not raw or any(c.isspace() for c in raw):
        raise ValueError(f"{text!r} is not a URL or host:port")
    if "://" not in raw:
        with contextlib.suppress(ValueError):  # IPv6 without brackets (so without a port)
            raw = f"[{raw}]" if ipaddress.ip_address(raw).version == 6 else raw
        raw = f"http://{raw}"
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{text!r} is not an http(s) signaling URL")
    if not parts.hostname:
        raise ValueError(f"{text!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r}: a signaling URL carries no user name or password")
    if port == 0:
        raise ValueError(f"{text!r}: port 0")
    netloc = parts.netloc
    if port is None and parts.scheme == "http" and "://" not in text.strip():
        netloc = f"{netloc}:{DEFAULT_PEER_PORT}"  # a bare host: the default peer port
    path = parts.path if parts.path not in ("", "/") else SIGNAL_PATH
    return urlunsplit((parts.scheme, netloc, path, parts.query, ""))


def parse_argument(arg: str) -> BootstrapPeer:
    """One `URL[#ID]` argument (not a .toml path)."""
    url, _, expected = arg.partition("#")
    try:
        normal = signaling_url(url)
    except ValueError as exc:
        raise BootstrapError(f"--bootstrap {arg}: {exc}") from None
    node_id = None
    if expected:
        try:
            node_id = id_from_text(expected)
        except ValueError as exc:
            raise BootstrapError(f"--bootstrap {arg}: bad node id after '#': {exc}") from None
    return BootstrapPeer(normal, node_id)


def genesis_ms(value: object) -> int | None:
    """A list's `genesis`: milliseconds since 1970, or a TOML date-time with its offset
    (`2025-01-01T00:00:00Z`); None if it is neither."""
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        ms = int(value.timestamp() * 1000)
        return ms if ms >= 0 else None
    return None


def load_list(path: Path, network: str, genesis: int | None = None) -> list[BootstrapPeer]:
    """The peers of a list for `network` (none for a list of another network). A list
    may state the network's genesis (protocols/ops.md §14): with `genesis`, a list that
    states another one is refused."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BootstrapError(f"{path}: {exc}") from exc
    if data.get("network") != network:
        return []  # a list for another network: not ours
    if "genesis" in data:
        stated = genesis_ms(data["genesis"])
        if stated is None:
            raise BootstrapError(f"{path}: genesis must be a date-time with its offset "
                                 "(2025-01-01T00:00:00Z) or milliseconds since 1970")
        if genesis is not None and stated != genesis:
            raise BootstrapError(
                f"{path}: network {network!r} has genesis {stated} ({_when(stated)}) in this "
                f"list, but this node uses {genesis} ({_when(genesis)}); nodes of one network "
                f"share its genesis (protocols/ops.md §14): set genesis = {stated} in "
                "config.toml of a new data directory")
    entries = data.get("peer", [])
    if not isinstance(entries, list):
        raise BootstrapError(f"{path}: 'peer' must be an array of tables ([[peer]])")
    peers = []
    for n, entry in enumerate(entries, 1):
        where = f"{path} peer {n}"
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise BootstrapError(f"{where}: needs url = \"http://host:port/v1/signal\"")
        try:
            url = signaling_url(entry["url"])
        except ValueError as exc:
            raise BootstrapError(f"{where}: {exc}") from None
        node_id = None
        if "id" in entry:
            try:
                node_id = id_from_text(str(entry["id"]))
            except ValueError as exc:
                raise BootstrapError(f"{where}: bad id: {exc}") from exc
        peers.append(BootstrapPeer(url, node_id))
    return peers


def _when(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat()


def resolve(arguments: Iterable[str], network: str, base: Path | None = None,
            genesis: int | None = None) -> list[BootstrapPeer]:
    """Each argument is a signaling URL (optionally `URL#<node id>`, any form of the
    module docstring) or a .toml list; a relative list path is taken from `base`
    (default: the working directory). With `genesis`, a list stating another genesis
    for `network` is refused."""
    peers: list[BootstrapPeer] = []
    for arg in arguments:
        if arg.endswith(".toml"):
            path = Path(arg).expanduser()
            peers.extend(load_list(path if base is None else base / path, network, genesis))
        else:
            peers.append(parse_argument(arg))
    return peers


def config_value(value: object, where: str) -> tuple[str, ...]:
    """The `bootstrap` setting of config.toml: a string or an array of strings, each an
    argument as `--bootstrap` takes it. Checks the URL forms (lists are read when the
    node starts, with `resolve`); raises BootstrapError naming `where`."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise BootstrapError(f"{where}: expected a string or an array of strings "
                             "(URL[#ID] or FILE.toml)")
    for item in items:
        if not item.endswith(".toml"):
            try:
                parse_argument(item)
            except BootstrapError as exc:
                raise BootstrapError(f"{where}: {exc}".replace("--bootstrap ", "")) from None
    return tuple(items)
