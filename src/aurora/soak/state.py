"""A soak's state, folded from its ``soak_task`` ledger entries. Pure.

Entries (``data`` of ledger entries of kind ``soak_task``, subject ``<soak_id>:<key>``):

* ``begin`` — the plan, real and soak start times;
* ``resume`` — a restart picked the soak up again (and which tasks it found interrupted);
* ``started`` — a task began (key, attempt, real and soak times), appended *before* it runs;
* ``finished`` — its outcome: pass/fail, real start/end, duration, output digest, files with
  their sha256, a summary and task-specific detail;
* ``end`` — every slot has an outcome.

A restart never reruns a finished task (its key has a ``finished`` entry) and never loses
one (every slot without one is still to do). A ``started`` entry without a ``finished`` one
is an interrupted task: reported, then rerun explicitly as the next attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aurora.errors import AuroraError
from aurora.soak.schedule import Slot, SoakPlan, build_schedule
from aurora.wire import parse_rfc3339

KIND = "soak_task"
PASS, FAIL = "pass", "fail"


@dataclass(frozen=True)
class FileDigest:
    path: str  # relative to the home
    sha256: str
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes}


@dataclass(frozen=True)
class TaskRecord:
    """A ``finished`` entry."""

    seq: int
    key: str
    day: int
    task: str
    scheduled: datetime
    attempt: int
    status: str
    real_start: datetime
    real_end: datetime
    sim_start: datetime
    sim_end: datetime
    output_sha256: str | None
    log: str | None
    files: tuple[FileDigest, ...]
    summary: str
    detail: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @classmethod
    def from_data(cls, seq: int, data: dict[str, Any]) -> TaskRecord:
        return cls(
            seq=seq, key=str(data["key"]), day=int(data["day"]), task=str(data["task"]),
            scheduled=parse_rfc3339(data["scheduled"]), attempt=int(data.get("attempt", 1)),
            status=str(data["status"]), real_start=parse_rfc3339(data["real_start"]),
            real_end=parse_rfc3339(data["real_end"]), sim_start=parse_rfc3339(data["sim_start"]),
            sim_end=parse_rfc3339(data["sim_end"]), output_sha256=data.get("output_sha256"),
            log=data.get("log"),
            files=tuple(FileDigest(str(f["path"]), str(f["sha256"]), int(f["bytes"]))
                        for f in data.get("files") or ()),
            summary=str(data.get("summary", "")), detail=dict(data.get("detail") or {}))


@dataclass(frozen=True)
class Started:
    seq: int
    key: str
    attempt: int
    real_start: datetime
    sim_start: datetime


@dataclass
class SoakState:
    soak_id: str
    plan: SoakPlan
    real_start: datetime
    sim_start: datetime
    finished: dict[str, TaskRecord] = field(default_factory=dict)
    started: dict[str, list[Started]] = field(default_factory=dict)
    duplicates: list[TaskRecord] = field(default_factory=list)  # a second outcome for a key
    resumes: int = 0
    ended: datetime | None = None
    end_detail: dict[str, Any] = field(default_factory=dict)

    @property
    def interrupted(self) -> list[Started]:
        """Tasks started (last attempt) without an outcome."""
        return [attempts[-1] for key, attempts in self.started.items()
                if key not in self.finished]

    def attempts(self, key: str) -> int:
        return len(self.started.get(key, ()))

    def schedule(self) -> list[Slot]:
        return build_schedule(self.plan)

    def pending(self) -> list[Slot]:
        return [slot for slot in self.schedule() if slot.key not in self.finished]

    def records(self, task: str | None = None) -> list[TaskRecord]:
        found = sorted(self.finished.values(), key=lambda r: (r.scheduled, r.seq))
        return [r for r in found if task is None or r.task == task]

    def last_sim_time(self) -> datetime:
        """The latest soak-clock reading recorded: where a resumed clock carries on."""
        times = [self.sim_start] + [r.sim_end for r in self.finished.values()] + \
            [s.sim_start for runs in self.started.values() for s in runs]
        return max(times)

    def real_span(self) -> tuple[datetime, datetime | None]:
        """Real time from the soak's begin to its end (None while it runs)."""
        return self.real_start, self.ended

    def anchors(self) -> list[tuple[datetime, datetime]]:
        """(real, soak) time pairs recorded by tasks, in real-time order."""
        pairs = [(self.real_start, self.sim_start)]
        for record in self.finished.values():
            pairs += [(record.real_start, record.sim_start), (record.real_end, record.sim_end)]
        return sorted(set(pairs))


class StateError(AuroraError, ValueError):
    """The ledger's soak entries do not form a soak (no begin entry, bad fields)."""


def soak_ids(rows: Iterable[tuple[int, dict[str, Any]]]) -> list[str]:
    """Soak ids with a ``begin`` entry, oldest first."""
    return [str(d["soak_id"]) for _, d in rows if d.get("event") == "begin" and "soak_id" in d]


def fold(soak_id: str, rows: Sequence[tuple[int, dict[str, Any]]]) -> SoakState:
    """The state of ``soak_id`` from (seq, data) of its ledger entries, in seq order."""
    state: SoakState | None = None
    for seq, data in rows:
        if data.get("soak_id") != soak_id:
            continue
        event = data.get("event")
        try:
            if event == "begin":
                if state is None:
                    state = SoakState(soak_id, SoakPlan.from_json(data["plan"]),
                                      parse_rfc3339(data["real_start"]),
                                      parse_rfc3339(data["sim_start"]))
                continue
            if state is None:
                raise StateError(f"soak {soak_id}: entry {seq} comes before its begin entry")
            if event == "resume":
                state.resumes += 1
            elif event == "started":
                state.started.setdefault(str(data["key"]), []).append(Started(
                    seq, str(data["key"]), int(data.get("attempt", 1)),
                    parse_rfc3339(data["real_start"]), parse_rfc3339(data["sim_start"])))
            elif event == "finished":
                record = TaskRecord.from_data(seq, data)
                if record.key in state.finished:
                    state.duplicates.append(record)  # the first outcome stands
                else:
                    state.finished[record.key] = record
            elif event == "end":
                state.ended = parse_rfc3339(data["real_end"])
                state.end_detail = dict(data.get("detail") or {})
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, StateError):
                raise
            raise StateError(f"soak {soak_id}: ledger entry {seq} is malformed: {exc}") from None
    if state is None:
        raise StateError(f"no soak {soak_id!r} in the ledger")
    return state


def to_soak_time(real: datetime, anchors: Sequence[tuple[datetime, datetime]],
                 speed: float) -> datetime:
    """Map a real time onto the soak clock by the recorded anchors (piecewise linear).

    Between two anchors the clock ran at most at ``speed`` (it may have stood still):
    the interpolation between them is exact when it did not, and within the pair's soak
    interval when it did. Outside the anchors the clock is extrapolated at ``speed``.
    """
    if not anchors:
        raise ValueError("no anchors")
    before = [a for a in anchors if a[0] <= real]
    after = [a for a in anchors if a[0] > real]
    if not before:
        real0, sim0 = after[0]
        return sim0 - (real0 - real) * speed
    real0, sim0 = before[-1]
    if not after:
        return sim0 + (real - real0) * speed
    real1, sim1 = after[0]
    share = (real - real0) / (real1 - real0)
    return sim0 + (sim1 - sim0) * share
