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
from aurora.ledger.pgbackup import SCRATCH_DATABASE, SCRATCH_MARK
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


def _server(pg_cluster: PgCluster, query: str) -> list[tuple[object, ...]]:
    with connect(pg_cluster.url("postgres")) as conn:
        return conn.execute(query).fetchall()


def test_backups_verify_in_one_reused_scratch_database(home: Path, db: str,
                                                       pg_cluster: PgCluster) -> None:
    # a database made and dropped per backup cost a forced checkpoint of the whole server
    # each time (DROP DATABASE), beside the replicas' appends, 96 times a soak day
    with Ledger.open(home) as ledger:
        fill(ledger, 5)
    forced = "SELECT checkpoints_req FROM pg_stat_bgwriter"
    before = _server(pg_cluster, forced)
    first, second = backup(Home(home)), backup(Home(home))
    assert (first.tree_size, second.tree_size) == (5, 6)  # the second holds the first's entry
    assert _server(pg_cluster, forced) == before
    assert _server(pg_cluster, "SELECT datname FROM pg_database WHERE datname LIKE "
                               "'aurora_verify%'") == [(SCRATCH_DATABASE,)]
    with connect(pg_cluster.url(SCRATCH_DATABASE)) as conn:  # left empty
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                            ).fetchone() == (0,)


def test_a_scratch_database_name_held_by_something_else_is_refused(home: Path, db: str,
                                                                   pg_cluster: PgCluster
                                                                   ) -> None:
    with Ledger.open(home) as ledger:
        fill(ledger, 3)
    backup(Home(home))  # makes the scratch database if no test before did
    scratch = pg_cluster.url(SCRATCH_DATABASE)
    with connect(scratch) as conn:
        conn.execute(f"COMMENT ON DATABASE {SCRATCH_DATABASE} IS 'the finance team''s'")
        conn.execute("CREATE TABLE invoices (n int)")
    try:
        with pytest.raises(BackupError, match="aurora_verify .* is not Aurora's scratch"):
            backup(Home(home))
        with connect(scratch) as conn:  # nothing of theirs was touched
            assert conn.execute("SELECT count(*) FROM invoices").fetchone() == (0,)
        manifest = (Home(home).backups_dir / "MANIFEST.jsonl").read_text().splitlines()
        assert len(manifest) == 1  # the refused backup did not count
    finally:
        with connect(scratch) as conn:
            conn.execute("DROP TABLE invoices")
            conn.execute(f"COMMENT ON DATABASE {SCRATCH_DATABASE} IS '{SCRATCH_MARK}'")
