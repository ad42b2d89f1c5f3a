"""Helpers shared by every test folder (``from support import make_home``).

``tests`` is on pytest's ``pythonpath`` (pyproject.toml), so this module has one name
everywhere, unlike the per-folder ``conftest.py`` files.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from aurora.ports import free_port, free_port_run  # noqa: F401  (for the tests)
from aurora.soak.isolate import copy_home

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("AURORA_TESTDATA", REPO / "tests" / "testdata"))


# Under `make test` (the Makefile exports it) a missing tool fails the test: CI must not pass
# by skipping what it was meant to run. Elsewhere (a developer's `pytest tests/x`) it skips.
REQUIRE_TOOLS_ENV = "AURORA_REQUIRE_TOOLS"


def missing_tools(*tools: str) -> list[str]:
    """The tools not on PATH; ``"a|b"`` is satisfied by either name."""
    return [tool for tool in tools
            if not any(shutil.which(name) for name in tool.split("|"))]


def needs_tools(*tools: str) -> pytest.MarkDecorator:
    """Mark a test (or ``pytestmark`` a module) as needing ``tools``; the one rule that
    decides skip or fail is ``tools_check`` (run by tests/conftest.py before each test)."""
    return pytest.mark.needs_tools(*tools)


def tools_check(item: pytest.Item) -> None:
    """Skip, or under ``AURORA_REQUIRE_TOOLS=1`` fail, a test whose tools are missing."""
    tools = [t for mark in item.iter_markers("needs_tools") for t in mark.args]
    missing = missing_tools(*dict.fromkeys(tools))
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (make system-deps installs it)"
    if os.environ.get(REQUIRE_TOOLS_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_TOOLS_ENV}=1 makes a missing tool a failure",
                    pytrace=False)
    pytest.skip(reason)




# `AURORA_TEST_BACKEND=postgresql make test` runs the whole suite in PostgreSQL mode: every
# home gets a fresh database of one session cluster as its database_url (ledger and treaty
# state), unless the test names its own. The default, sqlite, is what CI runs.
TEST_BACKEND_ENV = "AURORA_TEST_BACKEND"
TEST_BACKENDS = ("sqlite", "postgresql")


def suite_backend() -> str:
    """The store a home gets when its test does not choose one."""
    value = os.environ.get(TEST_BACKEND_ENV) or "sqlite"
    if value not in TEST_BACKENDS:
        raise pytest.UsageError(f"{TEST_BACKEND_ENV}={value!r}: use one of {TEST_BACKENDS}")
    return value


_cluster: PgCluster | None = None


def session_cluster() -> PgCluster:
    """The session's throwaway PostgreSQL cluster, started at first use."""
    global _cluster
    if _cluster is None:
        _cluster = PgCluster()
    return _cluster


def stop_session_cluster() -> None:
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


def make_home(root: Path, **stack_overrides: object) -> Path:
    """A copy of the project's configuration in ``root`` with its own free ports and keys
    (and, in PostgreSQL test mode, its own database unless ``database_url`` is given)."""
    if "database_url" not in stack_overrides and suite_backend() == "postgresql":
        stack_overrides["database_url"] = session_cluster().database(initialised=True)
    # replicas 2..5; a canary's two groups of up to 4
    copy_home(REPO, root, replicas=4, split=12, **stack_overrides)
    from aurora.home import Home
    from aurora.provision import init_home

    init_home(Home(root))
    return root


def _database_name(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


class PgCluster:
    """A throwaway PostgreSQL cluster (initdb + postgres on a free port), stopped by PID.

    ``database()`` gives each test a fresh database: empty, or (``initialised=True``)
    holding every registered schema, copied from a template (CREATE DATABASE ...
    TEMPLATE is a file copy, far faster than running the DDL per test).
    """

    def __init__(self) -> None:
        import tempfile

        from aurora.db import cluster
        from aurora.home import Home

        # not under pytest's tmp_path: its parents are private to root, and the server
        # runs as the unprivileged postgres user when the tests run as root
        self.root = Path(tempfile.mkdtemp(prefix="aurora-pg-"))
        self.root.chmod(0o755)
        self.home = Home(self.root)
        self.cluster = cluster.start(self.home, self.root / "data", free_port(), fast=True)
        self._count = 0
        self._template = False

    @property
    def port(self) -> int:
        return self.cluster.port

    def url(self, database: str) -> str:
        return self.cluster.url(database)

    def _admin(self, sql: str) -> None:
        from aurora.db.postgres import connect

        with connect(self.url("postgres")) as conn:
            conn.execute(sql)

    def database(self, *, initialised: bool = False) -> str:
        """The URL of a new database of this cluster."""
        from aurora.db import schema

        if initialised and not self._template:
            self._admin("CREATE DATABASE aurora_template")
            schema.init(self.url("aurora_template"))
            self._template = True
        self._count += 1
        name = f"t{self._count}"
        template = "aurora_template" if initialised else "template0"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.url(name)

    def copy(self, url: str) -> str:
        """A new database of this cluster holding what ``url``'s holds (nobody connected)."""
        self._count += 1
        name = f"t{self._count}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {_database_name(url)}")
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop a database made by ``database()`` (its connections are closed first)."""
        self._admin(f"DROP DATABASE IF EXISTS {_database_name(url)} WITH (FORCE)")

    def stop_server(self) -> None:
        """Stop the server (fast shutdown, by PID), keeping its data: a PostgreSQL outage."""
        from aurora.db import cluster

        cluster.stop(self.home)

    def start_server(self) -> None:
        """Start the stopped server again on the same port and data."""
        from aurora.db import cluster

        self.cluster = cluster.start(self.home, self.root / "data", self.port, fast=True)

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.root, ignore_errors=True)


def raw_sql(path: Path | str, *statements: str, params: tuple[object, ...] = ()) -> None:
    """What an attacker with write access to the database can do: triggers are dropped
    first. Statements are SQLite's; for PostgreSQL, ``?`` and ``zeroblob(n)`` are
    translated and the triggers and CHECK constraints are removed."""
    if isinstance(path, str):
        _raw_pg(path, statements, params)
        return
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for table in ("audit_log", "merkle_hashes", "checkpoints"):
            for op in ("update", "delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
        for statement in statements:
            conn.execute(statement, params if "?" in statement else ())
    finally:
        conn.close()


def _raw_pg(url: str, statements: tuple[str, ...], params: tuple[object, ...]) -> None:
    from aurora.db.postgres import connect

    with connect(url) as conn:
        for table in ("audit_log", "merkle_hashes", "checkpoints"):
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        conn.execute("ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_seq_check")
        for statement in statements:
            sql = re.sub(r"zeroblob\((\d+)\)", r"decode(repeat('00', \1), 'hex')", statement)
            if "?" in sql:
                conn.execute(sql.replace("?", "%s"), params)
            else:
                conn.execute(sql)
