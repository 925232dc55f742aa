"""The data directory: a node's identity, its secrets, its config and its store.

    identity.key      the 32-byte Ed25519 seed as hex text, mode 0600 (the node's identity)
    control.token     32 random bytes as hex text, mode 0600 (the control API's token)
    config.toml       settings (config.py); written at init with the network name
    replica.sqlite3   the store (store/sqlite.py)
    lock              held (flock) by the one node running on this directory (DESIGN §8)

Where: `--data-dir`, else `$LIBERATION_DATA_DIR`, else `$XDG_DATA_HOME/liberation-node`,
else `~/.local/share/liberation-node` (XDG Base Directory spec).

This module is an adapter, not core: it reads the OS's randomness. Every failure
is a `DataDirError` whose message a person can act on. It imports the key, store
and settings machinery only where it is used: a CLI command that merely talks to
the running node reads the token with `read_control_token` and must start fast.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import ConfigFile
    from .core.identity import Identity
    from .store import SqliteStore

ENV_DATA_DIR = "LIBERATION_DATA_DIR"
APP_NAME = "liberation-node"
IDENTITY_FILE = "identity.key"
TOKEN_FILE = "control.token"
CONFIG_FILE = "config.toml"
STORE_FILE = "replica.sqlite3"
LOCK_FILE = "lock"
SECRET_MODE = 0o600


class DataDirError(Exception):
    """The data directory cannot be used as it is; the message says what to do."""


class DataDirInUse(DataDirError):
    """Another node runs on this data directory."""


@dataclass(frozen=True, slots=True)
class DataDir:
    path: Path
    identity: Identity
    config: ConfigFile  # config.toml, checked (config.py holds every setting and default)

    @property
    def store_path(self) -> Path:
        return self.path / STORE_FILE

    def control_token(self) -> str:
        return read_control_token(self.path)

    @contextlib.asynccontextmanager
    async def open_store(self) -> AsyncIterator[SqliteStore]:
        """The opened store, closed on exit; a store that cannot open is a `DataDirError`."""
        from .store import SqliteStore, StoreError

        store = SqliteStore(self.store_path)
        try:
            await store.open()
        except StoreError as exc:
            raise DataDirError(str(exc)) from exc
        try:
            yield store
        finally:
            await store.close()


def resolve_path(option: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None) -> Path:
    """Where the data directory is: the option, the env var, XDG, then the home default."""
    env = os.environ if env is None else env
    if option is not None and str(option):
        return Path(option).expanduser()
    if env.get(ENV_DATA_DIR):
        return Path(env[ENV_DATA_DIR]).expanduser()
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the spec says to ignore a relative value
        return Path(xdg) / APP_NAME
    return Path.home() / ".local" / "share" / APP_NAME


def init(path: Path, network: str | None = None) -> tuple[DataDir, bool]:
    """Create what is missing in `path` and return it with whether a new identity was made.

    Never overwrites: an existing key, token or config is kept as it is, and a
    `network` other than the configured one is refused.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create the data directory {path}: {exc.strerror}") from exc
    made: list[str] = []
    if not (path / CONFIG_FILE).exists():
        from .config import DEFAULT_NETWORK, new_config_text

        chosen = network or DEFAULT_NETWORK
        check_network(chosen, "--network")
        _create(path / CONFIG_FILE, new_config_text(chosen), 0o644)
        made.append(CONFIG_FILE)
    if not (path / IDENTITY_FILE).exists():
        if _has_data(path / STORE_FILE):
            # A new key beside an old replica is a new identity that silently takes over
            # another's data dir, and the old identity is lost: say so instead.
            raise DataDirError(
                f"{path} has a replica ({STORE_FILE}) but no {IDENTITY_FILE}: restore "
                f"{IDENTITY_FILE} from a backup; to start over as a new identity instead, "
                f"move {STORE_FILE} away first")
        from .core.identity import SEED_BYTES

        _create(path / IDENTITY_FILE, os.urandom(SEED_BYTES).hex() + "\n", SECRET_MODE)
        made.append(IDENTITY_FILE)
    if not (path / TOKEN_FILE).exists():
        import secrets

        _create(path / TOKEN_FILE, secrets.token_hex(32) + "\n", SECRET_MODE)
        made.append(TOKEN_FILE)
    if made:  # make the new names durable too: a node must not lose its key to a power cut
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    datadir = load(path)
    if network is not None and network != datadir.config.network:
        raise DataDirError(f"{path} belongs to network {datadir.config.network!r}, not "
                           f"{network!r}; choose another --data-dir for that network")
    return datadir, IDENTITY_FILE in made


