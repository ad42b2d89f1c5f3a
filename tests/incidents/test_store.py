"""The incident store: idempotent ingestion, operator steps, breaches, the ledger, restarts."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from pathlib import Path

import pytest

from aurora.home import Home
from aurora.incidents.model import IncidentNotFound, TransitionError
from aurora.incidents.service import IncidentStore, db_path, incident_report
from aurora.incidents.webhook import parse_webhook

from .conftest import FakeClock, alert, body, ledger_incident_entries, notification, recorded

FIRING = "fill-rate-firing.json"


def ingest(store: IncidentStore, name_or_doc: str | dict) -> dict:
    raw = recorded(name_or_doc) if isinstance(name_or_doc, str) else body(name_or_doc)
    return store.ingest(parse_webhook(raw)).to_json()


def test_firing_opens_one_incident_with_its_sev(store: IncidentStore) -> None:
    result = ingest(store, FIRING)
    assert result["opened"] == ["INC-20261125-0001"]
    [incident] = store.incidents()
    assert incident.sev == "SEV2" and incident.rule == "fill-rate"
    assert incident.alertname == "AuroraFillRateLow" and incident.treaty_id == "AURORA-AKASH-001"
    assert incident.opened_at == store.clock()


def test_resends_never_open_a_second_incident(store: IncidentStore, clock: FakeClock) -> None:
    ingest(store, FIRING)
    for name in (FIRING, "fill-rate-resend.json", FIRING):
        clock.advance(minutes=1)
        assert ingest(store, name)["duplicates"] == ["INC-20261125-0001"]
    assert len(store.incidents()) == 1
    assert [e["data"]["event"] for e in ledger_incident_entries(store.home)] == ["opened"]


def test_resolved_notification_resolves(store: IncidentStore, clock: FakeClock) -> None:
    ingest(store, FIRING)
    clock.advance(minutes=10)
    assert ingest(store, "fill-rate-resolved.json")["resolved"] == ["INC-20261125-0001"]
    incident = store.get("INC-20261125-0001")
    assert incident.status == "resolved" and incident.resolved_by == "alertmanager"
    assert incident.resolved_at == clock.now
    # Alertmanager sends the resolution again on the next flush: nothing changes
    assert ingest(store, "fill-rate-resolved.json") == {
        "opened": [], "joined": [], "alerts_resolved": [], "resolved": [], "duplicates": [],
        "stale": 1}
    # ... and a late resend of the old firing does not reopen it
    assert ingest(store, FIRING)["stale"] == 1
    entries = ledger_incident_entries(store.home)
    assert [e["data"]["event"] for e in entries] == ["opened", "resolved"]
    assert entries[1]["data"]["alert_ends_at"].startswith("20")


def test_refiring_after_resolution_opens_a_new_incident(store: IncidentStore) -> None:
    ingest(store, FIRING)
    ingest(store, "fill-rate-resolved.json")
    document = notification(alert("AuroraFillRateLow", severity="critical",
                                  fingerprint="617b3582ba9c28e5",
                                  starts_at="2026-11-25T10:00:00Z"),
                            group_key=parse_webhook(recorded(FIRING)).group_key)
    assert ingest(store, document)["opened"] == ["INC-20261125-0002"]


def test_one_incident_per_alert_group(store: IncidentStore) -> None:
    result = ingest(store, "rtt-two-alerts.json")
    [incident_id] = result["opened"]
    assert result["joined"] == [incident_id]  # the group's second alert joins the first's
    [incident] = store.incidents()
    assert incident.sev == "SEV3" and len(incident.firing) == 2
    again = ingest(store, "rtt-two-alerts.json")
    assert again["duplicates"] == [incident_id, incident_id] and again["opened"] == []
    events = [e["data"]["event"] for e in ledger_incident_entries(store.home)]
    assert events == ["opened", "alert_joined"]


def _rtt_group(*states: tuple[str, str, str]) -> dict:
    """A notification of the recorded RTT group with (fingerprint, status, startsAt) alerts."""
    group_key = parse_webhook(recorded("rtt-two-alerts.json")).group_key
    return notification(*(alert("AuroraRttP95High", status=status, fingerprint=fp,
                                starts_at=starts, severity="warning",
                                ends_at="2026-11-25T09:30:00Z" if status == "resolved"
                                else "0001-01-01T00:00:00Z")
                          for fp, status, starts in states), group_key=group_key)


def test_a_group_resolves_when_its_last_alert_does(store: IncidentStore,
                                                   clock: FakeClock) -> None:
    a, b, start = "3d9b18e682b3c315", "0227fe5f56e7f42e", "2026-11-25T08:45:00Z"
    [incident_id] = ingest(store, _rtt_group((a, "firing", start)))["opened"]
    clock.advance(minutes=2)
    assert ingest(store, _rtt_group((a, "firing", start), (b, "firing", start)))["joined"] == [
        incident_id]
    clock.advance(minutes=2)
    # a notification that lists the cleared alert first: the firing one is applied first
    step = ingest(store, _rtt_group((a, "resolved", start), (b, "firing", start)))
    assert step["alerts_resolved"] == [incident_id] and step["duplicates"] == [incident_id]
    assert store.get(incident_id).is_open
    # Alertmanager repeats the resolved alert once more: nothing changes
    assert ingest(store, _rtt_group((a, "resolved", start), (b, "firing", start)))["stale"] == 1
    clock.advance(minutes=2)
    assert ingest(store, _rtt_group((b, "resolved", start)))["resolved"] == [incident_id]
    done = store.get(incident_id)
    assert done.resolved_by == "alertmanager" and done.firing == ()
    events = [e["data"]["event"] for e in ledger_incident_entries(store.home)]
    assert events == ["opened", "alert_joined", "alert_resolved", "resolved"]
    # the group fires again later: a new episode, a new incident
    assert ingest(store, _rtt_group((a, "firing", "2026-11-25T10:00:00Z")))["opened"] == [
        "INC-20261125-0002"]


def test_a_joining_page_raises_a_ticket_incident(store: IncidentStore, clock: FakeClock) -> None:
    group = "{}:{alertname=\"AuroraFillRateLow\", treaty_id=\"AURORA-AKASH-001\"}"
    ingest(store, notification(alert("AuroraFillRateLow", severity="warning"), group_key=group))
    [incident] = store.incidents()
    assert incident.sev == "SEV2"  # fill-rate maps to SEV2 whatever the severity
    clock.advance(minutes=5)
    ingest(store, notification(
        alert("AuroraFillRateLow", severity="warning"),
        alert("AuroraLedgerTampered", severity="critical", fingerprint="fedcba9876543210"),
        group_key=group))
    raised = store.get(incident.id)
    assert (raised.sev, raised.rule) == ("SEV1", "ledger-integrity")
    assert raised.deadline == clock.now + timedelta(minutes=15)


def test_ticket_maps_to_sev4_with_business_day_deadline(store: IncidentStore) -> None:
    ingest(store, "burn-rate-ticket.json")
    [incident] = store.incidents()
    assert incident.sev == "SEV4"
    # opened Wednesday 09:00 → due Thursday 09:00
    assert (incident.deadline - incident.opened_at).total_seconds() == 86400


def test_ack_and_resolve_record_response_time(store: IncidentStore, clock: FakeClock) -> None:
    ingest(store, FIRING)
    clock.advance(minutes=12)
    incident = store.acknowledge("INC-20261125-0001", by="alice", note="provider outage")
    assert incident.response_seconds == 720.0 and incident.status == "acknowledged"
    with pytest.raises(TransitionError, match="already acknowledged by alice"):
        store.acknowledge("INC-20261125-0001", by="bob")
    clock.advance(minutes=20)
    done = store.resolve("INC-20261125-0001", by="alice", note="failover to render")
    assert done.status == "resolved" and done.resolution == "failover to render"
    entries = ledger_incident_entries(store.home)
    assert [(e["subject"], e["data"]["event"]) for e in entries] == [
        ("INC-20261125-0001", "opened"), ("INC-20261125-0001", "acknowledged"),
        ("INC-20261125-0001", "resolved")]
    assert entries[1]["data"]["by"] == "alice" and entries[1]["data"]["note"] == "provider outage"
    assert all(e["kind"] == "incident" and e["treaty_id"] == "AURORA-AKASH-001" for e in entries)
    report = store.report()
    assert report.sla_line() == "alert response within SLA: 1/1 (100.0 %)"
    assert report.by_sev["SEV2"].response.percentiles[50] == 720.0


def test_unknown_incident(store: IncidentStore) -> None:
    with pytest.raises(IncidentNotFound, match="no incident INC-20261125-0042"):
        store.acknowledge("INC-20261125-0042", by="alice")
    with pytest.raises(IncidentNotFound, match="not an incident id"):
        store.get("42")


def test_breach_is_recorded_once(store: IncidentStore, clock: FakeClock) -> None:
    ingest(store, FIRING)  # SEV2: 1 h
    clock.advance(minutes=59)
    assert store.check_breaches() == []
    clock.advance(minutes=2)
    [escalated] = store.check_breaches()
    assert escalated.status == "escalated" and escalated.escalated_at == clock.now
    clock.advance(minutes=30)
    assert store.check_breaches() == []
    late = store.acknowledge(escalated.id, by="bob")
    assert late.response_seconds == 91 * 60
    events = [e["data"]["event"] for e in ledger_incident_entries(store.home)]
    assert events == ["opened", "escalated", "acknowledged"]
    assert store.report().sla_line() == "alert response within SLA: 0/1 (0.0 %)"


def test_late_ack_without_a_check_still_records_the_breach(store: IncidentStore,
                                                           clock: FakeClock) -> None:
    ingest(store, FIRING)
    clock.advance(hours=2)  # the receiver was down: nobody checked
    store.acknowledge("INC-20261125-0001", by="bob")
    events = [e["data"]["event"] for e in ledger_incident_entries(store.home)]
    assert events == ["opened", "escalated", "acknowledged"]


def test_state_survives_a_restart(aurora_home: Home, clock: FakeClock) -> None:
    with IncidentStore.open(aurora_home, write=True, clock=clock) as first:
        ingest(first, FIRING)
        first.acknowledge("INC-20261125-0001", by="alice")
    with IncidentStore.open(aurora_home, write=True, clock=clock) as second:
        assert second.get("INC-20261125-0001").acknowledged_by == "alice"
        assert ingest(second, "fill-rate-resend.json")["duplicates"] == ["INC-20261125-0001"]
        assert ingest(second, "rtt-two-alerts.json")["opened"] == ["INC-20261125-0002"]


def test_index_is_rebuilt_from_the_ledger(aurora_home: Home, clock: FakeClock) -> None:
    with IncidentStore.open(aurora_home, write=True, clock=clock) as first:
        ingest(first, FIRING)
        first.acknowledge("INC-20261125-0001", by="alice", note="on it")
        ingest(first, "rtt-two-alerts.json")
        before = [i.to_json() for i in first.incidents()]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path(aurora_home)}{suffix}").unlink(missing_ok=True)
    with IncidentStore.open(aurora_home, clock=clock) as reader:
        assert [i.to_json() for i in reader.incidents()] == before


def test_event_in_ledger_but_not_in_index_is_caught_up(aurora_home: Home,
                                                       clock: FakeClock) -> None:
    """A crash after the ledger append and before the index commit loses nothing."""
    from aurora.incidents.model import acknowledge_events

    with IncidentStore.open(aurora_home, write=True, clock=clock) as store:
        ingest(store, FIRING)
        incident = store.get("INC-20261125-0001")
        # what _commit does, minus the index: the ledger has the ack, the index does not
        [event] = acknowledge_events(incident, by="alice", note=None, now=clock.now)
        store.record("incident", subject=event.incident_id, data=event.to_data())
        assert store.get("INC-20261125-0001").acknowledged_by is None
        # the next writer catches up before deciding: bob is not "first"
        with pytest.raises(TransitionError, match="already acknowledged by alice"):
            store.acknowledge("INC-20261125-0001", by="bob")
    with IncidentStore.open(aurora_home, clock=clock) as reader:
        assert reader.get("INC-20261125-0001").acknowledged_by == "alice"


def _ack_in_process(root: str, who: str, queue: multiprocessing.Queue) -> None:
    from aurora.incidents.model import TransitionError as Refused

    with IncidentStore.open(Home(Path(root)), write=True) as store:
        try:
            store.acknowledge("INC-20261125-0001", by=who)
            queue.put(("ok", who))
        except Refused:
            queue.put(("refused", who))


def test_concurrent_acknowledgements_from_processes(aurora_home: Home, store: IncidentStore
                                                    ) -> None:
    ingest(store, FIRING)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_ack_in_process, args=(str(aurora_home.root), f"op{n}",
                                                             queue)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    outcomes = sorted(queue.get(timeout=60)[0] for _ in workers)
    assert outcomes == ["ok", "refused", "refused", "refused"]
    acks = [e for e in ledger_incident_entries(aurora_home)
            if e["data"]["event"] == "acknowledged"]
    assert len(acks) == 1


def test_concurrent_deliveries_open_one_incident(aurora_home: Home, store: IncidentStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    payload = parse_webhook(recorded(FIRING))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.ingest(payload), range(16)))
    assert sum(len(r.opened) for r in results) == 1
    assert sum(len(r.duplicates) for r in results) == 15


def test_gate_report_counts_major_incidents_without_drills(aurora_home: Home,
                                                           store: IncidentStore) -> None:
    ingest(store, FIRING)  # SEV2
    ingest(store, "rtt-two-alerts.json")  # SEV3
    ingest(store, "burn-rate-ticket.json")  # SEV4
    store.acknowledge("INC-20261125-0002", by="drill", drill="DRILL-20261125T090000Z")
    report = incident_report(aurora_home)
    assert report.major == 1 and report.drills == 1
    assert report.by_sev["SEV3"].opened == 0 and report.by_sev["SEV4"].opened == 1
    assert report.to_json()["major_incidents"] == 1


@pytest.mark.sqlite_mode
def test_index_follows_a_replaced_ledger(aurora_home: Home, clock: FakeClock) -> None:
    """After the ledger is restored from an older backup, the index is rebuilt from it."""
    with IncidentStore.open(aurora_home, write=True, clock=clock) as store:
        ingest(store, FIRING)
        store.acknowledge("INC-20261125-0001", by="alice")
    # the emergency procedure restores an older ledger: here, one without these entries
    for path in (aurora_home.ledger_db, aurora_home.checkpoint_file):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    with IncidentStore.open(aurora_home, write=True, clock=clock) as store:
        store.record("note", subject="restored", data={"why": "drill"})
        assert store.incidents() == []
        # what Alertmanager resends opens the incident again, on the restored record
        assert ingest(store, FIRING)["opened"] == ["INC-20261125-0001"]
        assert store.get("INC-20261125-0001").acknowledged_at is None
