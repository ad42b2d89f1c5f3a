"""Shared fixtures: throwaway Aurora homes on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import REPO, TESTDATA, free_port, make_home, tools_check  # noqa: F401


def pytest_runtest_setup(item: pytest.Item) -> None:
    tools_check(item)  # the one skip-or-fail rule for tests that need a system tool


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh, initialised Aurora home; AURORA_HOME points at it for the test."""
    root = make_home(tmp_path / "home")
    monkeypatch.setenv("AURORA_HOME", str(root))
    monkeypatch.delenv("AURORA_LEDGER_DB", raising=False)
    yield root
