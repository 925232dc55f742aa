"""``<data dir>/run.json``: where a running node can be reached, for the CLI client.

    {"pid": 1234, "control_url": "http://127.0.0.1:7410",
     "peer_url": "http://0.0.0.0:7411", "started_at": 1795000000000}

The daemon writes it once both ports listen and removes it on a clean shutdown.
A crash leaves it behind, so `read` trusts it only while its pid is alive. It is
mode 0600 like the token beside it: it says which port takes that token.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RUN_FILE = "run.json"
MODE = 0o600


@dataclass(frozen=True, slots=True)
class RunInfo:
    pid: int
    control_url: str
    peer_url: str
    started_at: int  # Unix time in milliseconds, like op timestamps


def write(data_dir: Path, *, pid: int, control_url: str, peer_url: str,
          started_at: int | None = None) -> RunInfo:
    """Replace run.json atomically (a reader sees the old file or the new one, whole);
    `started_at` defaults to now."""
    if started_at is None:  # an adapter at the edge, so it may read the clock
        started_at = time.time_ns() // 1_000_000
    info = RunInfo(pid, control_url, peer_url, started_at)
    path = data_dir / RUN_FILE
    temp = data_dir / f".{RUN_FILE}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()  # left by a crash of a process with our pid
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(fd, MODE)  # the umask may have taken bits away
            json.dump(asdict(info), file)
            file.write("\n")
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return info


def read(data_dir: Path) -> RunInfo | None:
    """The running node's RunInfo; None when there is no file, it is unreadable, or
    its process is gone (a crash left it behind)."""
    try:
        raw = json.loads((data_dir / RUN_FILE).read_text("utf-8"))
        info = RunInfo(**raw)
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        return None
    if not (type(info.pid) is int and isinstance(info.control_url, str)
            and isinstance(info.peer_url, str) and type(info.started_at) is int):
        return None
    return info if pid_alive(info.pid) else None


def remove(data_dir: Path, pid: int | None = None) -> None:
    """Remove run.json if it is `pid`'s (default: this process's), so that a second
    node that failed to start never removes the first one's file."""
    path = data_dir / RUN_FILE
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError, ValueError):
        raw = None  # corrupt: of use to nobody, so whoever calls may remove it
    owner = raw.get("pid") if isinstance(raw, dict) else None
    if owner is None or owner == (os.getpid() if pid is None else pid):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (signal 0 checks without sending anything)."""
    if pid <= 0:  # 0 and negatives name process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:
        return False
    return True
