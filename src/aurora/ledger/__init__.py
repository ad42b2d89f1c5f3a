"""The Remembrancer: an append-only, verifiable audit ledger (RFC 6962 Merkle log).

``Ledger.open(home)`` to append (needs ``secrets/ledger.key``),
``Ledger.open(home, readonly=True)`` to read and prove. See docs/LEDGER.md.

The verification side (``merkle``, ``note``, ``entry``, ``offline``, ``errors``) needs
nothing but hashing and signatures: importing it (or this package) loads no
database driver, thread or configuration. ``Ledger`` and ``StoredCheckpoint``
(the writer, over ``storage``) are loaded on first use.
"""

from typing import TYPE_CHECKING, Any

from aurora.ledger.entry import (
    ConsistencyProof,
    Entry,
    InclusionProof,
    LedgerRow,
    Receipt,
    TreeHead,
)
from aurora.ledger.errors import (
    BackupError,
    EntryError,
    KeyMismatchError,
    LedgerBusyError,
    LedgerClosedError,
    LedgerDatabaseError,
    LedgerError,
    LedgerUnavailableError,
    NoteError,
    ProofError,
    RangeError,
    ReadOnlyError,
    TamperedError,
)

if TYPE_CHECKING:
    from aurora.ledger.ledger import Ledger, StoredCheckpoint

__all__ = [
    "BackupError",
    "ConsistencyProof",
    "Entry",
    "EntryError",
    "InclusionProof",
    "KeyMismatchError",
    "Ledger",
    "LedgerBusyError",
    "LedgerClosedError",
    "LedgerDatabaseError",
    "LedgerError",
    "LedgerRow",
    "LedgerUnavailableError",
    "NoteError",
    "ProofError",
    "RangeError",
    "ReadOnlyError",
    "Receipt",
    "StoredCheckpoint",
    "TamperedError",
    "TreeHead",
]


def __getattr__(name: str) -> Any:
    if name in ("Ledger", "StoredCheckpoint"):
        from aurora.ledger import ledger

        return getattr(ledger, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
