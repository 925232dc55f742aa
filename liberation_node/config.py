"""Every setting of a running node in one place: its default, its config.toml key, its
environment variable and its `run` flag.

    setting        config.toml                     environment                flag
    peer_port      peer_port = 7411                LIBERATION_PEER_PORT=7411  --peer-port 7411
    peering.low    [peering] low = 4 (or           LIBERATION_PEERING_LOW=4   --low 4
                   peering.low = 4)

Precedence: flag > environment > config.toml > default. `NodeConfig` holds every
default, either itself or in the section configs it composes (`PeeringConfig`,
`TransportConfig`: the core and the transport own those and the simulator uses
them too). `SETTINGS` lists what an operator may set, one line each; adding a
setting is a field with its default in `NodeConfig` (or a section) and one
`Setting` line: the file key, the variable, the flag, the checks and
`liberation-node config` follow from it. How each value is written and checked (its
kind, and the checks beyond it) is in settingkinds.py.

config.toml is checked whole when the data directory is opened: an unknown key
or section, or a value of the wrong type, is refused with the file's path, so a
typo never silently leaves a default in place. Relative bootstrap list files in
config.toml are relative to the data directory. Environment values are text:
numbers, booleans (true/false, 1/0, yes/no, on/off) and comma-separated lists (an
empty value is an empty list). The data directory itself is chosen before any
file is read: `--data-dir`, `LIBERATION_DATA_DIR` or the XDG default (datadir.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.contents import RetentionConfig
from .core.mesh import MeshConfig
from .core.ops import DEFAULT_GENESIS_MS, MAX_TIMESTAMP_MS
from .core.peering import PeeringConfig
from .core.quotas import QuotaConfig
from .core.records import MAX_URLS
from .datadir import ENV_DATA_DIR, DataDirError  # the directory is chosen before any file
from .discovery.config import MdnsConfig
from .settingkinds import (
    BOOL,
    PORT,
    SECONDS,
    STRING,
    STRINGS,
    Kind,
    check_bootstrap,
    check_channel,
    check_http_url,
    check_ice_server,
    check_interface,
    check_ip,
    check_name,
    check_network,
    check_origin,
    each,
    integer,
)
from .transport.config import TransportConfig

DEFAULT_NETWORK = "liberation"
DEFAULT_PEER_PORT = 7411
DEFAULT_CONTROL_PORT = 7412
ENV_PREFIX = "LIBERATION_"


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    network: str = DEFAULT_NETWORK  # fixed when the data directory is made (config.toml)
    # The network's genesis, ms since 1970: part of its definition, the same on every node
    # of the network (protocols/ops.md §14); the store keeps the one it first ran with.
    genesis: int = DEFAULT_GENESIS_MS
    name: str = ""
    peer_host: str = "0.0.0.0"  # the peer port is for the network (DESIGN §4)
    peer_port: int = DEFAULT_PEER_PORT  # 0: pick a free port
    control_host: str = "127.0.0.1"  # the control port is for this machine only
    control_port: int = DEFAULT_CONTROL_PORT
    # URLs other nodes should use to reach our peer port; () = derive from the bound
    # address; advertise=False = publish none (behind NAT: reachable by relay only).
    public_urls: tuple[str, ...] = ()
    advertise: bool = True
    bootstrap: tuple[str, ...] = ()  # signaling URLs or bootstrap/*.toml files
    allow_origins: tuple[str, ...] = ()  # web origins that may signal from a browser
    mdns: bool = True  # find peers on the LAN (DESIGN §4)
    transport: TransportConfig = field(default_factory=TransportConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    peering: PeeringConfig = field(default_factory=PeeringConfig)
    discovery: MdnsConfig = field(default_factory=MdnsConfig)  # where mDNS runs
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    health_interval_s: float = 10.0
    log_json: bool = False
    debug: bool = False  # tracebacks for start-up failures, DEBUG logs
    # The identity was made by this very start: no op of it can exist anywhere, so
    # there is no own feed to check with peers before writing (sync.md §10.2).
    new_identity: bool = False
    # Start on a missing or empty replica, and write only once a peer has sent back
    # this node's own feed (no grace period): after a lost or restored data dir.
    recover: bool = False
    max_queued_ops: int = 50_000  # ops waiting for the store before ingest pauses
    # What the node takes in from others (protocols/sync.md §9.2): records kept, ops per
    # other author per second after a burst, and the free disk space below which it
    # takes in nothing more from peers (its own writes go on).
    max_records: int = QuotaConfig.max_records
    author_ops_per_s: int = int(QuotaConfig.author_ops_per_s)
    author_ops_burst: int = QuotaConfig.author_ops_burst
    min_free_disk_mb: int = 256


class ConfigError(DataDirError):
    """A setting cannot be used; the message names where it came from and what is wrong.
    (A `DataDirError`: the node cannot run with its data directory's settings as they are.)"""


# -- the settings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting: `key` is its config.toml key (`section.key` for one in a section)
    and its path in `NodeConfig`."""

    key: str
    kind: Kind
    help: str
    flag: str = ""  # default: --<the key's last part, with dashes>
    check: Callable[[Any], None] | None = None
    metavar: str | None = None
    empty: str = "none"  # what an empty value ("" or []) means, for help texts

    @property
    def option(self) -> str:
        return self.flag or "--" + self.key.rsplit(".", 1)[-1].replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.replace(".", "_").upper()

    @property
    def default(self) -> Any:
        value: Any = _DEFAULTS
        for part in self.key.split("."):
            value = getattr(value, part)
        return value

    def checked(self, value: Any) -> Any:
        if self.check is not None:
            self.check(value)
        return value


SETTINGS: tuple[Setting, ...] = (
    Setting("network", STRING, "Network name; fixed when the data directory is made.",
            check=check_network),
    Setting("genesis", integer(0, MAX_TIMESTAMP_MS), "The network's genesis in ms since 1970 "
            "(no op is dated before it); every node of a network uses the same one."),
    Setting("name", STRING, "A display name, published in node.info.", check=check_name),
    Setting("peer_host", STRING, "Address of the peer port (signaling, reachable from the "
            "network)."),
    Setting("peer_port", PORT, "Peer port; 0 picks a free one."),
    Setting("control_host", STRING, "Address of the control port (API, status page)."),
    Setting("control_port", PORT, "Control port; 0 picks a free one."),
    Setting("bootstrap", STRINGS, "Peers to dial: a signaling URL (optionally #its node id) "
            "or a bootstrap list file; repeatable.", check=each(check_bootstrap),
            metavar="URL[#ID]|FILE.toml"),
    Setting("public_urls", STRINGS, "Signaling URL to advertise instead of the bound address; "
            "repeatable.", flag="--public-url", check=each(check_http_url, MAX_URLS),
            metavar="URL", empty="from the bound address"),
    Setting("advertise", BOOL, "Advertise signaling URLs (--no-advertise behind NAT: peers "
            "reach this node by relay only)."),
    Setting("allow_origins", STRINGS, "Web origin (https://app.example.org) whose pages may "
            "signal to the peer port from a browser; repeatable.", flag="--allow-origin",
            check=each(check_origin), metavar="ORIGIN"),
    Setting("mdns", BOOL, "Find peers on the LAN by mDNS."),
    Setting("health_interval_s", SECONDS, "Seconds between health checks.",
            flag="--health-interval"),
    Setting("log_json", BOOL, "Structured JSON logs on stderr."),
    Setting("max_records", integer(16, 10_000_000), "Records (node.info, node.links) kept "
            "at most; over it, other nodes' oldest are dropped."),
    Setting("author_ops_per_s", integer(1, 10_000_000), "Ops of one other author taken in "
            "per second after a burst of author_ops_burst; more wait for a later sync."),
    Setting("author_ops_burst", integer(1, 10_000_000), "Ops of one other author taken in "
            "at once before author_ops_per_s applies."),
    Setting("min_free_disk_mb", integer(0, 10_000_000), "Below this much free disk space "
            "(MiB) no data from peers is taken in; this node's own writes go on."),
    Setting("peering.low", integer(1, 64), "Dial more peers below this many.", flag="--low"),
    Setting("peering.high", integer(1, 128), "Drop the worst peers above this many.",
            flag="--high"),
    Setting("transport.ice_servers", STRINGS, "STUN/TURN server (stun:host:port, "
            "turn:user:pass@host:port); repeatable.", flag="--ice-server",
            check=each(check_ice_server), metavar="URL"),
    Setting("transport.ice_addresses", STRINGS, "Local address ICE may use; repeatable.",
            flag="--ice-address", check=each(check_ip), metavar="IP",
            empty="every address but loopback"),
    Setting("discovery.interfaces", STRINGS, "Interface mDNS uses; repeatable.",
            flag="--mdns-interface", check=each(check_interface), metavar="NAME",
            empty="every interface with an address but loopback"),
    Setting("discovery.ipv4", BOOL, "mDNS over IPv4.", flag="--mdns-ipv4"),
    Setting("discovery.ipv6", BOOL, "mDNS over IPv6.", flag="--mdns-ipv6"),
    Setting("retention.max_mib", integer(0, 1 << 20), "Other people's message texts kept, "
            "newest first, in MiB (0: no limit); headers, own messages and followed "
            "channels are always kept.", flag="--retain-mib"),
    Setting("retention.max_days", integer(0, 100_000), "Drop other people's message texts "
            "older than this many days (0: no limit).", flag="--retain-days"),
    Setting("retention.follow", STRINGS, "A channel whose message texts are always kept; "
            "repeatable.", flag="--follow", check=each(check_channel), metavar="CHANNEL"),
)
BY_KEY = {s.key: s for s in SETTINGS}
BY_ENV = {s.env: s for s in SETTINGS}
SECTIONS = frozenset(s.key.split(".")[0] for s in SETTINGS if "." in s.key)
_DEFAULTS = NodeConfig(data_dir=Path())


# -- config.toml ----------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """A setting's value as config.toml spells it. JSON's spelling of strings, numbers,
    booleans and arrays is TOML's too, but for DEL, which TOML wants escaped."""
    text = json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)
    return text.replace("\x7f", "\\u007f")


