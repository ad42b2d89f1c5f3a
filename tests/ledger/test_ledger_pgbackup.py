"""Backups of a PostgreSQL ledger: pg_dump, verified in a scratch database and sealed
before they count; restore refuses a copy that does not verify, and a non-empty target."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_support import CliResult, fill

from aurora.db.postgres import connect
from aurora.home import Home
from aurora.ledger import BackupError, Ledger
from aurora.ledger.backup import backup, restore
from support import PgCluster

Cli = Callable[..., CliResult]


@pytest.fixture
def backend() -> str:
    return "postgresql"


def test_backup_restore_round_trip(home: Path, db: str, cli: Cli,
                                   pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch
                                   ) -> None:
    with Ledger.open(home) as ledger:
        fill(ledger, 25)
        root = ledger.tree_head().root
    result = cli("backup", "--json")
    assert result.code == 0, result.err
    info = json.loads(result.out)
    out = Home(home).backups_dir
    assert info["file"].endswith(".sql.gz") and info["tree_size"] == 25
    assert info["root_hash"] == root.hex() and info["checkpoint_size"] == 25
    manifest = [json.loads(line) for line in (out / "MANIFEST.jsonl").read_text().splitlines()]
    assert manifest == [info]
    assert (out / f"{info['file']}.checkpoint").read_text().startswith("aurora.local/")
    assert b"COPY public.audit_log" in gzip.decompress((out / info["file"]).read_bytes())
    with Ledger.open(home, readonly=True) as reader:
        assert reader.get(25).kind == "backup"  # recorded in the ledger too

    # the primary is lost: restore into a new, empty database
    with pytest.raises(BackupError, match="already holds a ledger"):
        restore(Home(home), out / info["file"])
    fresh = pg_cluster.database()
    monkeypatch.setenv("AURORA_DATABASE_URL", fresh)
    result = cli("restore", str(out / info["file"]), "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["tree_size"] == 25
    with Ledger.open(home, readonly=True) as restored:
        assert restored.consistency_proof(25).old_root == root
        assert restored.get(25).kind == "restore"
    assert cli("verify-audit").code == 0


def test_restore_refuses_a_copy_that_does_not_verify(home: Path, db: str,
                                                     pg_cluster: PgCluster,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    with Ledger.open(home) as ledger:
        fill(ledger, 8)
    info = backup(Home(home))
    packed = Home(home).backups_dir / info.file
    text = gzip.decompress(packed.read_bytes()).decode()
    forged = tmp_path / info.file
    forged.write_bytes(gzip.compress(text.replace('\\\\"i\\\\":5', '\\\\"i\\\\":6').replace(
        '"i":5', '"i":6').encode()))
    (tmp_path / f"{info.file}.checkpoint").write_text(
        (Home(home).backups_dir / f"{info.file}.checkpoint").read_text())
    fresh = pg_cluster.database()
    monkeypatch.setenv("AURORA_DATABASE_URL", fresh)
    with pytest.raises(BackupError, match="refusing to restore.*TAMPERED.*leaf 5"):
        restore(Home(home), forged)
    with connect(fresh) as conn:  # nothing was created or loaded
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                            ).fetchone() == (0,)
