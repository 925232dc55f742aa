"""Real daemons on real hosts: network namespaces built by scripts/meshlab.py (needs
root and `ip netns`; skipped elsewhere, a failure under CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.meshlab import Lab, cleanup_stale, unavailable
from tests.netns import skip_or_fail


def new_lab(workdir: Path) -> Lab:
    reason = unavailable()
    if reason:
        skip_or_fail(f"network namespace tests: {reason}")
    cleanup_stale()
    return Lab(workdir)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with new_lab(tmp_path / "lab") as made:
        yield made
