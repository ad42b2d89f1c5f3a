"""The PostgreSQL foundation: the schema registry, `aurora db init|up|down`, the config switch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aurora.config import load_stack
from aurora.db import schema
from aurora.db.postgres import DatabaseError, DatabaseUnavailableError, connect, redact
from aurora.home import Home
from support import REPO, PgCluster, free_port


def aurora(*args: str, env_home: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "AURORA_HOME": str(env_home)}
    return subprocess.run([sys.executable, "-m", "aurora", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_database_url_defaults_to_sqlite_and_env_overrides(home: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    # the shipped configuration (a test home may be on PostgreSQL: AURORA_TEST_BACKEND)
    assert json.loads((REPO / "config" / "stack.json").read_text())["database_url"] == ""
    monkeypatch.setenv("AURORA_DATABASE_URL", "")
    assert load_stack(Home(home)).database_url == ""
    monkeypatch.setenv("AURORA_DATABASE_URL", "postgresql://a@127.0.0.1:5/x")
    assert load_stack(Home(home)).database_url == "postgresql://a@127.0.0.1:5/x"
    monkeypatch.setenv("AURORA_DATABASE_URL", "mysql://nope")
    with pytest.raises(Exception, match="database_url"):
        load_stack(Home(home))


def test_init_is_idempotent_and_creates_every_registered_table(pg_url: str) -> None:
    schema.init(pg_url)
    schema.init(pg_url)  # again: no error, nothing duplicated
    wanted = set().union(*(s.tables for s in schema.registered()))
    assert wanted <= schema.existing_tables(pg_url)
    assert schema.is_initialised(pg_url)
    with connect(pg_url) as conn:
        rows = conn.execute("SELECT component, version FROM aurora_schema").fetchall()
    assert {name for name, _ in rows} == {s.name for s in schema.registered()}


def test_init_refuses_a_database_holding_foreign_tables(pg_url: str) -> None:
    with connect(pg_url) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    with pytest.raises(DatabaseError, match="invoices"):
        schema.init(pg_url)
    assert schema.existing_tables(pg_url) == {"invoices"}  # nothing was created


def test_unreachable_server_is_unavailable_error() -> None:
    url = f"postgresql://aurora:secret@127.0.0.1:{free_port()}/aurora"
    with pytest.raises(DatabaseUnavailableError) as info:
        connect(url)
    assert "secret" not in str(info.value)
    assert redact(url) in str(info.value)


def test_db_init_command(home: Path, pg_cluster: PgCluster) -> None:
    url = pg_cluster.database()
    done = aurora("db", "init", "--url", url, env_home=home)
    assert done.returncode == 0, done.stderr
    assert "schema ready" in done.stdout
    with connect(url) as conn:
        conn.execute("CREATE TABLE other (id int)")
    refused = aurora("db", "init", "--url", url, env_home=home)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and "other" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_db_up_and_down(tmp_path: Path) -> None:
    """`aurora db up` starts a cluster in ops/data/pg with the schema; `down` stops it by PID."""
    import tempfile

    from support import make_home

    # the server runs as the postgres user: its home must be searchable by that user
    root = Path(tempfile.mkdtemp(prefix="aurora-dbup-"))
    root.chmod(0o755)
    try:
        home = make_home(root / "home")
        port = free_port()
        up = aurora("db", "up", "--port", str(port), env_home=home)
        assert up.returncode == 0, up.stderr
        url = f"postgresql://aurora@127.0.0.1:{port}/aurora"
        assert url in up.stdout
        assert schema.is_initialised(url)
        pid = json.loads((home / "ops" / "run" / "postgres.pid").read_text())["pid"]
        again = aurora("db", "up", "--port", str(port), env_home=home)
        assert again.returncode != 0 and f"pid {pid}" in again.stderr
        down = aurora("db", "down", env_home=home)
        assert down.returncode == 0 and "stopped" in down.stdout
        assert not Path(f"/proc/{pid}").exists() or "postgres" not in Path(
            f"/proc/{pid}/cmdline").read_text(errors="replace")
        with pytest.raises(DatabaseUnavailableError):
            connect(url)
    finally:
        aurora("db", "down", env_home=root / "home")
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def test_initialised_fixture_databases_are_fresh_copies(pg_ledger_url: str,
                                                        pg_cluster: PgCluster) -> None:
    assert schema.is_initialised(pg_ledger_url)
    with connect(pg_ledger_url) as conn:
        conn.execute("INSERT INTO merkle_hashes (idx, hash) VALUES (0, %s)", (b"\0" * 32,))
    other = pg_cluster.database(initialised=True)
    with connect(other) as conn:
        assert conn.execute("SELECT count(*) FROM merkle_hashes").fetchone() == (0,)
