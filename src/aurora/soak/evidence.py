"""Soak evidence in the Remembrancer: appending ``soak_task`` entries and reading them back.

Every entry's subject is ``<soak_id>:<slot key>`` (or ``<soak_id>`` for begin/resume/end);
``aurora.soak.state`` folds them into a soak's state. Files a task produced are recorded
with their sha256, relative to the home, so the gate can re-hash them later.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from aurora.digests import sha256_file
from aurora.home import Home
from aurora.ledger import Entry, Ledger, LedgerError, Receipt
from aurora.soak.schedule import Slot, SoakPlan
from aurora.soak.state import KIND, FileDigest, SoakState, StateError, fold, soak_ids
from aurora.wire import format_rfc3339


class SoakNotFound(LedgerError):
    exit_code = 2


def digest(home: Home, path: Path) -> FileDigest:
    """A produced file as evidence: its path relative to the home, sha256 and size."""
    try:
        relative = str(path.resolve().relative_to(home.root.resolve()))
    except ValueError:
        relative = str(path)
    return FileDigest(relative, sha256_file(path), path.stat().st_size)


def resolve(home: Home, relative: str) -> Path:
    path = Path(relative)
    return path if path.is_absolute() else home.root / path


def t(moment: datetime) -> str:
    return format_rfc3339(moment)


class EvidenceLog:
    """Appends a soak's entries to the home's ledger (a writer; needs the ledger key)."""

    def __init__(self, home: Home, soak_id: str) -> None:
        self.home = home
        self.soak_id = soak_id
        self._ledger = Ledger.open(home)

    def close(self) -> None:
        self._ledger.close()

    def __enter__(self) -> EvidenceLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def _append(self, subject: str, data: dict[str, Any], kind: str = KIND) -> Receipt:
        return self._ledger.append(Entry(kind=kind, subject=subject,
                                         data={"soak_id": self.soak_id, **data}))

    def begin(self, plan: SoakPlan, real_start: datetime, sim_start: datetime) -> Receipt:
        return self._append(self.soak_id, {"event": "begin", "plan": plan.to_json(),
                                           "real_start": t(real_start),
                                           "sim_start": t(sim_start)})

    def resume(self, real_start: datetime, sim_start: datetime,
               interrupted: list[str]) -> Receipt:
        return self._append(self.soak_id, {"event": "resume", "real_start": t(real_start),
                                           "sim_start": t(sim_start),
                                           "interrupted": interrupted})

    def started(self, slot: Slot, attempt: int, real_start: datetime, sim_start: datetime,
                rerun_of: int | None) -> Receipt:
        return self._append(f"{self.soak_id}:{slot.key}", {
            "event": "started", "key": slot.key, "day": slot.day, "task": slot.task,
            "scheduled": t(slot.at), "attempt": attempt, "real_start": t(real_start),
            "sim_start": t(sim_start), "rerun_of": rerun_of})

    def finished(self, slot: Slot, data: dict[str, Any]) -> Receipt:
        return self._append(f"{self.soak_id}:{slot.key}", {
            "event": "finished", "key": slot.key, "day": slot.day, "task": slot.task,
            "scheduled": t(slot.at), **data})

    def end(self, real_end: datetime, sim_end: datetime, detail: dict[str, Any]) -> Receipt:
        return self._append(self.soak_id, {"event": "end", "real_end": t(real_end),
                                           "sim_end": t(sim_end), "detail": detail})

    def record(self, kind: str, subject: str, data: dict[str, Any]) -> Receipt:
        """Another kind of evidence (a drill) in the same ledger."""
        return self._ledger.append(Entry(kind=kind, subject=subject, data=data))


def read_rows(ledger: Ledger, kinds: Iterable[str] = (KIND,)) -> list[tuple[int, dict[str, Any]]]:
    """(seq, data) of the ledger's entries of ``kinds``, in order."""
    out = []
    for row in ledger.scan(kinds=tuple(kinds)):
        data = row.data
        if isinstance(data, dict):
            out.append((row.seq, data))
    return out


def load_state(ledger: Ledger, soak_id: str | None = None) -> SoakState:
    """The state of ``soak_id`` (default: the most recently begun soak)."""
    rows = read_rows(ledger)
    ids = soak_ids(rows)
    if soak_id is None:
        if not ids:
            raise SoakNotFound("no soak in the ledger yet (start one: aurora soak start, or "
                               "aurora soak rehearse)")
        soak_id = ids[-1]
    try:
        return fold(soak_id, rows)
    except StateError as exc:
        raise SoakNotFound(str(exc)) from None


def open_readonly(home: Home) -> Ledger:
    from aurora.ledger.storage import describe, home_ledger_exists, ledger_location

    if not home_ledger_exists(home):
        raise SoakNotFound(f"no ledger at {describe(ledger_location(home))}: nothing has run "
                           "in this home yet")
    return Ledger.open(home, readonly=True)
