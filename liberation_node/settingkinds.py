"""How a setting's value is written and checked (config.py): its kind says how a value
from config.toml is checked and how one from the environment is parsed; the checks
beyond the kind are those `Setting.check` names (network names, ops.md §14; URLs,
ops.md §8.2; bootstrap entries, transport.md §8; ICE servers, transport.md §6.1).
Each raises ValueError with what was expected.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .api.origins import parse_origin
from .core.bodies import CHANNELS, MAX_NAME_BYTES
from .core.ops import valid_network
from .core.records import MAX_URL_BYTES
from .discovery.config import MdnsConfig
from .transport.config import parse_ice_server


@dataclass(frozen=True)
class Kind:
    """How a setting's value is written: `toml` checks a value from config.toml,
    `text` parses one from the environment; both raise ValueError."""

    describe: str
    toml: Callable[[object], Any]
    text: Callable[[str], Any]


def _expect(ok: bool, kind: str, value: object) -> None:
    if not ok:
        raise ValueError(f"expected {kind}, got {value!r}")


def _string() -> Kind:
    def toml(value: object) -> str:
        _expect(isinstance(value, str), "a string", value)
        return str(value)

    return Kind("a string", toml, lambda text: text)


def integer(low: int, high: int) -> Kind:
    describe = f"an integer {low}-{high}"

    def toml(value: object) -> int:
        if type(value) is not int or not low <= value <= high:  # a bool is no int here
            raise ValueError(f"expected {describe}, got {value!r}")
        return value

    def text(value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError(f"expected {describe}, got {value!r}") from None
        return toml(number)

    return Kind(describe, toml, text)


def _seconds() -> Kind:
    describe = "a positive number of seconds"

    def toml(value: object) -> float:
        ok = type(value) in (int, float) and 0 < value < 86_400  # type: ignore[operator]
        _expect(ok, describe, value)
        return float(value)  # type: ignore[arg-type]

    def text(value: str) -> float:
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"expected {describe}, got {value!r}") from None
        return toml(number)

    return Kind(describe, toml, text)


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _boolean() -> Kind:
    def toml(value: object) -> bool:
        _expect(isinstance(value, bool), "true or false", value)
        return bool(value)

    def text(value: str) -> bool:
        word = value.strip().lower()
        if word not in _TRUE + _FALSE:
            raise ValueError(f"expected true or false, got {value!r}")
        return word in _TRUE

    return Kind("true or false", toml, text)


def _strings() -> Kind:
    def toml(value: object) -> tuple[str, ...]:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        _expect(ok, "a list of strings", value)
        return tuple(value)  # type: ignore[arg-type]

    def text(value: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in value.split(",") if part.strip())

    return Kind("a list of strings", toml, text)


STRING, BOOL, STRINGS, SECONDS = _string(), _boolean(), _strings(), _seconds()
PORT = integer(0, 65535)


# -- checks beyond the kind -----------------------------------------------------------------


def check_network(value: str) -> None:
    if not valid_network(value):
        raise ValueError(f"{value!r} is not a network name (1-64 characters: lowercase "
                         "letters, digits, '-', '.', '_')")


def check_origin(value: str) -> None:
    parse_origin(value)


def check_name(value: str) -> None:
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise ValueError(f"at most {MAX_NAME_BYTES} bytes of UTF-8")


def each(check: Callable[[str], None], most: int | None = None) -> Callable[[Any], None]:
    def run(values: tuple[str, ...]) -> None:
        if most is not None and len(values) > most:
            raise ValueError(f"at most {most}")
        for value in values:
            check(value)

    return run


def check_http_url(value: str) -> None:
    if not value.startswith(("http://", "https://")) or len(value) > MAX_URL_BYTES:
        raise ValueError(f"{value!r} is not an http(s) URL of at most {MAX_URL_BYTES} bytes")


def check_bootstrap(value: str) -> None:
    """A signaling URL in any form bootstrap.py takes (`host:port`, `http://host:port`,
    the full URL), with `#<node id>` or not, or a bootstrap list file (.toml)."""
    if value.endswith(".toml"):
        return
    from .bootstrap import BootstrapError, parse_argument

    try:
        parse_argument(value)
    except BootstrapError as exc:
        raise ValueError(str(exc).replace("--bootstrap ", "")) from None


def check_ip(value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def check_interface(value: str) -> None:
    MdnsConfig(interfaces=(value,))  # its own check of the name


def check_ice_server(value: str) -> None:
    parse_ice_server(value)


def check_channel(value: str) -> None:
    if value not in CHANNELS:
        raise ValueError(f"{value!r} is not a channel ({', '.join(CHANNELS)})")
