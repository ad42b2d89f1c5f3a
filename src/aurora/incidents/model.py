"""Incidents as a state machine over events. Pure: no I/O, times are passed in.

An incident goes ``opened → acknowledged → resolved``; an incident nobody acknowledged
by its SLA deadline is ``escalated`` once (the breach), and may still be acknowledged
and resolved afterwards. Every change is an ``Event``; the incident is the fold of its
events (``apply``), which is how the store rebuilds state from the ledger.

One incident per Alertmanager alert group (its ``groupKey``): the first firing alert of a
group opens it, further alerts of the group join it (``alert_joined``; a more severe one
raises the SEV), an alert of the group that clears while others still fire is
``alert_resolved``, and the incident resolves when the last of its alerts has.

Timing rules (documented in docs/RUNBOOK.md, "Incidents"):
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
from aurora.incidents.config import SEVS, Sev
from aurora.wire import format_rfc3339, parse_rfc3339

Status = Literal["opened", "acknowledged", "escalated", "resolved"]
# the status events move the incident into the state of the same name; the alert events
# change which alerts of the group it holds, not its state
EventKind = Literal["opened", "alert_joined", "alert_resolved", "acknowledged", "escalated",
                    "resolved"]
EVENT_KINDS: tuple[EventKind, ...] = ("opened", "alert_joined", "alert_resolved",
                                      "acknowledged", "escalated", "resolved")
Outcome = Literal["met", "breached", "pending", "auto_resolved"]
Route = Literal["open", "join", "duplicate", "resolve_alert", "resolve", "stale"]

INCIDENT_ID_RE = re.compile(r"^INC-([0-9]{8})-([0-9]{4,})$")
ALERTMANAGER = "alertmanager"  # the ``by`` of resolutions that came from Alertmanager


class IncidentError(AuroraError):
    """An incident command that cannot apply (unknown id, wrong state)."""


class IncidentNotFound(IncidentError):
    pass


class TransitionError(IncidentError):
    pass


def group_incident_key(group_key: str) -> str:
    """The idempotency key: one open incident per Alertmanager alert group."""
    return hashlib.sha256(group_key.encode()).hexdigest()[:32]


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
        return group_incident_key(self.group_key)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True)
class GroupAlert:
    """One alert of an incident's group, as the incident last saw it."""

    fingerprint: str
    labels: Mapping[str, str]
    starts_at: datetime
    firing: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "labels": dict(self.labels),
                "starts_at": format_rfc3339(self.starts_at), "firing": self.firing}


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
        if kind not in EVENT_KINDS:
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
    alerts: tuple[GroupAlert, ...] = ()  # the group's alerts, the opening one first
    # where each fingerprint sits in ``alerts``, and how many fire: kept by ``apply`` so that
    # a group of thousands of alerts is looked up and folded without rescanning it per alert
    positions: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    firing_count: int = field(default=0, compare=False, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    def member(self, fingerprint: str) -> GroupAlert | None:
        at = self.positions.get(fingerprint)
        return None if at is None else self.alerts[at]

    @property
    def firing(self) -> tuple[GroupAlert, ...]:
        return tuple(a for a in self.alerts if a.firing)

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
            "alerts": [a.to_json() for a in self.alerts],
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
        labels = dict(d.get("labels", {}))
        starts_at = parse_rfc3339(d["starts_at"])
        return Incident(
            # the key is derived, not read: entries written before incidents were keyed by
            # group (phase 1 keyed them by group and fingerprint) fold to the same key
            id=event.incident_id, key=group_incident_key(d["group_key"]),
            group_key=d["group_key"], fingerprint=d["fingerprint"], alertname=d["alertname"],
            sev=d["sev"], rule=d["rule"], treaty_id=d.get("treaty_id"), labels=labels,
            summary=d.get("summary", ""), starts_at=starts_at,
            opened_at=event.at, deadline=parse_rfc3339(d["deadline"]),
            runbook_url=d.get("runbook_url"), drill=d.get("drill"),
            alerts=(GroupAlert(d["fingerprint"], labels, starts_at),),
            positions={d["fingerprint"]: 0}, firing_count=1,
        )
    if incident is None:
        raise ValueError(f"{event.kind} event for unknown incident {event.incident_id}")
    if incident.status == "resolved":
        raise ValueError(f"{event.kind} event after {incident.id} was resolved")
    if event.kind == "alert_joined":
        joined = GroupAlert(d["fingerprint"], dict(d.get("labels", {})),
                            parse_rfc3339(d["starts_at"]))
        raised: dict[str, Any] = {}
        if "sev" in d:  # the joining alert maps to a more severe SEV: it takes over
            raised = {"sev": d["sev"], "rule": d["rule"],
                      "deadline": min(incident.deadline, parse_rfc3339(d["deadline"]))}
        return replace(incident, **raised, **_with_last(incident, joined))
    if event.kind == "alert_resolved":
        at = incident.positions.get(d["fingerprint"])
        if at is None or not incident.alerts[at].firing:
            return incident
        alerts = incident.alerts
        return replace(incident, alerts=(*alerts[:at], replace(alerts[at], firing=False),
                                         *alerts[at + 1:]),
                       firing_count=incident.firing_count - 1)
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
                   resolution=d.get("note"), notes=notes, firing_count=0,
                   alerts=tuple(replace(a, firing=False) for a in incident.alerts))


