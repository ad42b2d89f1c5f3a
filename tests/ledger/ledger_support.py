"""Helpers shared by the ledger tests (a uniquely named module: other test folders
have their own conftest.py, so tests import helpers from here, not from conftest)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from aurora.ledger import Entry, Ledger

ORIGIN = "aurora.local/remembrancer"


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


def raw_sql(path: Path, *statements: str, params: tuple[object, ...] = ()) -> None:
    """What an attacker with write access to the file can do: triggers are dropped first."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for table in ("audit_log", "merkle_hashes", "checkpoints"):
            for op in ("update", "delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
        for statement in statements:
            conn.execute(statement, params if "?" in statement else ())
    finally:
        conn.close()