def _has_data(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def check_replica(path: Path, *, new_identity: bool, recover: bool) -> None:
    """Refuse to start an existing identity on a missing or empty replica.

    An identity that ran before may have ops in the network; starting it with
    no replica would sign new ops at positions its peers already hold (a fork).
    `recover` (`run --recover`) accepts it: the node then waits to write until
    a peer has sent back its own feed (protocols/sync.md §10.2).
    """
    store = path / STORE_FILE
    if new_identity or _has_data(store):
        return
    if not recover:
        state = "empty" if store.exists() else "missing"
        raise DataDirError(
            f"{store} is {state}, but {IDENTITY_FILE} is not new: this identity may already "
            "have ops in the network, and starting afresh could fork it. To rebuild the "
            "replica from peers, run with --recover (writes wait until a peer has sent this "
            f"node's own feed back); to start a new identity, move {IDENTITY_FILE} away")
    with contextlib.suppress(FileNotFoundError):
        store.unlink()  # zero bytes: nothing to keep; SQLite makes a fresh store


def lock(path: Path) -> int:
    """Take the data directory's lock for this process's lifetime; returns its fd.

    flock(2): the kernel releases it when the process dies, however it dies, so
    a crash never leaves a stale lock. A second node on the same directory would
    sign ops of the same identity from a second replica (a fork): refused.
    """
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, SECRET_MODE)
    except OSError as exc:
        raise DataDirError(f"cannot open {path / LOCK_FILE}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise DataDirInUse(_in_use(path, holder)) from None
    except OSError as exc:
        os.close(fd)
        raise DataDirError(f"cannot lock {path / LOCK_FILE}: {exc.strerror}") from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _in_use(path: Path, holder: str) -> str:
    from .api import runfile  # small; only needed for this message

    info = runfile.read(path)
    where = (f"pid {info.pid}, control {info.control_url}, peer {info.peer_url}" if info
             else f"pid {holder or '?'}, still starting")
    return (f"another node is already running on {path} ({where}); stop it first, or give "
            "this one its own --data-dir")


def load(path: Path) -> DataDir:
    """Open an existing data directory (identity and config; the store opens apart)."""
    if not path.is_dir():
        raise DataDirError(f"no data directory at {path}; create one with: "
                           f"liberation-node init --data-dir {path}")
    if not (path / IDENTITY_FILE).exists():
        raise DataDirError(f"{path} has no {IDENTITY_FILE}; create one with: "
                           f"liberation-node init --data-dir {path}")
    return DataDir(path, _load_identity(path / IDENTITY_FILE), _load_config(path / CONFIG_FILE))


def read_control_token(path: Path) -> str:
    """The control token of the data directory at `path`, as hex text."""
    return _read_secret(path / TOKEN_FILE, "control token").hex()


def _create(path: Path, text: str, mode: int) -> None:
    """Write a new file; O_EXCL means an existing one is never replaced, and the
    mode is set at creation, so a secret is never readable by others, even briefly."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except OSError as exc:
        raise DataDirError(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as file:  # closes fd, also when a write fails
        os.fchmod(fd, mode)  # the umask may have taken bits away; the mode is what we said
        file.write(text.encode("utf-8"))
        file.flush()
        os.fsync(fd)


def _read_secret(path: Path, what: str) -> bytes:
    """Read a secret kept as hex text, refusing a file that group or others may open."""
    try:
        info = path.stat()
        if info.st_mode & 0o077:
            raise DataDirError(f"{path} is open to group or others (mode "
                               f"{stat.S_IMODE(info.st_mode):04o}) but the {what} is secret; "
                               f"run: chmod 600 {path}")
        text = path.read_bytes().strip()
    except OSError as exc:
        raise DataDirError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise DataDirError(f"{path} is corrupt: the {what} is not hex text") from None


def _load_identity(path: Path) -> Identity:
    from .core.identity import SEED_BYTES, Identity

    seed = _read_secret(path, "identity key")
    if len(seed) != SEED_BYTES:
        raise DataDirError(
            f"{path} is corrupt: an identity key is {SEED_BYTES * 2} hex characters "
            f"({SEED_BYTES} bytes), this one has {len(seed)} bytes; restore it from a backup "
            "(deleting it gives this node a new identity)")
    return Identity.from_seed(seed)


def _load_config(path: Path) -> ConfigFile:
    from .config import read_file  # its ConfigError is a DataDirError

    return read_file(path)


def check_network(name: object, where: str = "") -> None:
    """Refuse a name that ops could not carry (core/ops.py `valid_network`)."""
    from .core.ops import valid_network

    if not valid_network(name):
        raise DataDirError(f"{where + ': ' if where else ''}{name!r} is not a network name "
                           "(1-64 characters: lowercase letters, digits, '-', '.', '_')")
