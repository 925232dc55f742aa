"""Network namespaces for tests that must not touch this machine's real interfaces
(the team's network-safety rule): a fresh namespace has only its own loopback, and
whatever runs inside (`ip netns exec NAME ...`) can reach nothing else.

Needs root and iproute2. Without them a test skips with the reason; with CI=true it
fails instead, since CI runs as root and must run these tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it under CI (where every such test must run)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(reason)


def require_namespaces() -> None:
    if os.geteuid() != 0:
        skip_or_fail("network namespaces need root")
    if shutil.which("ip") is None:
        skip_or_fail("network namespaces need iproute2 (the ip command)")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@contextlib.contextmanager
def namespace(name: str) -> Iterator[list[str]]:
    """A new namespace with loopback up; yields the command prefix that runs inside it.
    Deleted on exit (processes inside must be gone first: the caller's job)."""
    require_namespaces()
    with contextlib.suppress(subprocess.CalledProcessError):
        ip("netns", "delete", name)  # a leftover of a killed run
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        yield ["ip", "netns", "exec", name]
    finally:
        ip("netns", "delete", name)
