"""Tests that need root, namespaces or a tool skip elsewhere but fail under CI (tests/ci.py)."""

from __future__ import annotations

import pytest

from tests.ci import skip_or_fail


def test_a_missing_requirement_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        skip_or_fail("needs root")


def test_a_missing_requirement_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"needs root \(CI=true"):
        skip_or_fail("needs root")
