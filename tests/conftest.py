"""Shared fixtures: throwaway Aurora homes on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import (  # noqa: F401  (re-exported)
    REPO,
    TESTDATA,
    PgCluster,
    free_port,
    make_home,
    tools_check,
)


def pytest_runtest_setup(item: pytest.Item) -> None:
    tools_check(item)  # the one skip-or-fail rule for tests that need a system tool


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh, initialised Aurora home; AURORA_HOME points at it for the test."""
    root = make_home(tmp_path / "home")
    monkeypatch.setenv("AURORA_HOME", str(root))
    monkeypatch.delenv("AURORA_LEDGER_DB", raising=False)
    monkeypatch.delenv("AURORA_CONFIG_DIR", raising=False)
    monkeypatch.delenv("AURORA_TREATY_FILE", raising=False)
    yield root


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL cluster for the test session (missing PostgreSQL fails)."""
    from aurora.errors import AuroraError

    try:
        cluster = PgCluster()
    except AuroraError as exc:
        pytest.fail(f"cannot start PostgreSQL for the tests: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database of the session cluster."""
    return pg_cluster.database()


@pytest.fixture
def pg_ledger_url(pg_cluster: PgCluster) -> str:
    """A fresh database holding every registered schema (ledger, treaty state)."""
    return pg_cluster.database(initialised=True)
