"""The ledger's boundaries: the verification side imports alone; SQL lives in the stores."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "aurora"


def test_the_verification_side_needs_nothing_but_hashing_and_signatures() -> None:
    probe = ("import sys\n"
             "import aurora.ledger, aurora.ledger.merkle, aurora.ledger.note, "
             "aurora.ledger.entry, aurora.ledger.offline, aurora.ledger.errors\n"
             "heavy = ['sqlite3', 'threading', 'psycopg', 'aurora.config', 'pydantic', "
             "'aurora.ledger.ledger', 'aurora.ledger.storage', 'aurora.db']\n"
             "print(' '.join(m for m in heavy if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "", f"loaded by the verification side: {out.stdout}"
    from aurora.ledger import Ledger  # the writer is still one import away

    assert Ledger.__module__ == "aurora.ledger.ledger"


LEDGER_SQL = re.compile(r"(FROM|INTO|UPDATE|TABLE)\s+(audit_log|merkle_hashes|checkpoints|"
                        r"ledger_tree)\b|PRAGMA integrity_check\"\)|sqlite3\.connect\(")
STORES = {"ledger/sqlitestore.py", "ledger/pgstore.py"}
# own databases, not the ledger: the incident index, the seed's raw commands in the drills;
# and the treaty state's lease resolution, which reads a claim's verdict from audit_log in
# the same PostgreSQL transaction that undoes or keeps the claim (treaty_resolve)
OTHERS = {"incidents/index.py", "policy/pgstate.py"}


def test_every_sql_statement_on_the_ledger_is_in_a_store() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        name = path.relative_to(SRC).as_posix()
        if name in STORES or name in OTHERS:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if LEDGER_SQL.search(line) and "_run([\"sqlite3\"" not in line:
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []
