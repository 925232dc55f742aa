"""A blocking client of the control API (docs/api.md), for the CLI.

It finds the node through ``<data dir>/run.json`` (runfile.py) and authenticates
with ``<data dir>/control.token``. It uses the standard library only: a CLI
command that talks to the node must start fast, and importing aiohttp alone
takes longer than a whole `liberation-node status` should (scripts/bench_cli.py).
Every failure is a `ControlError` whose message is one line a person can act on.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from .. import datadir
from . import runfile

TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 64 * 2**20  # a bound, far above any page of results
PAGE_LIMIT = 500  # the API's largest page (API contract, "Lists are paged")


class ControlError(Exception):
    """The call failed; the message is one line for a person."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when the node answered


class NodeNotRunning(ControlError):
    """No node answers for this data directory."""


def loopback_host(host: str) -> str:
    """A node listening on every address is reached on loopback: the control port
    accepts only loopback Host names."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


class ControlClient:
    def __init__(self, data_dir: Path, timeout: float = TIMEOUT_S,
                 start_hint: str = "liberation-node run") -> None:
        self.data_dir = data_dir
        self.timeout = timeout
        self.start_hint = start_hint
        self._info: runfile.RunInfo | None = None
        self._token: str | None = None

    # -- finding the node -----------------------------------------------------------------

    def not_running(self) -> NodeNotRunning:
        return NodeNotRunning(f"no node is running for {self.data_dir} "
                              f"(start one with: {self.start_hint})")

    def run_info(self) -> runfile.RunInfo:
        """The running node's run.json; `NodeNotRunning` when there is none or its
        process is gone."""
        if self._info is None:
            try:  # a data directory of another user (a system service) is not "no node"
                os.stat(self.data_dir / runfile.RUN_FILE)
            except PermissionError:
                raise ControlError(f"cannot read {self.data_dir / runfile.RUN_FILE}: permission "
                                   "denied (run this as the node's user)") from None
            except OSError:
                pass
            self._info = runfile.read(self.data_dir)
            if self._info is None:
                raise self.not_running()
        return self._info

    def _address(self) -> tuple[str, int]:
        url = urlsplit(self.run_info().control_url)
        if url.scheme != "http" or url.port is None:
            raise ControlError(f"{self.data_dir / runfile.RUN_FILE}: cannot use control_url "
                               f"{self.run_info().control_url!r}")
        return loopback_host(url.hostname or ""), url.port

    def token(self) -> str:
        if self._token is None:
            try:
                self._token = datadir.read_control_token(self.data_dir)
            except datadir.DataDirError as exc:
                raise ControlError(str(exc)) from None
        return self._token

    # -- HTTP -----------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None,
                query: Mapping[str, Any] | None = None) -> Any:
        """Call the API; the JSON answer, or a `ControlError` with the node's message."""
        host, port = self._address()
        params = {k: v for k, v in (query or {}).items() if v is not None}
        target = path + ("?" + urlencode(params) if params else "")
        headers = {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        try:
            connection.request(method, target, payload, headers)
            response = connection.getresponse()
            raw = response.read(MAX_RESPONSE_BYTES + 1)
        except ConnectionRefusedError:
            raise self.not_running() from None
        except TimeoutError:
            raise ControlError(f"the node at {self.run_info().control_url} did not answer "
                               f"within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise ControlError(f"talking to the node at {self.run_info().control_url}: "
                               f"{exc or type(exc).__name__}") from None
        finally:
            connection.close()
        if len(raw) > MAX_RESPONSE_BYTES:
            raise ControlError(f"the node's answer to {path} is over "
                               f"{MAX_RESPONSE_BYTES // 2**20} MiB")
        try:
            result = json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError):
            result = None
        if response.status >= 400:
            error = result.get("error") if isinstance(result, dict) else None
            if response.status in (404, 405) and \
                    error in (None, "", "not found", "method not allowed"):  # no such route
                error = (f"the running node has no {path}; is it an older version? "
                         "(restart it)")
            raise ControlError(f"{error or response.reason} (HTTP {response.status})",
                               response.status)
        if result is None:
            raise ControlError(f"the node answered {path} with something other than JSON")
        return result

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)

    def page(self, path: str, key: str, limit: int, cursor: str | None = None,
             **query: Any) -> tuple[list[Any], str | None]:
        """One page of a paged list: its items and the cursor of the next page."""
        result = self.get(path, limit=limit, cursor=cursor, **query)
        items = result.get(key) if isinstance(result, dict) else None
        following = result.get("next_cursor") if isinstance(result, dict) else None
        if not isinstance(items, list) or not (following is None or isinstance(following, str)):
            raise ControlError(f"the node answered {path} without a list of {key}")
        return items, following

    def every(self, path: str, key: str, **query: Any) -> Iterator[Any]:
        """Every item of a paged list, page after page."""
        cursor: str | None = None
        while True:
            items, cursor = self.page(path, key, PAGE_LIMIT, cursor, **query)
            yield from items
            if cursor is None or not items:
                return

    # -- reads ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self._object(self.get("/api/v1/status"), "/api/v1/status")

    def views(self) -> dict[str, Any]:
        return self._object(self.get("/api/v1/views"), "/api/v1/views")

    def peers(self) -> list[dict[str, Any]]:
        result = self._object(self.get("/api/v1/peers"), "/api/v1/peers")
        peers = result.get("peers")
        if not isinstance(peers, list):
            raise ControlError("the node answered /api/v1/peers without a list of peers")
        return peers

    def ledger(self) -> dict[str, Any]:
        return self._object(self.get("/api/v1/ledger"), "/api/v1/ledger")

    def human(self, node_id: str) -> dict[str, Any] | None:
        """One registered human; None when `node_id` is not registered."""
        path = f"/api/v1/ledger/humans/{quote(node_id, safe='')}"
        try:
            return self._object(self.get(path), path)
        except ControlError as exc:
            if exc.status == 404:
                return None
            raise

    def topology(self) -> dict[str, Any]:
        return self._object(self.get("/api/v1/topology"), "/api/v1/topology")

    def login(self) -> dict[str, Any]:
        return self._object(self.request("POST", "/api/v1/login"), "/api/v1/login")

    @staticmethod
    def _object(result: Any, path: str) -> dict[str, Any]:
        if not isinstance(result, dict):
            raise ControlError(f"the node answered {path} with something other than an object")
        return result

    # -- writes (each returns the new op's id) --------------------------------------------

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
        result = self.request("POST", path, body)
        if not isinstance(result, dict) or not isinstance(result.get("id"), str):
            raise ControlError(f"the node answered {path} without an op id")
        op_id: str = result["id"]
        return op_id

    # -- the event stream -----------------------------------------------------------------

    def events(self, opened: Any = None) -> Iterator[dict[str, Any]]:
        """Follow /api/v1/events: each event as a dict, until the node closes the stream.
        `opened()`, when given, is called once the stream is open."""
        from . import wsclient

        host, port = self._address()
        try:
            socket_ = wsclient.connect(host, port, "/api/v1/events",
                                       {"Authorization": f"Bearer {self.token()}"},
                                       self.timeout)
        except ConnectionRefusedError:
            raise self.not_running() from None
        except wsclient.HandshakeError as exc:
            raise ControlError(str(exc), exc.status) from None
        except (OSError, wsclient.WebSocketError) as exc:
            raise ControlError(f"opening the event stream: {exc}") from None
        with socket_:
            if opened is not None:
                opened()
            try:
                for text in socket_.messages(idle_timeout=wsclient.IDLE_TIMEOUT_S):
                    try:
                        event = json.loads(text)
                    except ValueError:
                        continue
                    if isinstance(event, dict):
                        yield event
            except TimeoutError:
                raise ControlError(f"no word from the node for {wsclient.IDLE_TIMEOUT_S:g} s: "
                                   "the event stream is gone") from None
            except (OSError, wsclient.WebSocketError) as exc:
                raise ControlError(f"the event stream broke: {exc or type(exc).__name__}") \
                    from None
