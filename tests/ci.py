"""Tests that need something a machine may lack (root, network namespaces, a tool).

Elsewhere they skip with the reason; under CI (`CI=true`), which must run every
test, the same reason fails the test instead of hiding it as a skip.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def skip_or_fail(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)", pytrace=False)
    pytest.skip(reason)
