"""Fixtures for the real-daemon tests: every daemon a test starts is killed after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import Daemon


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()
