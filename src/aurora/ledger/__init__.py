"""The Remembrancer: an append-only, verifiable audit ledger (RFC 6962 Merkle log).

``Ledger.open(home)`` to append (needs ``secrets/ledger.key``),
``Ledger.open(home, readonly=True)`` to read and prove. See docs/LEDGER.md.
"""

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
    NoteError,
    ProofError,
    RangeError,
    ReadOnlyError,
    TamperedError,
)
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
    "NoteError",
    "ProofError",
    "RangeError",
    "ReadOnlyError",
    "Receipt",
    "StoredCheckpoint",
    "TamperedError",
    "TreeHead",
]
