"""Backups and restore of a ledger in PostgreSQL (pg_dump snapshots)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from aurora.home import Home
from aurora.ledger.errors import BackupError

if TYPE_CHECKING:
    from aurora.ledger.backup import BackupInfo, RestoreInfo


def backup(home: Home, url: str, *, db: str | os.PathLike[str] | None,
           out_dir: Path | None, name: str | None) -> BackupInfo:
    raise BackupError("backups of a PostgreSQL ledger are not implemented yet")


def restore(home: Home, file: Path, url: str, sha: str, *,
            db: str | os.PathLike[str] | None) -> RestoreInfo:
    raise BackupError("restore into a PostgreSQL ledger is not implemented yet")
