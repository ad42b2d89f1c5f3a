"""Issue 6 end to end on the live stack: provider fault → bridge → Prometheus (rules compressed
240x) → Alertmanager (group wait/interval 1 s, repeat 2 s) → incident receiver → ledger.

1. The plain path: an outage of every eu-west-1 provider (``aurora chaos outage --mode
   refuse``) makes the fill-rate alert fire; exactly one incident opens although
   Alertmanager resends the group every 2 s; ``aurora incident ack`` records a response time;
   clearing the fault resolves it through Alertmanager; the ledger holds opened, acknowledged
   and resolved.
2. The alert drills of ``aurora.incidents.drill`` (``drill_plan`` + ``run_drill``) for the
   fill-rate and the RTT alerts: the incident opens with the expected SEV and is a drill
   incident from its first ledger entry (the receiver saw the drill's ``started`` entry),
   the fault is cleared, the resolution arrives.
3. The Day-7 count: SEV1/SEV2 incidents exclude the drills' (and their companion burn-rate
   alerts'), so only the real incident of step 1 counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from aurora.incidents.drill import drill_plan, run_drill
from aurora.incidents.service import incident_report
from aurora.ledger import Ledger
from integration.live import LiveStack, running_stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EU_WEST_1 = ("akash", "render", "flux", "aethir", "vastai")  # config/providers.json
DRILL_TIMEOUT = 90.0  # each wait of a drill; normally 10-20 s here


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with running_stack(tmp_path_factory.mktemp("alert-path") / "home") as stack:
        # every series the alerts read, before any fault
        wait_until("the fill rate and RTT series", lambda: stack.value("treaty_fill_rate")
                   and stack.value("treaty:rtt_ms:p95_rate5m"))
        yield stack


def ledger_entries(live: LiveStack, kind: str) -> list[dict[str, Any]]:
    ledger = Ledger.open(live.home, readonly=True)
    try:
        return [json.loads(row.payload) for row in ledger.scan(kinds=(kind,))]
    finally:
        ledger.close()


def events_of(live: LiveStack, incident_id: str) -> list[dict[str, Any]]:
    return [e["data"] for e in ledger_entries(live, "incident") if e["subject"] == incident_id]


def incidents_of(live: LiveStack, alert: str) -> list[dict[str, Any]]:
    return live.incidents(alertname=alert)


def test_outage_fires_one_incident_acked_then_resolved(live: LiveStack) -> None:
    for provider in EU_WEST_1:
        live.aurora("chaos", "outage", "--provider", provider, "--for", "3m", "--mode", "refuse")
    [incident] = wait_until("the fill-rate incident",
                            lambda: incidents_of(live, "TreatyFillRateLow"))
    assert (incident["sev"], incident["status"]) == ("SEV2", "opened")
    assert incident["treaty_id"] == "AURORA-AKASH-001" and incident["drill"] is None
    assert incident["runbook_url"] == "docs/RUNBOOK.md#treatyfillratelow"

    # Alertmanager resends the firing group every 2 s: still one incident, one ledger entry
    seen = live.webhooks_accepted()
    wait_until("two resends", lambda: live.webhooks_accepted() >= seen + 2)
    assert [i["id"] for i in incidents_of(live, "TreatyFillRateLow")] == [incident["id"]]
    assert [e["event"] for e in events_of(live, incident["id"])] == ["opened"]

    # the operator's command
    acked = live.aurora("incident", "ack", incident["id"], "--by", "alice", "--note",
                        "eu-west-1 providers down").stdout
    assert re.search(rf"{incident['id']} acknowledged by alice; response time \S+", acked)

    # recovery: the fault ends, the fill window refills, the alert clears, Alertmanager
    # sends the resolution
    live.aurora("chaos", "clear")
    [done] = wait_until("the resolution", lambda: [
        i for i in incidents_of(live, "TreatyFillRateLow") if i["status"] == "resolved"])
    assert done["id"] == incident["id"] and done["resolved_by"] == "alertmanager"
    assert done["acknowledged_by"] == "alice" and done["response_seconds"] >= 0
    assert done["sla"] == "met"
    events = events_of(live, incident["id"])
    assert [e["event"] for e in events] == ["opened", "acknowledged", "resolved"]
    assert events[1]["by"] == "alice" and events[2]["source"] == "alertmanager"
    shown = live.aurora("incident", "show", incident["id"]).stdout
    assert "ledger #" in shown and "resolved" in shown


@pytest.mark.parametrize(("alert", "sev"), [("TreatyFillRateLow", "SEV2"),
                                            ("TreatyRttP95High", "SEV3")])
def test_alert_drill(live: LiveStack, alert: str, sev: str) -> None:
    # the previous fault's alerts must have cleared (the drill refuses to start otherwise)
    wait_until(f"no open {alert} incident", lambda: not live.incidents(
        alertname=alert, open="1") or None)
    plan = drill_plan(live.home, alert)
    assert plan.expected_sev == sev and plan.alerts[0] == alert
    result = run_drill(live.home, plan, timeout=DRILL_TIMEOUT, poll=0.5)
    assert result.passed, result.failure
    assert (result.sev, result.expected_sev) == (sev, sev)
    assert result.incident_id is not None
    # the incident was a drill incident from its first ledger entry on
    opened, *rest = events_of(live, result.incident_id)
    assert opened["event"] == "opened" and opened["drill"] == result.drill_id
    assert [e["event"] for e in rest] == ["acknowledged", "resolved"]
    drills = [e for e in ledger_entries(live, "drill") if e["subject"] == result.drill_id]
    assert [d["data"]["event"] for d in drills] == ["started", "finished"]
    assert drills[0]["data"]["alerts"] == list(plan.alerts)
    assert drills[1]["data"]["passed"] is True
    durations = drills[1]["data"]["durations_seconds"]
    assert all(v is not None and v >= 0 for v in durations.values())
    # the fault is gone: no chaos event the drill created is still active
    events = json.loads(live.aurora("chaos", "list", "--json").stdout)["events"]
    assert [e for e in events if e["status"] == "active"] == []


def test_drills_are_not_major_incidents(live: LiveStack) -> None:
    report = incident_report(live.home)
    everything = live.incidents()
    drilled = [i for i in everything if i["drill"]]
    assert report.major == 1, [(i["id"], i["alertname"], i["sev"], i["drill"])
                               for i in everything]
    assert report.drills == len(drilled) >= 2
    assert {i["alertname"] for i in drilled} >= {"TreatyFillRateLow", "TreatyRttP95High"}
