"""Helpers shared by the ledger tests (a uniquely named module: other test folders
have their own conftest.py, so tests import helpers from here, not from conftest)."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

import pytest

from aurora.ledger import Entry, Ledger
from aurora.ledger.storage import Location

ORIGIN = "aurora.local/remembrancer"
BACKENDS = ("sqlite", "postgresql")
# run a test on both ledger backends (overrides the `backend` fixture of conftest.py)
both = pytest.mark.parametrize("backend", BACKENDS)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def fill(ledger: Ledger, n: int, kind: str = "note", **fields: object) -> None:
    """Append ``n`` entries (concurrently, through the group-commit queue)."""
    futures = [ledger.submit(Entry(kind=kind, data={"i": i, **fields}, subject=f"s-{i}"))
               for i in range(n)]
    for future in futures:
        future.result()


def raw_sql(path: Location, *statements: str, params: tuple[object, ...] = ()) -> None:
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
