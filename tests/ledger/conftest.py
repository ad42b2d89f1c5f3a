"""Fixtures for the ledger tests: an open ledger, the CLI in-process, paths."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ledger_support import CliResult

from aurora.home import Home
from aurora.ledger import Ledger
from aurora.ledger.note import Verifier
from aurora.ledger.storage import Location, ledger_location
from support import suite_backend


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Where the ledger lives; tests marked ``@both`` (ledger_support) run on each, the
    others on the suite's backend (AURORA_TEST_BACKEND) or, marked ``sqlite_mode``, on
    SQLite."""
    if request.node.get_closest_marker("sqlite_mode") is not None:
        return "sqlite"
    return suite_backend()


@pytest.fixture
def home(home: Path, backend: str, request: pytest.FixtureRequest,
         monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared home, with database_url pointing at a fresh PostgreSQL database when
    the test runs on the PostgreSQL backend."""
    if backend == "postgresql":
        monkeypatch.setenv("AURORA_DATABASE_URL", request.getfixturevalue("pg_ledger_url"))
    else:  # the SQLite file, whatever the suite's backend
        monkeypatch.setenv("AURORA_DATABASE_URL", "")
    return home


@pytest.fixture
def ledger(home: Path) -> Iterator[Ledger]:
    with Ledger.open(home) as opened:
        yield opened


@pytest.fixture
def verifier(home: Path) -> Verifier:
    return Verifier.from_vkey(Home(home).ledger_vkey.read_text())


@pytest.fixture
def db(home: Path) -> Location:
    """The ledger's location: the SQLite file, or the PostgreSQL URL."""
    return ledger_location(Home(home))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `aurora ledger <args>` in this process, as `aurora` would (run_app)."""
    from aurora.cli import app
    from aurora.command import run_app

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            run_app(app, ["ledger", *args], prog="aurora")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
