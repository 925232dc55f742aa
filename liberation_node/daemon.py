"""Running a node as a daemon: event loop, signals, logging (like uvicorn's server.py).

Startup -> run -> shutdown: the first SIGINT/SIGTERM drains (peers get a CLOSE,
the store is flushed and closed, run.json is removed); a second one forces an
immediate exit. A start that fails releases what it took and raises
`StartupError` with one line for a person; the traceback goes to the log at
DEBUG (shown with --debug).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from typing import Any

from .config import NodeConfig
from .datadir import DataDirError
from .node import Node
from .runtime import tune_gc
from .store.base import StoreError

log = logging.getLogger("liberation_node")


class StartupError(Exception):
    """The node could not start; the message is one line for a person."""


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, DataDirError | StoreError):
        return str(exc)
    if isinstance(exc, OSError):  # a port in use, most likely
        return f"cannot start: {exc.strerror or exc}" + (
            f" ({exc.filename})" if exc.filename else "")
    return f"cannot start: {type(exc).__name__}: {exc} (run with --debug for the traceback)"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": round(record.created, 3), "level": record.levelname,
                                 "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(as_json: bool, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(
        "%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aioice", "aiortc", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def serve(config: NodeConfig, ready: asyncio.Event | None = None) -> None:
    node = Node(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("stopping (again to force)")
            stop.set()
        else:
            log.warning("forced exit")
            os._exit(1)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        try:
            await node.start()
        except Exception as exc:
            log.debug("start failed", exc_info=True)
            raise StartupError(_one_line(exc).replace("\n", " ")) from None
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        try:
            await node.stop()
        except Exception:  # never let a failed shutdown hide why the node stopped
            log.exception("shutdown failed")
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run(config: NodeConfig) -> None:
    """Run the node until a signal stops it; raises `StartupError` if it cannot start."""
    tune_gc()
    setup_logging(config.log_json, logging.DEBUG if config.debug else logging.INFO)
    try:
        import uvloop  # the fast loop where available (DESIGN §1)
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
