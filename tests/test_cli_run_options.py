"""`liberation-node run` refuses bad dialing options before starting (exit 2, one line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_cli import cli


@pytest.mark.parametrize(("args", "message"), [
    (["--allow-origin", "null"], "origin 'null': expected scheme://host[:port]"),
    (["--allow-origin", "https://app.example.org/page"], "no path"),
    (["--bootstrap", "ftp://192.0.2.1"], "is not an http(s) signaling URL"),
    (["--bootstrap", "192.0.2.1:7411#lnwrong"], "bad node id after '#'"),
])
def test_bad_dialing_options(tmp_path: Path, args: list[str], message: str) -> None:
    done = cli(tmp_path, "run", "--no-mdns", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
