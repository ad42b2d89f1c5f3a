"""Incidents as a state machine over events. Pure: no I/O, times are passed in.

An incident goes ``opened → acknowledged → resolved``; an incident nobody acknowledged
by its SLA deadline is ``escalated`` once (the breach), and may still be acknowledged
and resolved afterwards. Every change is an ``Event``; the incident is the fold of its
events (``apply``), which is how the store rebuilds state from the ledger.

Timing rules (documented in docs/RUNBOOK-incidents.md):
- ``opened_at`` is when Aurora received the firing alert, not the alert's ``startsAt``
  (Prometheus sets that to when the rule became *pending*, up to its ``for:`` earlier —
  it would eat a SEV1's 15 minutes before anyone was told).
- response time = first acknowledgement − ``opened_at``. An operator resolving an
  unacknowledged incident acknowledges it in the same step.
- breached = not acknowledged by the deadline while open (the deadline is fixed at
  opening, so a later config change does not rewrite history).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal

from aurora.errors import AuroraError
from aurora.incidents.config import Sev
from aurora.wire import format_rfc3339, parse_rfc3339

Status = Literal["opened", "acknowledged", "escalated", "resolved"]
EventKind = Status  # each event moves the incident into the state of the same name
Outcome = Literal["met", "breached", "pending", "auto_resolved"]
Route = Literal["open", "duplicate", "resolve", "stale"]

INCIDENT_ID_RE = re.compile(r"^INC-([0-9]{8})-([0-9]{4,})$")
ALERTMANAGER = "alertmanager"  # the ``by`` of resolutions that came from Alertmanager


class IncidentError(AuroraError):
    """An incident command that cannot apply (unknown id, wrong state)."""


class IncidentNotFound(IncidentError):
    pass


class TransitionError(IncidentError):
    pass


def alert_key(group_key: str, fingerprint: str) -> str:
    """The idempotency key: one incident per (Alertmanager group, alert) while it fires."""
    return hashlib.sha256(f"{group_key}\n{fingerprint}".encode()).hexdigest()[:32]


def format_incident_id(day: date, number: int) -> str:
    return f"INC-{day:%Y%m%d}-{number:04d}"


def check_incident_id(text: str) -> str:
    if not INCIDENT_ID_RE.match(text):
        raise IncidentNotFound(f"{text!r} is not an incident id (like INC-20261127-0001)")
    return text


@dataclass(frozen=True)
class AlertFacts:
    """What the receiver knows about one alert of a webhook notification."""

    group_key: str
    fingerprint: str
    status: Literal["firing", "resolved"]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None

    @property
    def key(self) -> str:
        return alert_key(self.group_key, self.fingerprint)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True)
class Event:
    kind: EventKind
    incident_id: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        """The ledger entry's ``data`` (its ``subject`` is the incident id)."""
        return {"event": self.kind, "at": format_rfc3339(self.at), **self.data}

    @classmethod
    def from_data(cls, incident_id: str, data: Mapping[str, Any]) -> Event:
        rest = {k: v for k, v in data.items() if k not in ("event", "at")}
        kind = data["event"]
        if kind not in ("opened", "acknowledged", "escalated", "resolved"):
            raise ValueError(f"unknown incident event {kind!r}")
        return cls(kind, incident_id, parse_rfc3339(data["at"]), rest)


