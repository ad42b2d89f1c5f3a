"""Helpers shared by the ledger tests (a uniquely named module: other test folders
have their own conftest.py, so tests import helpers from here, not from conftest)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from aurora.ledger import Entry, Ledger
from support import raw_sql  # noqa: F401  (re-exported for the ledger tests)

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


