"""Fixtures for the ledger tests: an open ledger, the CLI in-process, paths."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ledger_support import CliResult

from aurora.home import Home
from aurora.ledger import Ledger
from aurora.ledger.note import Verifier


@pytest.fixture
def ledger(home: Path) -> Iterator[Ledger]:
    with Ledger.open(home) as opened:
        yield opened


@pytest.fixture
def verifier(home: Path) -> Verifier:
    return Verifier.from_vkey(Home(home).ledger_vkey.read_text())


@pytest.fixture
def db(home: Path) -> Path:
    return Home(home).ledger_db


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
