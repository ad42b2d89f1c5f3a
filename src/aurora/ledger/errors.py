"""Error types of the Remembrancer ledger (pure; no I/O).

Every failure an operator can cause or meet (bad input, a bad file, a key that
does not match, a tampered log) is one of these, with a message fit to print
as one line. ``aurora.command.run_app`` prints ``error: <message>`` and exits with
``exit_code``; ``verify-audit`` reports ``TamperedError`` itself.
"""

from __future__ import annotations

from aurora.errors import AuroraError


class LedgerError(AuroraError):
    """Base class of every ledger error."""


class EntryError(LedgerError):
    """An entry cannot be appended: bad kind, data that is not JSON, ..."""

    exit_code = 2


class LedgerDatabaseError(LedgerError):
    """The database file is missing, corrupt, not a ledger, or the disk refused a write."""

    exit_code = 2


class LedgerBusyError(LedgerDatabaseError):
    """Another process held the write lock for longer than the busy timeout."""


class LedgerUnavailableError(LedgerDatabaseError):
    """The ledger's database server cannot be reached (PostgreSQL down or failing over)."""


class LedgerClosedError(LedgerError):
    """The ledger was closed; no more appends are accepted."""


class ReadOnlyError(LedgerError):
    """A write (append, checkpoint) was asked of a ledger opened read-only."""

    exit_code = 2


class RangeError(LedgerError):
    """A leaf index or tree size outside the tree, e.g. a proof for an index beyond it."""

    exit_code = 2


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof does not verify."""


class NoteError(LedgerError):
    """A signed note or checkpoint is malformed or does not verify."""


class KeyMismatchError(NoteError):
    """A signing or verifier key does not belong to this ledger."""

    exit_code = 2


class TamperedError(LedgerError):
    """``verify-audit`` found the log altered: the first bad leaf index and what was wrong."""

    def __init__(self, index: int | None, what: str) -> None:
        where = f"leaf {index}: " if index is not None else ""
        super().__init__(f"AUDIT LOG TAMPERED: {where}{what}")
        self.index = index
        self.what = what


class BackupError(LedgerError):
    """A backup could not be taken, or a backup file fails verification."""

    exit_code = 2