@dataclass(frozen=True)
class ConfigFile:
    """config.toml, checked: `values` maps setting keys to the values it sets."""

    path: Path
    values: Mapping[str, Any]

    @property
    def network(self) -> str:
        network: str = self.values.get("network", DEFAULT_NETWORK)
        return network


def new_config_text(network: str) -> str:
    """What `init` writes (network names are plain ASCII: no escaping needed)."""
    check_network(network)
    return ("# liberation-node settings. Every setting, its default and where its value\n"
            "# comes from: liberation-node config. Reference: README.md, \"Configuration\".\n"
            f'network = "{network}"\n')


def read_file(path: Path) -> ConfigFile:
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    values: dict[str, Any] = {}
    for key, value in _flatten(path, raw):
        setting = BY_KEY.get(key)
        if setting is None:
            raise ConfigError(f"{path}: unknown setting {key!r}{_did_you_mean(key, BY_KEY)} "
                              "(every setting: liberation-node config)")
        try:
            parsed = setting.checked(setting.kind.toml(value))
        except ValueError as exc:
            raise ConfigError(f"{path}: {key}: {exc}") from None
        if key == "bootstrap":  # list files named in the file are relative to it
            parsed = tuple(str(path.parent / p) if p.endswith(".toml") else p for p in parsed)
        values[key] = parsed
    return ConfigFile(path, values)


