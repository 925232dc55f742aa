"""A blocking client of the control API, for the CLI.

It finds the node through ``<data dir>/run.json`` (runfile.py) and authenticates
with ``<data dir>/control.token``. Each call runs its own event loop
(`asyncio.run`): the CLI makes one or two calls and exits. Every failure is a
`ControlError` whose message is one line a person can act on.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from .. import datadir
from . import runfile

TIMEOUT_S = 10.0


class ControlError(Exception):
    """The call failed; the message is one line for a person."""


class NodeNotRunning(ControlError):
    """No node answers for this data directory."""


def _loopback(url: URL) -> URL:
    """A node listening on every address is reached on loopback: the control port
    accepts only loopback Host names."""
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
    host = url.raw_host or ""
    return url.with_host(wildcard[host]) if host in wildcard else url


class ControlClient:
    def __init__(self, data_dir: Path, timeout: float = TIMEOUT_S) -> None:
        self.data_dir = data_dir
        self.timeout = timeout

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/api/v1/status")
        return result

    def views(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/api/v1/views")
        return result

    def register(self, name: str) -> str:
        return self._op("/api/v1/register", {"name": name})

    def post(self, text: str, channel: str, priority: int, to: str | None) -> str:
        body: dict[str, Any] = {"text": text, "channel": channel, "priority": priority}
        if to is not None:
            body["to"] = to
        return self._op("/api/v1/messages", body)

    def claim(self) -> str:
        return self._op("/api/v1/ledger/claim", None)

    def transfer(self, to: str, amount_cents: int, memo: str) -> str:
        return self._op("/api/v1/ledger/transfer",
                        {"to": to, "amount_cents": amount_cents, "memo": memo})

    def retract(self, op_id: str) -> str:
        return self._op(f"/api/v1/messages/{quote(op_id, safe='')}/retract", None)

    def _op(self, path: str, body: dict[str, Any] | None) -> str:
        result = self._call("POST", path, body)
        if not isinstance(result, dict) or not isinstance(result.get("id"), str):
            raise ControlError(f"the node answered {path} without an op id")
        op_id: str = result["id"]
        return op_id

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        not_running = NodeNotRunning(f"no node is running for {self.data_dir} "
                                     "(start one with: liberation-node run)")
        info = runfile.read(self.data_dir)
        if info is None:
            raise not_running
        try:
            token = datadir.load(self.data_dir).control_token()
        except datadir.DataDirError as exc:
            raise ControlError(str(exc)) from None
        url = str(_loopback(URL(info.control_url)).with_path(path))
        try:
            return asyncio.run(self._request(method, url, token, body))
        except aiohttp.ClientConnectorError:
            raise not_running from None
        except TimeoutError:
            raise ControlError(f"the node at {info.control_url} did not answer within "
                              f"{self.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise ControlError(f"talking to the node at {info.control_url}: "
                              f"{exc or type(exc).__name__}") from None

    async def _request(self, method: str, url: str, token: str,
                       body: dict[str, Any] | None) -> Any:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.request(method, url, json=body, headers=headers,
                                allow_redirects=False) as response:
            try:
                result = json.loads(await response.read())
            except (UnicodeDecodeError, ValueError, RecursionError):
                result = None
            if response.status >= 400:
                error = result.get("error") if isinstance(result, dict) else None
                raise ControlError(f"{error or response.reason} (HTTP {response.status})")
            if result is None:
                raise ControlError(f"the node answered {url} with something other than JSON")
            return result
