"""Which running alert drill, if any, owns an incident that opens now. Pure.

An alert drill (``aurora.drills.alert``) appends a ``drill`` ledger entry before it injects
its fault and another when it is done, both with ``subject`` = the drill id:

- ``{"drill": "alert", "event": "started", "drill_id", "alert", "alerts": [...],
  "started_at", "expires_at"}``
- ``{"drill": "alert", "event": "finished", "drill_id", ...the drill's result...}``

A drill is *active* from its ``started`` entry until its ``finished`` entry or its
``expires_at``, whichever comes first (``expires_at`` bounds a drill whose process died).
The receiver tags an incident as a drill incident when it opens while a drill is active and
its alert is one the drill's fault drives (``alerts``: the drilled alert and the alerts the
same fault necessarily trips, e.g. the burn-rate alert of the same SLO). Tagging at opening
means the incident is a drill incident from its first ledger entry, before the drill gets to
acknowledge it; reports and the Day-7 gate count it apart. Incidents of other alerts opened
during a drill stay real incidents.

A soak's alert drill also records its :class:`DrillWindow` — from the fault's injection to
its resolution — in its task record: the SLO judgement leaves it out, and incidents of the
drill's alerts opened inside it are the drill's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aurora.wire import format_rfc3339, parse_rfc3339

KIND = "drill"
ALERT_DRILL = "alert"
# The longest an alert drill may stay active; the receiver looks back this far for drills.
MAX_DRILL = timedelta(hours=12)


@dataclass(frozen=True)
class ActiveDrill:
    drill_id: str
    alert: str
    alerts: frozenset[str]
    started_at: datetime
    expires_at: datetime


def started_data(drill_id: str, alert: str, alerts: Sequence[str], *, started_at: datetime,
                 expires_at: datetime) -> dict[str, Any]:
    """The ``started`` entry's data; ValueError for a window longer than ``MAX_DRILL``."""
    if not started_at < expires_at <= started_at + MAX_DRILL:
        raise ValueError(f"a drill lasts between 0 and {MAX_DRILL}, not until "
                         f"{format_rfc3339(expires_at)}")
    covered = [alert, *(a for a in alerts if a != alert)]
    return {"drill": ALERT_DRILL, "event": "started", "drill_id": drill_id, "alert": alert,
            "alerts": covered, "started_at": format_rfc3339(started_at),
            "expires_at": format_rfc3339(expires_at)}


def finished_data(drill_id: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """The ``finished`` entry's data: the drill's result with the event and id."""
    return {**result, "drill": ALERT_DRILL, "event": "finished", "drill_id": drill_id}


def active_drills(entries: Iterable[tuple[str, Mapping[str, Any]]], now: datetime
                  ) -> list[ActiveDrill]:
    """The alert drills active at ``now``, from ``(subject, data)`` of ``drill`` entries in
    ledger order. Entries of other drills (restore, rollback) or of another shape are
    ignored: a malformed entry must not stop incidents from opening."""
    started: dict[str, ActiveDrill] = {}
    finished: set[str] = set()
    for subject, data in entries:
        if data.get("drill") != ALERT_DRILL:
            continue
        if data.get("event") == "finished":
            finished.add(subject)
            continue
        if data.get("event") != "started":
            continue
        try:
            drill = ActiveDrill(
                drill_id=subject, alert=str(data["alert"]),
                alerts=frozenset(str(a) for a in data.get("alerts") or [data["alert"]]),
                started_at=parse_rfc3339(str(data["started_at"])),
                expires_at=parse_rfc3339(str(data["expires_at"])))
        except (KeyError, TypeError, ValueError):
            continue
        started[subject] = drill
    return [d for d in started.values()
            if d.drill_id not in finished and d.started_at <= now <= d.expires_at]


def owning_drill(alertname: str, drills: Sequence[ActiveDrill]) -> str | None:
    """The id of the active drill whose fault drives ``alertname`` (the latest started)."""
    mine = [d for d in drills if alertname in d.alerts]
    return max(mine, key=lambda d: d.started_at).drill_id if mine else None


@dataclass(frozen=True)
class DrillWindow:
    """A soak alert drill's span, as its task record keeps it (``to_json``).

    ``settle_s`` extends the span for the SLO judgement (the SLIs' windows still hold the
    fault), ``incident_settle_s`` for incidents (a companion alert with a long window can
    open after the drill finished).
    """

    drill_id: str
    alert: str
    alerts: tuple[str, ...]  # the drilled alert and the companions the same fault trips
    start: datetime
    end: datetime
    settle_s: float = 0.0
    incident_settle_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"drill_id": self.drill_id, "alert": self.alert, "alerts": list(self.alerts),
                "start": format_rfc3339(self.start), "end": format_rfc3339(self.end),
                "settle_s": self.settle_s, "incident_settle_s": self.incident_settle_s}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DrillWindow:
        """A recorded window; records from before ``alerts``/``incident_settle_s`` read as
        the drilled alert alone and the SLO settle time."""
        settle = float(data.get("settle_s", 0))
        return cls(drill_id=str(data["drill_id"]), alert=str(data["alert"]),
                   alerts=tuple(str(a) for a in data.get("alerts") or [data["alert"]]),
                   start=parse_rfc3339(str(data["start"])), end=parse_rfc3339(str(data["end"])),
                   settle_s=settle,
                   incident_settle_s=float(data.get("incident_settle_s", settle)))

    def slo_hole(self) -> tuple[datetime, datetime]:
        """The span the SLO judgement leaves out."""
        return self.start, self.end + timedelta(seconds=self.settle_s)

    def owns(self, alertname: str, opened: datetime) -> bool:
        """Whether an incident of ``alertname`` opened at ``opened`` is this drill's."""
        return (alertname in self.alerts and
                self.start <= opened <= self.end + timedelta(seconds=self.incident_settle_s))
