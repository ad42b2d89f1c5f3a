"""Real Alertmanager → real receiver process → incidents in the ledger.

Alertmanager 0.25 runs with ops/alertmanager.yml rendered for short intervals (group wait
and interval 1 s, repeat 2 s, so resends happen within the test) and delivers to
``python -m aurora.incidents.server`` on free ports. Alerts are posted to Alertmanager's
API as Prometheus would post them. (Prometheus → Alertmanager driven by a provider outage
through the bridge: tests/integration/test_alert_path_live.py.) Every process is started and
stopped by its PID file.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from aurora import procs
from aurora.config import load_stack
from aurora.drills.alert import run_alert_drill
from aurora.home import Home
from aurora.incidents.alertmanager import alertmanager_argv, render_alertmanager_config
from aurora.incidents.model import Incident
from aurora.incidents.service import IncidentStore
from support import needs_tools

from .conftest import TREATY, ledger_incident_entries
from .receiver_api import list_incidents, webhooks_accepted

pytestmark = [
    pytest.mark.integration,
    needs_tools("prometheus-alertmanager|alertmanager"),
]

WAIT = 30.0  # upper bound for any one delivery; normally 1–3 s


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Live:
    home: Home
    alertmanager: str
    receiver: str
    started: datetime

    def post(self, name: str, *, resolve: bool = False, **labels: str) -> None:
        """Post (or resolve) an alert the way Prometheus does: same labels, same startsAt."""
        alert = {
            "labels": {"alertname": name, "treaty_id": TREATY, **labels},
            "annotations": {"summary": f"{name} from the integration test"},
            "startsAt": stamp(self.started),
            "endsAt": stamp(datetime.now(UTC) if resolve
                            else datetime.now(UTC) + timedelta(minutes=5)),
            "generatorURL": "http://127.0.0.1:9090/graph",
        }
        httpx.post(f"{self.alertmanager}/api/v2/alerts", json=[alert],
                   timeout=5.0).raise_for_status()

    def incidents(self, **params: str) -> list[dict[str, Any]]:
        return list_incidents(self.home, self.receiver, **params)

    def webhooks_accepted(self) -> float:
        return webhooks_accepted(self.receiver)

    def start_receiver(self) -> None:
        port = load_stack(self.home).incidents_port
        procs.spawn(self.home, "incidents", [sys.executable, "-m", "aurora.incidents.server",
                                             "--port", str(port), "--check-every", "1"])
        procs.wait_http(f"{self.receiver}/healthz", timeout=WAIT,
                        pid_check=(self.home, "incidents"))


def wait_until(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if value := probe():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def live(home: Path) -> Iterator[Live]:
    where = Home(home)
    stack = load_stack(where)
    config = render_alertmanager_config(where, stack, group_wait="1s", group_interval="1s",
                                        repeat_interval="2s", out_dir=where.data_dir / "am")
    running = Live(where, stack.alertmanager_url, stack.incidents_url, datetime.now(UTC))
    try:
        running.start_receiver()
        procs.spawn(where, "alertmanager", alertmanager_argv(
            config, stack.alertmanager_port, where.data_dir / "alertmanager"))
        procs.wait_http(f"{stack.alertmanager_url}/-/ready", timeout=WAIT,
                        pid_check=(where, "alertmanager"))
        yield running
    finally:
        procs.stop(where, "alertmanager")
        procs.stop(where, "incidents")


def events_of(home: Home, incident_id: str) -> list[str]:
    return [e["data"]["event"] for e in ledger_incident_entries(home)
            if e["subject"] == incident_id]


def test_alert_opens_one_incident_through_resends_then_resolves(live: Live) -> None:
    live.post("AuroraFillRateLow", severity="critical")
    [incident] = wait_until("the incident", lambda: live.incidents(alertname="AuroraFillRateLow"))
    assert incident["sev"] == "SEV2" and incident["status"] == "opened"
    assert incident["treaty_id"] == TREATY
    first = live.webhooks_accepted()
    wait_until("two resends", lambda: live.webhooks_accepted() >= first + 2)
    assert len(live.incidents()) == 1  # resends never open a second incident

    # an operator acknowledges from another process while the receiver runs
    with IncidentStore.open(live.home, write=True) as store:
        acked = store.acknowledge(incident["id"], by="alice", note="provider outage")
    assert acked.response_seconds is not None and acked.response_seconds >= 0

    live.post("AuroraFillRateLow", severity="critical", resolve=True)
    [done] = wait_until("the resolution", lambda: [
        i for i in live.incidents() if i["status"] == "resolved"])
    assert done["id"] == incident["id"] and done["resolved_by"] == "alertmanager"
    assert events_of(live.home, incident["id"]) == ["opened", "acknowledged", "resolved"]
    entries = [e for e in ledger_incident_entries(live.home) if e["subject"] == incident["id"]]
    assert all(e["kind"] == "incident" and e["treaty_id"] == TREATY for e in entries)
    assert entries[2]["data"]["source"] == "alertmanager"


def test_warning_is_inhibited_while_the_critical_fires(live: Live) -> None:
    live.post("AuroraProvenanceLow", severity="critical")
    live.post("AuroraProvenanceLow", severity="warning")
    wait_until("the critical incident", lambda: live.incidents())
    first = live.webhooks_accepted()
    wait_until("more notifications", lambda: live.webhooks_accepted() >= first + 2)
    [incident] = live.incidents()
    assert incident["labels"]["severity"] == "critical" and incident["sev"] == "SEV2"


def test_provenance_critical_holds_back_the_seeds_provenance_alert(live: Live) -> None:
    live.post("TreatyProvenanceCritical", severity="critical", slo="provenance")
    live.post("TreatyProvenanceLow", severity="critical", slo="provenance")
    wait_until("the SEV1 incident", lambda: live.incidents())
    first = live.webhooks_accepted()
    wait_until("more notifications", lambda: live.webhooks_accepted() >= first + 2)
    [incident] = live.incidents()  # one fault, one incident: the SEV1
    assert incident["alertname"] == "TreatyProvenanceCritical" and incident["sev"] == "SEV1"


def test_alerts_of_one_group_share_an_incident(live: Live) -> None:
    # two instances of one alert: one Alertmanager group, so one incident holding both
    live.post("AuroraRttP95High", severity="critical", instance="bridge-1")
    live.post("AuroraRttP95High", severity="critical", instance="bridge-2")
    [incident] = wait_until("both alerts in the incident", lambda: [
        i for i in live.incidents() if len([a for a in i["alerts"] if a["firing"]]) == 2])
    live.post("AuroraRttP95High", severity="critical", instance="bridge-1", resolve=True)
    wait_until("one alert cleared", lambda: [
        i for i in live.incidents()
        if {a["labels"]["instance"]: a["firing"] for a in i["alerts"]}
        == {"bridge-1": False, "bridge-2": True}])
    assert live.incidents(open="1") != []  # still open: bridge-2 fires
    live.post("AuroraRttP95High", severity="critical", instance="bridge-2", resolve=True)
    wait_until("the resolution", lambda: live.incidents(open="1") == [])
    assert len(live.incidents()) == 1
    assert events_of(live.home, incident["id"]) == ["opened", "alert_joined", "alert_resolved",
                                                    "resolved"]


def test_incidents_survive_a_receiver_restart(live: Live) -> None:
    live.post("AuroraRttP95High", severity="warning")
    [incident] = wait_until("the incident", lambda: live.incidents())
    assert incident["sev"] == "SEV3"
    procs.stop(live.home, "incidents")
    live.start_receiver()
    first = live.webhooks_accepted()  # a fresh process: counts from zero
    wait_until("resends to the new process", lambda: live.webhooks_accepted() >= first + 2)
    [again] = live.incidents()
    assert again["id"] == incident["id"] and again["status"] == "opened"
    assert events_of(live.home, incident["id"]) == ["opened"]


def test_alert_drill_round_trip(live: Live) -> None:
    result = run_alert_drill(
        live.home, "AuroraFillRateLow", timeout=WAIT, poll=0.2,
        inject=lambda: live.post("AuroraFillRateLow", severity="critical"),
        clear=lambda: live.post("AuroraFillRateLow", severity="critical", resolve=True))
    assert result.passed, result.failure
    assert (result.sev, result.expected_sev) == ("SEV2", "SEV2")
    assert result.opened_at and result.resolved_at and result.cleared_at
    assert result.fired_at <= result.opened_at <= result.cleared_at <= result.resolved_at
    durations = result.to_json()["durations_seconds"]
    assert all(v is not None and v >= 0 for v in durations.values())
    assert result.incident_id is not None
    assert events_of(live.home, result.incident_id) == ["opened", "acknowledged", "resolved"]
    from aurora.ledger import Ledger

    ledger = Ledger.open(live.home, readonly=True)
    try:
        started, finished = (json.loads(row.payload) for row in ledger.scan(kinds=("drill",)))
        [opened] = [json.loads(row.payload) for row in ledger.scan(kinds=("incident",))
                    if json.loads(row.payload)["data"]["event"] == "opened"]
        finished_seq = list(ledger.scan(kinds=("drill",)))[-1].seq
    finally:
        ledger.close()
    # the drill announced itself before the fault, and the incident was a drill from its
    # first ledger entry on
    assert started["subject"] == finished["subject"] == result.drill_id
    assert started["data"]["event"] == "started" and started["data"]["alert"] == "AuroraFillRateLow"
    assert opened["data"]["drill"] == result.drill_id
    assert finished_seq == result.ledger_seq and finished["data"]["event"] == "finished"
    assert finished["data"]["passed"] is True
    assert finished["data"]["incident_id"] == result.incident_id
    with IncidentStore.open(live.home) as store:
        marked: Incident = store.get(result.incident_id)
        assert marked.drill == result.drill_id
        assert store.report().drills == 1 and store.report().major == 0
