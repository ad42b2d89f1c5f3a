"""The incident state machine, SLA outcomes and the webhook routing decision (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from aurora.incidents.model import (
    ALERTMANAGER,
    AlertFacts,
    Event,
    Incident,
    IncidentNotFound,
    TransitionError,
    acknowledge_events,
    alert_resolved_event,
    apply,
    breach_events,
    check_incident_id,
    fold,
    format_incident_id,
    group_incident_key,
    join_event,
    open_event,
    resolve_events,
    route_alert,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
STARTS = datetime(2026, 11, 25, 8, 45, tzinfo=UTC)


def facts(status: str = "firing", *, starts: datetime = STARTS, fingerprint: str = "ab12",
          group_key: str = "{}:{alertname=\"AuroraFillRateLow\"}") -> AlertFacts:
    return AlertFacts(group_key=group_key, fingerprint=fingerprint, status=status,  # type: ignore[arg-type]
                      labels={"alertname": "AuroraFillRateLow",
                              "treaty_id": "AURORA-AKASH-001"},
                      annotations={"summary": "fill rate low"}, starts_at=starts, ends_at=None)


def opened(sla: timedelta = timedelta(hours=1), *, alert: AlertFacts | None = None,
           incident_id: str = "INC-20261125-0001") -> Incident:
    return apply(None, open_event(incident_id, alert or facts(), sev="SEV2", rule="fill-rate",
                                  deadline=T0 + sla, treaty_id="AURORA-AKASH-001", now=T0))


def run(incident: Incident, events: list[Event]) -> Incident:
    for event in events:
        incident = apply(incident, event)
    return incident


def test_opened_incident() -> None:
    incident = opened()
    assert incident.status == "opened" and incident.is_open
    assert incident.opened_at == T0 and incident.starts_at == STARTS
    assert incident.deadline == T0 + timedelta(hours=1)
    assert incident.summary == "fill rate low" and incident.treaty_id == "AURORA-AKASH-001"
    assert incident.outcome(T0) == "pending" and incident.response_seconds is None


def test_acknowledge_then_resolve_records_response_time() -> None:
    incident = run(opened(), acknowledge_events(opened(), by="alice", note="looking",
                                                now=T0 + timedelta(minutes=7)))
    assert incident.status == "acknowledged" and incident.acknowledged_by == "alice"
    assert incident.response_seconds == 420.0
    assert incident.outcome(T0 + timedelta(days=3)) == "met"
    done = run(incident, resolve_events(incident, by="alice", note="provider back",
                                        now=T0 + timedelta(minutes=30)))
    assert done.status == "resolved" and not done.is_open
    assert done.resolved_by == "alice" and done.resolution == "provider back"
    assert done.response_seconds == 420.0  # resolution does not change the response time
    assert [n[2] for n in done.notes] == ["looking", "provider back"]


def test_only_the_first_acknowledgement_counts() -> None:
    incident = run(opened(), acknowledge_events(opened(), by="alice", note=None,
                                                now=T0 + timedelta(minutes=5)))
    with pytest.raises(TransitionError, match="already acknowledged by alice"):
        acknowledge_events(incident, by="bob", note=None, now=T0 + timedelta(minutes=6))


def test_no_transition_out_of_resolved() -> None:
    incident = opened()
    done = run(incident, resolve_events(incident, by=ALERTMANAGER, note=None, now=T0))
    with pytest.raises(TransitionError, match="already resolved"):
        acknowledge_events(done, by="alice", note=None, now=T0)
    with pytest.raises(TransitionError, match="already resolved"):
        resolve_events(done, by="alice", note="again", now=T0)
    with pytest.raises(ValueError, match="after .* was resolved"):
        apply(done, Event("acknowledged", done.id, T0, {"by": "x"}))


def test_operator_resolve_of_unacknowledged_incident_acknowledges_it() -> None:
    events = resolve_events(opened(), by="alice", note="fixed", now=T0 + timedelta(minutes=3))
    assert [e.kind for e in events] == ["acknowledged", "resolved"]
    done = run(opened(), events)
    assert done.response_seconds == 180.0 and done.outcome(T0) == "met"


def test_alertmanager_resolution_is_not_a_response() -> None:
    done = run(opened(), resolve_events(opened(), by=ALERTMANAGER, note=None,
                                        now=T0 + timedelta(minutes=3)))
    assert done.acknowledged_at is None and done.response_seconds is None
    assert done.outcome(T0 + timedelta(days=1)) == "auto_resolved"


def test_breach_is_recorded_once_when_unacknowledged_past_deadline() -> None:
    incident = opened(timedelta(minutes=15))
    assert breach_events(incident, T0 + timedelta(minutes=15)) == []  # at the deadline: in time
    assert incident.outcome(T0 + timedelta(minutes=15)) == "pending"
    late = T0 + timedelta(minutes=15, seconds=1)
    events = breach_events(incident, late)
    assert [e.kind for e in events] == ["escalated"]
    assert events[0].data["reason"] == "sla_breach" and events[0].data["late_seconds"] == 1.0
    escalated = run(incident, events)
    assert escalated.status == "escalated" and escalated.outcome(late) == "breached"
    assert breach_events(escalated, late + timedelta(hours=5)) == []  # once


def test_late_acknowledgement_escalates_first_and_stays_breached() -> None:
    incident = opened(timedelta(minutes=15))
    events = acknowledge_events(incident, by="bob", note=None, now=T0 + timedelta(minutes=20))
    assert [e.kind for e in events] == ["escalated", "acknowledged"]
    late = run(incident, events)
    assert late.status == "acknowledged" and late.response_seconds == 1200.0
    assert late.outcome(T0 + timedelta(days=1)) == "breached"


def test_acknowledged_incident_never_breaches() -> None:
    incident = run(opened(timedelta(minutes=15)),
                   acknowledge_events(opened(), by="a", note=None, now=T0))
    assert breach_events(incident, T0 + timedelta(days=2)) == []


def test_auto_resolution_after_deadline_is_a_breach() -> None:
    incident = opened(timedelta(minutes=15))
    events = resolve_events(incident, by=ALERTMANAGER, note=None, now=T0 + timedelta(hours=1))
    assert [e.kind for e in events] == ["escalated", "resolved"]
    assert run(incident, events).outcome(T0 + timedelta(hours=2)) == "breached"


def test_unacknowledged_open_incident_past_deadline_counts_as_breached_before_recording() -> None:
    assert opened(timedelta(minutes=15)).outcome(T0 + timedelta(hours=1)) == "breached"


def test_drill_acknowledgement_marks_even_an_acknowledged_incident() -> None:
    incident = run(opened(), acknowledge_events(opened(), by="alice", note=None,
                                                now=T0 + timedelta(minutes=1)))
    marked = run(incident, acknowledge_events(incident, by="drill", note=None,
                                              now=T0 + timedelta(minutes=2), drill="DRILL-1"))
    assert marked.drill == "DRILL-1" and marked.acknowledged_by == "alice"
    assert marked.response_seconds == 60.0


def test_events_round_trip_through_ledger_data() -> None:
    incident = opened()
    events = [open_event(incident.id, facts(), sev="SEV2", rule="fill-rate",
                         deadline=incident.deadline, treaty_id=None, now=T0),
              *acknowledge_events(incident, by="a", note="n", now=T0 + timedelta(seconds=1))]
    again = [Event.from_data(e.incident_id, e.to_data()) for e in events]
    assert again == events
    assert fold(again) == fold(events)
    with pytest.raises(ValueError, match="unknown incident event"):
        Event.from_data("INC-20261125-0001", {"event": "exploded", "at": "2026-11-25T09:00:00Z"})


def test_idempotency_key_is_the_group_key() -> None:
    assert facts().key == group_incident_key(facts().group_key)
    assert facts(fingerprint="cd34").key == facts().key  # same group: same incident
    assert facts(group_key="{}:{x=\"y\"}").key != facts().key


def test_route_alert() -> None:
    assert route_alert(facts(), []) == ("open", None)
    current = opened()
    assert route_alert(facts(), [current]) == ("duplicate", current)
    assert route_alert(facts("resolved"), [current]) == ("resolve", current)
    done = run(current, resolve_events(current, by="alice", note="x", now=T0))
    # the same firing after an operator resolved it: not a new incident
    assert route_alert(facts(), [done]) == ("stale", done)
    # a new firing (new startsAt) after resolution: a new incident
    assert route_alert(facts(starts=STARTS + timedelta(hours=2)), [done]) == ("open", None)
    assert route_alert(facts("resolved"), [done]) == ("stale", done)
    assert route_alert(facts("resolved"), []) == ("stale", None)


def test_a_group_is_one_incident_its_alerts_join_and_leave() -> None:
    incident = opened()
    other = facts(fingerprint="cd34")
    assert route_alert(other, [incident]) == ("join", incident)
    joined = apply(incident, join_event(incident, other, sev="SEV3", rule="latency",
                                        deadline=T0 + timedelta(hours=4), now=T0))
    assert [a.fingerprint for a in joined.firing] == ["ab12", "cd34"]
    assert joined.sev == "SEV2" and joined.deadline == incident.deadline  # less severe: no change
    assert route_alert(other, [joined]) == ("duplicate", joined)
    # the first alert clears while the second fires: the incident stays open
    assert route_alert(facts("resolved"), [joined]) == ("resolve_alert", joined)
    left = apply(joined, alert_resolved_event(joined, facts("resolved"), now=T0))
    assert left.is_open and [a.fingerprint for a in left.firing] == ["cd34"]
    # a late resend of the cleared episode changes nothing; a new episode of it rejoins
    assert route_alert(facts(), [left]) == ("stale", left)
    assert route_alert(facts(starts=STARTS + timedelta(minutes=30)), [left]) == ("join", left)
    # the last alert clears: the incident resolves
    assert route_alert(facts("resolved", fingerprint="cd34"), [left]) == ("resolve", left)
    done = run(left, resolve_events(left, by=ALERTMANAGER, note=None, now=T0))
    assert done.firing == () and len(done.alerts) == 2


def test_a_more_severe_alert_joining_raises_the_sev_and_the_deadline() -> None:
    incident = opened(timedelta(hours=1))  # SEV2, due T0 + 1 h
    later = T0 + timedelta(minutes=10)
    critical = facts(fingerprint="ef56")
    raised = apply(incident, join_event(incident, critical, sev="SEV1", rule="provenance-critical",
                                        deadline=later + timedelta(minutes=15), now=later))
    assert (raised.sev, raised.rule) == ("SEV1", "provenance-critical")
    assert raised.deadline == later + timedelta(minutes=15)
    # a SEV1 joining a group whose deadline is already earlier keeps the earlier one
    early = opened(timedelta(minutes=5))
    kept = apply(early, join_event(early, critical, sev="SEV1", rule="r",
                                   deadline=later + timedelta(minutes=15), now=later))
    assert kept.deadline == T0 + timedelta(minutes=5)


def test_episode_an_operator_closed_does_not_join_the_next_incident() -> None:
    first = opened()
    closed = run(first, resolve_events(first, by="alice", note="false alarm", now=T0))
    newcomer = facts(fingerprint="cd34")
    assert route_alert(newcomer, [closed]) == ("open", None)
    second = opened(alert=newcomer, incident_id="INC-20261125-0002")
    # the old alert still fires in the group's notifications: it stays with the closed one
    assert route_alert(facts(), [second, closed]) == ("stale", closed)


def test_drill_tag_at_opening() -> None:
    event = open_event("INC-20261125-0001", facts(), sev="SEV2", rule="fill-rate",
                       deadline=T0 + timedelta(hours=1), treaty_id=None, now=T0,
                       drill="DRILL-20261125T085959Z")
    incident = apply(None, Event.from_data(event.incident_id, event.to_data()))
    assert incident.drill == "DRILL-20261125T085959Z"
    assert opened().drill is None


def test_incident_ids() -> None:
    assert format_incident_id(date(2026, 11, 27), 1) == "INC-20261127-0001"
    assert format_incident_id(date(2026, 11, 27), 12345) == "INC-20261127-12345"
    assert check_incident_id("INC-20261127-0001") == "INC-20261127-0001"
    with pytest.raises(IncidentNotFound, match="not an incident id"):
        check_incident_id("INC-1")