def _flatten(path: Path, raw: dict[str, Any]) -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: {key} is a section: write [{key}] and its keys")
            items += [(f"{key}.{k}", v) for k, v in value.items()]
        elif isinstance(value, dict):
            raise ConfigError(f"{path}: unknown section [{key}]"
                              f"{_did_you_mean(key, SECTIONS)} (sections: "
                              f"{', '.join(sorted(SECTIONS))})")
        else:
            items.append((key, value))
    return items


def _did_you_mean(word: str, known: Mapping[str, Any] | frozenset[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- resolving ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    value: Any
    source: str  # "default", "config.toml", "env" or "flag"
    origin: str = ""  # the file, the variable or the flag


@dataclass(frozen=True)
class Resolved:
    """The effective settings for one data directory, each with where it came from."""

    data_dir: Path
    values: Mapping[str, Value]  # every setting, in SETTINGS order

    def __getitem__(self, key: str) -> Any:
        return self.values[key].value

    def node_config(self) -> NodeConfig:
        top: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {}
        for key, value in self.values.items():
            section, _, name = key.rpartition(".")
            (sections.setdefault(section, {}) if section else top)[name] = value.value
        base = NodeConfig(data_dir=self.data_dir)
        for section, changes in sections.items():
            top[section] = dataclasses.replace(getattr(base, section), **changes)
        return dataclasses.replace(base, **top)


def from_env(env: Mapping[str, str]) -> dict[str, Value]:
    """The settings `env` sets; an unknown LIBERATION_* variable is refused (a typo)."""
    found: dict[str, Value] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_DATA_DIR:
            continue
        setting = BY_ENV.get(name)
        if setting is None:
            raise ConfigError(f"unknown environment variable {name}"
                              f"{_did_you_mean(name, {**BY_ENV, ENV_DATA_DIR: None})}")
        try:
            found[setting.key] = Value(setting.checked(setting.kind.text(text)), "env", name)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    return found


def from_flags(flags: Mapping[str, Any]) -> dict[str, Value]:
    """The settings given as flags: `flags` maps keys to values (None or () = not given)."""
    found: dict[str, Value] = {}
    for key, value in flags.items():
        if value is None or value == ():
            continue
        setting = BY_KEY[key]
        try:
            found[key] = Value(setting.checked(tuple(value) if isinstance(value, list | tuple)
                                               else value), "flag", setting.option)
        except ValueError as exc:
            raise ConfigError(f"{setting.option}: {exc}") from None
    return found


def resolve(data_dir: Path, file: ConfigFile | None, env: Mapping[str, str],
            flags: Mapping[str, Any]) -> Resolved:
    """Every setting from the flags, else the environment, else `file`, else its default.
    `file` is None when the data directory does not exist yet."""
    layers = [from_flags(flags), from_env(env)]
    if file is not None:
        layers.append({k: Value(v, "config.toml", str(file.path)) for k, v in file.values.items()})
    values: dict[str, Value] = {}
    for setting in SETTINGS:
        chosen = next((layer[setting.key] for layer in layers if setting.key in layer),
                      Value(setting.default, "default"))
        values[setting.key] = chosen
    if file is not None:  # the network is the data directory's, whatever asks otherwise
        wanted = values["network"]
        fixed = file.values.get("network", DEFAULT_NETWORK)
        if wanted.value != fixed:
            raise ConfigError(f"{data_dir} belongs to network {fixed!r}, not {wanted.value!r} "
                              f"(from {wanted.origin}); choose another data directory for "
                              "that network")
        values["network"] = Value(fixed, "config.toml" if "network" in file.values else
                                  "default", str(file.path) if "network" in file.values else "")
    resolved = Resolved(data_dir, values)
    low, high = values["peering.low"], values["peering.high"]
    if low.value > high.value:
        raise ConfigError(f"peering.low {low.value} ({_where(low)}) is above peering.high "
                          f"{high.value} ({_where(high)})")
    try:
        resolved.node_config()  # the section configs check what spans settings
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return resolved


def _where(value: Value) -> str:
    return f"{value.source} {value.origin}" if value.origin else value.source
