"""Operator tools under hostile files: bounded reads and bounded decompression
(issue 13, defect 8). Each refusal is one line, exit 2, and changes nothing."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_support import CliResult, fill

from aurora.home import Home
from aurora.ledger import Ledger
from aurora.ledger.backup import MIN_EXPANDED_BYTES

Cli = Callable[..., CliResult]


def one_error_line(result: CliResult, code: int, text: str) -> None:
    assert result.code == code, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], result.err
    assert "Traceback" not in result.err + result.out


@pytest.fixture
def filled(home: Path) -> Home:
    with Ledger.open(home) as ledger:
        fill(ledger, 5)
    return Home(home)


def test_verify_proof_of_an_endless_file_stops_with_one_line(filled: Home, cli: Cli) -> None:
    one_error_line(cli("verify-proof", "/dev/zero"), 2, "over 4 MiB")


def _listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b""
            for p in sorted(root.rglob("*"))}


@pytest.mark.sqlite_mode
def test_restore_of_a_gzip_bomb_refuses_early_and_touches_nothing(filled: Home, cli: Cli,
                                                                  tmp_path: Path) -> None:
    bomb = tmp_path / "ledger-bomb.db.gz"
    zeros = bytes(1 << 20)
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(b"SQLite format 3\x00")
        for _ in range(3 * MIN_EXPANDED_BYTES // len(zeros)):  # three times the floor
            out.write(zeros)
    assert bomb.stat().st_size * 50 < MIN_EXPANDED_BYTES  # so the floor is the limit
    before = _listing(filled.data_dir)
    one_error_line(cli("restore", str(bomb)), 2,
                   f"expands past {MIN_EXPANDED_BYTES // (1 << 20)} MiB")
    assert _listing(filled.data_dir) == before  # no partial file, nothing moved aside