def _with_last(incident: Incident, joined: GroupAlert) -> dict[str, Any]:
    """``alerts``/``positions``/``firing_count`` with ``joined`` moved (or added) last."""
    at = incident.positions.get(joined.fingerprint)
    if at is None:  # a new member: append (C-speed copies, no per-alert Python loop)
        return {"alerts": (*incident.alerts, joined),
                "positions": {**incident.positions, joined.fingerprint: len(incident.alerts)},
                "firing_count": incident.firing_count + 1}
    before = incident.alerts[at]
    alerts = (*incident.alerts[:at], *incident.alerts[at + 1:], joined)
    return {"alerts": alerts, "positions": {a.fingerprint: i for i, a in enumerate(alerts)},
            "firing_count": incident.firing_count + (0 if before.firing else 1)}


def fold(events: Sequence[Event]) -> Incident:
    incident: Incident | None = None
    for event in events:
        incident = apply(incident, event)
    if incident is None:
        raise ValueError("no events")
    return incident


# --- decisions ------------------------------------------------------------------------------

def open_event(incident_id: str, alert: AlertFacts, *, sev: Sev, rule: str,
               deadline: datetime, treaty_id: str | None, now: datetime,
               drill: str | None = None) -> Event:
    """The incident's first event; ``drill`` tags it as caused by that running alert drill."""
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    data: dict[str, Any] = {
        "key": alert.key, "group_key": alert.group_key, "fingerprint": alert.fingerprint,
        "alertname": alert.alertname, "sev": sev, "rule": rule, "treaty_id": treaty_id,
        "labels": dict(alert.labels), "summary": summary[:500],
        "runbook_url": alert.annotations.get("runbook_url"),
        "starts_at": format_rfc3339(alert.starts_at), "deadline": format_rfc3339(deadline),
    }
    if drill:
        data["drill"] = drill
    return Event("opened", incident_id, now, data)


def join_event(incident: Incident, alert: AlertFacts, *, sev: Sev, rule: str,
               deadline: datetime, now: datetime) -> Event:
    """Another alert of the incident's group fires (or fires again) and joins it.

    ``sev``/``rule``/``deadline`` are what the joining alert alone would open with; they are
    recorded only when that SEV is more severe than the incident's (SEV1 < SEV4), and then
    the incident's deadline becomes the earlier of the two.
    """
    data: dict[str, Any] = {"fingerprint": alert.fingerprint, "labels": dict(alert.labels),
                            "starts_at": format_rfc3339(alert.starts_at)}
    if SEVS.index(sev) < SEVS.index(incident.sev):
        data.update(sev=sev, rule=rule, deadline=format_rfc3339(deadline))
    return Event("alert_joined", incident.id, now, data)


def alert_resolved_event(incident: Incident, alert: AlertFacts, *, now: datetime) -> Event:
    """One alert of the group cleared while others still fire."""
    data: dict[str, Any] = {"fingerprint": alert.fingerprint}
    if alert.ends_at is not None:
        data["alert_ends_at"] = format_rfc3339(alert.ends_at)
    return Event("alert_resolved", incident.id, now, data)


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
    """What one webhook alert means, given the incidents of its group (newest first).

    Alertmanager resends a group every group_interval/repeat_interval and retries after a
    receiver restart, so every decision is idempotent. An alert *episode* is its
    fingerprint plus ``startsAt`` (Prometheus gives a re-firing alert a new ``startsAt``).

    - firing, the group has an open incident:
      the episode is in it and firing → duplicate; in it and already resolved → stale (a
      late resend); handled by an earlier incident (resolved by hand while it fired) →
      stale; otherwise → join (a new alert of the group, or one firing again);
    - firing, no open incident: an episode an earlier incident handled → stale (do not
      reopen what an operator resolved on every resend); otherwise → open;
    - resolved: an alert the open incident holds as firing → resolve_alert, or resolve
      when it was the last one firing; otherwise → stale.
    """
    current = next((i for i in known if i.is_open), None)
    earlier = [i for i in known if i is not current]
    if alert.status == "firing":
        handled = next((i for i in earlier if _has_episode(i, alert)), None)
        if current is None:
            return ("stale", handled) if handled is not None else ("open", None)
        member = current.member(alert.fingerprint)
        if member is not None and member.starts_at == alert.starts_at:
            return ("duplicate" if member.firing else "stale"), current
        if handled is not None:
            return "stale", handled
        return "join", current
    if current is not None and (member := current.member(alert.fingerprint)) is not None \
            and member.firing:
        last = current.firing_count == 1  # and that one is this alert
        return ("resolve" if last else "resolve_alert"), current
    return "stale", current or (known[0] if known else None)


def _has_episode(incident: Incident, alert: AlertFacts) -> bool:
    member = incident.member(alert.fingerprint)
    return member is not None and member.starts_at == alert.starts_at
