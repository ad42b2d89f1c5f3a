"""`aurora ledger migrate --to`: SQLite -> PostgreSQL and back, proven, never into a ledger."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_support import CliResult, fill, raw_sql

from aurora.ledger import Ledger

Cli = Callable[..., CliResult]


def heads(home: Path, db: str | None = None) -> tuple[list[tuple[int, bytes, str]], int]:
    with Ledger.open(home, db=db, readonly=True) as reader:
        return ([(c.tree_size, c.root_hash, c.note) for c in reader.checkpoints()],
                reader.size())


@pytest.mark.sqlite_mode
def test_sqlite_to_postgresql_and_back(home: Path, cli: Cli, pg_ledger_url: str,
                                       tmp_path: Path) -> None:
    with Ledger.open(home, checkpoint_every=0) as ledger:
        for _ in range(4):
            fill(ledger, 9)
        source_root = ledger.tree_head().root
    source_checkpoints, size = heads(home)
    assert size == 36 and len(source_checkpoints) >= 4

    result = cli("migrate", "--to", pg_ledger_url, "--json")
    assert result.code == 0, result.err
    info = json.loads(result.out)
    assert info["tree_size"] == 36 and info["root_hash"] == source_root.hex()
    assert info["last_checkpoint_before"] == 36 and info["first_checkpoint_after"] == 37
    moved_checkpoints, moved_size = heads(home, pg_ledger_url)
    assert moved_size == 37  # the copy plus its `migrate` entry
    assert moved_checkpoints[:len(source_checkpoints)] == source_checkpoints
    with Ledger.open(home, db=pg_ledger_url, readonly=True) as moved:
        assert moved.consistency_proof(36, 37).old_root == source_root
        assert moved.get(36).kind == "migrate"
        with Ledger.open(home, readonly=True) as source:
            assert [r.payload for r in moved.scan(stop_seq=36)] == \
                [r.payload for r in source.scan()]
    assert cli("verify-audit", "--db", pg_ledger_url).code == 0

    back = tmp_path / "back.db"
    result = cli("migrate", "--db", pg_ledger_url, "--to", str(back))
    assert result.code == 0, result.err
    assert "consistency proof 37 -> 38 verifies" in result.out
    back_checkpoints, back_size = heads(home, str(back))
    assert back_size == 38 and back_checkpoints[:len(moved_checkpoints)] == moved_checkpoints
    audited = json.loads(cli("verify-audit", "--db", str(back), "--json").out)
    assert audited["ok"] and audited["tree_size"] == 38


@pytest.mark.sqlite_mode
def test_refuses_a_target_that_holds_a_ledger(home: Path, cli: Cli, pg_ledger_url: str
                                              ) -> None:
    with Ledger.open(home) as ledger:
        fill(ledger, 5)
    with Ledger.open(home, db=pg_ledger_url) as other:
        fill(other, 2)
    result = cli("migrate", "--to", pg_ledger_url)
    assert result.code == 2 and result.err.startswith("error: ") and "already holds" in result.err
    assert heads(home, pg_ledger_url)[1] == 2  # untouched


@pytest.mark.sqlite_mode
def test_refuses_a_tampered_source(home: Path, cli: Cli, db: Path, pg_ledger_url: str) -> None:
    with Ledger.open(home) as ledger:
        fill(ledger, 5)
    raw_sql(db, "UPDATE audit_log SET kind = 'deploy' WHERE seq = 2")
    result = cli("migrate", "--to", pg_ledger_url)
    assert result.code != 0 and "TAMPERED" in result.err and "leaf 2" in result.err
    assert heads(home, pg_ledger_url)[1] == 0
