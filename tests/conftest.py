"""Shared fixtures: throwaway Aurora homes on free loopback ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import (  # noqa: F401  (re-exported)
    REPO,
    TESTDATA,
    PgCluster,
    free_port,
    make_home,
    session_cluster,
    stop_session_cluster,
    suite_backend,
    tools_check,
)


def pytest_report_header() -> str:
    return f"aurora test backend: {suite_backend()} (AURORA_TEST_BACKEND)"


def pytest_sessionfinish() -> None:
    stop_session_cluster()  # the PostgreSQL cluster, by PID, if the session started one


def pytest_runtest_setup(item: pytest.Item) -> None:
    tools_check(item)  # the one skip-or-fail rule for tests that need a system tool


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh, initialised Aurora home; AURORA_HOME points at it for the test (on the
    suite's backend, or on SQLite for a test marked ``sqlite_mode``)."""
    sqlite_mode = request.node.get_closest_marker("sqlite_mode") is not None
    root = make_home(tmp_path / "home", **({"database_url": ""} if sqlite_mode else {}))
    monkeypatch.setenv("AURORA_HOME", str(root))
    monkeypatch.delenv("AURORA_LEDGER_DB", raising=False)
    monkeypatch.delenv("AURORA_CONFIG_DIR", raising=False)
    monkeypatch.delenv("AURORA_TREATY_FILE", raising=False)
    monkeypatch.delenv("AURORA_DATABASE_URL", raising=False)
    yield root
    url = json.loads((root / "config" / "stack.json").read_text()).get("database_url")
    if url and suite_backend() == "postgresql":
        session_cluster().drop(url)  # per-test databases would fill the disk over a run


@pytest.fixture(scope="session")
def pg_cluster() -> PgCluster:
    """One throwaway PostgreSQL cluster for the test session (missing PostgreSQL fails;
    stopped at the session's end)."""
    from aurora.errors import AuroraError

    try:
        return session_cluster()
    except AuroraError as exc:
        pytest.fail(f"cannot start PostgreSQL for the tests: {exc}")


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database of the session cluster."""
    return pg_cluster.database()


@pytest.fixture
def pg_ledger_url(pg_cluster: PgCluster) -> str:
    """A fresh database holding every registered schema (ledger, treaty state)."""
    return pg_cluster.database(initialised=True)