@dataclass(frozen=True)
class Incident:
    id: str
    key: str
    group_key: str
    fingerprint: str
    alertname: str
    sev: Sev
    rule: str
    treaty_id: str | None
    labels: Mapping[str, str]
    summary: str
    starts_at: datetime
    opened_at: datetime
    deadline: datetime
    runbook_url: str | None = None
    status: Status = "opened"
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    escalated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    drill: str | None = None
    notes: tuple[tuple[str, str, str], ...] = ()  # (at, by, text)

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    @property
    def response_seconds(self) -> float | None:
        if self.acknowledged_at is None:
            return None
        return (self.acknowledged_at - self.opened_at).total_seconds()

    def outcome(self, now: datetime) -> Outcome:
        """Whether the first response met the SLA (as far as is known at ``now``)."""
        if self.escalated_at is not None:
            return "breached"
        if self.acknowledged_at is not None:
            return "met" if self.acknowledged_at <= self.deadline else "breached"
        if self.resolved_at is not None:
            return "auto_resolved" if self.resolved_at <= self.deadline else "breached"
        return "breached" if now > self.deadline else "pending"

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        def t(value: datetime | None) -> str | None:
            return format_rfc3339(value) if value is not None else None

        out: dict[str, Any] = {
            "id": self.id, "status": self.status, "sev": self.sev, "rule": self.rule,
            "alertname": self.alertname, "treaty_id": self.treaty_id, "summary": self.summary,
            "runbook_url": self.runbook_url,
            "labels": dict(self.labels), "group_key": self.group_key,
            "fingerprint": self.fingerprint, "key": self.key,
            "starts_at": t(self.starts_at), "opened_at": t(self.opened_at),
            "deadline": t(self.deadline), "acknowledged_at": t(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by, "escalated_at": t(self.escalated_at),
            "resolved_at": t(self.resolved_at), "resolved_by": self.resolved_by,
            "resolution": self.resolution, "drill": self.drill,
            "response_seconds": self.response_seconds,
            "notes": [{"at": a, "by": b, "text": n} for a, b, n in self.notes],
        }
        if now is not None:
            out["sla"] = self.outcome(now)
        return out


# --- the fold -------------------------------------------------------------------------------

def apply(incident: Incident | None, event: Event) -> Incident:
    """The incident after ``event``. Raises ValueError for an event that cannot follow."""
    d = event.data
    if event.kind == "opened":
        if incident is not None:
            raise ValueError(f"{event.incident_id} opened twice")
        return Incident(
            id=event.incident_id, key=d["key"], group_key=d["group_key"],
            fingerprint=d["fingerprint"], alertname=d["alertname"], sev=d["sev"],
            rule=d["rule"], treaty_id=d.get("treaty_id"), labels=dict(d.get("labels", {})),
            summary=d.get("summary", ""), starts_at=parse_rfc3339(d["starts_at"]),
            opened_at=event.at, deadline=parse_rfc3339(d["deadline"]),
            runbook_url=d.get("runbook_url"),
        )
    if incident is None:
        raise ValueError(f"{event.kind} event for unknown incident {event.incident_id}")
    if incident.status == "resolved":
        raise ValueError(f"{event.kind} event after {incident.id} was resolved")
    notes = incident.notes
    if d.get("note"):
        notes = (*notes, (format_rfc3339(event.at), str(d.get("by", "")), str(d["note"])))
    if event.kind == "acknowledged":
        first = incident.acknowledged_at is None
        return replace(
            incident, status="acknowledged", notes=notes,
            acknowledged_at=event.at if first else incident.acknowledged_at,
            acknowledged_by=d.get("by") if first else incident.acknowledged_by,
            drill=d.get("drill") or incident.drill,
        )
    if event.kind == "escalated":
        return replace(incident, status="escalated", escalated_at=event.at, notes=notes)
    return replace(incident, status="resolved", resolved_at=event.at, resolved_by=d.get("by"),
                   resolution=d.get("note"), notes=notes)


def fold(events: Sequence[Event]) -> Incident:
    incident: Incident | None = None
    for event in events:
        incident = apply(incident, event)
    if incident is None:
        raise ValueError("no events")
    return incident


# --- decisions ------------------------------------------------------------------------------

def open_event(incident_id: str, alert: AlertFacts, *, sev: Sev, rule: str,
               deadline: datetime, treaty_id: str | None, now: datetime) -> Event:
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    return Event("opened", incident_id, now, {
        "key": alert.key, "group_key": alert.group_key, "fingerprint": alert.fingerprint,
        "alertname": alert.alertname, "sev": sev, "rule": rule, "treaty_id": treaty_id,
        "labels": dict(alert.labels), "summary": summary[:500],
        "runbook_url": alert.annotations.get("runbook_url"),
        "starts_at": format_rfc3339(alert.starts_at), "deadline": format_rfc3339(deadline),
    })


def breach_events(incident: Incident, now: datetime) -> list[Event]:
    """The ``escalated`` event if ``incident`` is unacknowledged past its deadline at ``now``."""
    if (incident.status == "opened" and incident.acknowledged_at is None
            and now > incident.deadline):
        late = (now - incident.deadline).total_seconds()
        return [Event("escalated", incident.id, now, {
            "reason": "sla_breach", "deadline": format_rfc3339(incident.deadline),
            "late_seconds": round(late, 3)})]
    return []


def acknowledge_events(incident: Incident, *, by: str, note: str | None, now: datetime,
                       drill: str | None = None) -> list[Event]:
    """Events for an acknowledgement (a breach first, if the SLA already passed).

    A drill may acknowledge an incident an operator already acknowledged: that marks it as
    a drill incident without changing its response time.
    """
    if incident.status == "resolved":
        raise TransitionError(f"{incident.id} is already resolved")
    if incident.acknowledged_at is not None and drill is None:
        raise TransitionError(f"{incident.id} was already acknowledged by "
                              f"{incident.acknowledged_by} at "
                              f"{format_rfc3339(incident.acknowledged_at)}")
    data: dict[str, Any] = {"by": by}
    if note:
        data["note"] = note
    if drill:
        data["drill"] = drill
    return [*breach_events(incident, now), Event("acknowledged", incident.id, now, data)]


def resolve_events(incident: Incident, *, by: str, note: str | None, now: datetime,
                   alert_ends_at: datetime | None = None) -> list[Event]:
    """Events for a resolution by an operator or by Alertmanager (``by == ALERTMANAGER``)."""
    if incident.status == "resolved":
        raise TransitionError(f"{incident.id} is already resolved (by {incident.resolved_by} "
                              f"at {format_rfc3339(incident.resolved_at or now)})")
    events = breach_events(incident, now)
    if by != ALERTMANAGER and incident.acknowledged_at is None:
        # an operator who resolves has responded: that is the first acknowledgement
        events.append(Event("acknowledged", incident.id, now,
                            {"by": by, "implicit": True}))
    data: dict[str, Any] = {"by": by, "source": "alertmanager" if by == ALERTMANAGER
                            else "operator"}
    if note:
        data["note"] = note
    if alert_ends_at is not None:
        data["alert_ends_at"] = format_rfc3339(alert_ends_at)
    events.append(Event("resolved", incident.id, now, data))
    return events


def route_alert(alert: AlertFacts, known: Sequence[Incident]) -> tuple[Route, Incident | None]:
    """What one webhook alert means, given the incidents already opened with its key.

    - firing, an open incident has the key → duplicate (Alertmanager resends groups every
      group_interval/repeat_interval; a receiver restart makes it retry);
    - firing, the key's incident for this very firing (same ``startsAt``) was resolved by
      an operator while the alert still fires → stale (do not reopen on every resend);
    - firing otherwise → open a new incident (a new firing episode);
    - resolved, an open incident has the key → resolve it; otherwise stale.
    """
    current = next((i for i in known if i.is_open), None)
    if alert.status == "firing":
        if current is not None:
            return "duplicate", current
        same = next((i for i in known if i.starts_at == alert.starts_at), None)
        return ("stale", same) if same is not None else ("open", None)
    if current is not None:
        return "resolve", current
    return "stale", known[0] if known else None
