"""Alert drills without a live stack: the fault behind each alert, the drill window, and the
receiver tagging the incidents a running drill causes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aurora.config import load_providers, load_tenants, load_workloads
from aurora.home import Home
from aurora.incidents import drillwindow
from aurora.incidents.drill import DrillError, drill_plan
from aurora.incidents.drillfaults import (
    DRILLABLE,
    RTT_SPIKE_FACTOR,
    DrillPlanError,
    drill_region,
    fault_events,
)
from aurora.incidents.service import IncidentStore
from aurora.incidents.webhook import parse_webhook
from aurora.routing import Offer, eligible
from aurora.treaty import load_treaty

from .conftest import FakeClock, alert, body, notification

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


# --- the drill window (pure) ------------------------------------------------------------------

def started(drill_id: str, alert: str, *companions: str, minutes: int = 10) -> tuple[str, dict]:
    return drill_id, drillwindow.started_data(drill_id, alert, companions, started_at=T0,
                                              expires_at=T0 + timedelta(minutes=minutes))


def test_a_drill_is_active_from_started_to_finished_or_expiry() -> None:
    entries = [started("DRILL-1", "TreatyFillRateLow", "TreatyFillBudgetBurn")]
    [active] = drillwindow.active_drills(entries, T0 + timedelta(minutes=1))
    assert active.alerts == {"TreatyFillRateLow", "TreatyFillBudgetBurn"}
    assert drillwindow.active_drills(entries, T0 - timedelta(seconds=1)) == []
    assert drillwindow.active_drills(entries, T0 + timedelta(minutes=11)) == []  # expired
    done = [*entries, ("DRILL-1", drillwindow.finished_data("DRILL-1", {"passed": True}))]
    assert drillwindow.active_drills(done, T0 + timedelta(minutes=1)) == []


def test_other_drills_and_malformed_entries_are_ignored() -> None:
    entries = [("RESTORE-1", {"drill": "restore", "event": "started"}),
               ("DRILL-2", {"drill": "alert", "event": "started", "alert": "X"}),  # no times
               ("DRILL-3", {"drill": "alert", "event": "started", "alert": "X",
                            "started_at": "yesterday", "expires_at": "tomorrow"}),
               started("DRILL-4", "TreatyRttP95High")]
    assert [d.drill_id for d in drillwindow.active_drills(entries, T0)] == ["DRILL-4"]


def test_owning_drill_is_the_latest_covering_the_alert() -> None:
    first = started("DRILL-1", "TreatyFillRateLow")
    later = ("DRILL-2", drillwindow.started_data(
        "DRILL-2", "TreatyFillRateLow", (), started_at=T0 + timedelta(minutes=1),
        expires_at=T0 + timedelta(minutes=9)))
    drills = drillwindow.active_drills([first, later], T0 + timedelta(minutes=2))
    assert drillwindow.owning_drill("TreatyFillRateLow", drills) == "DRILL-2"
    assert drillwindow.owning_drill("TreatyProvenanceLow", drills) is None


def test_a_drill_window_is_bounded() -> None:
    with pytest.raises(ValueError, match="a drill lasts"):
        drillwindow.started_data("D", "A", (), started_at=T0,
                                 expires_at=T0 + drillwindow.MAX_DRILL + timedelta(seconds=1))
    with pytest.raises(ValueError, match="a drill lasts"):
        drillwindow.started_data("D", "A", (), started_at=T0, expires_at=T0)


# --- the faults (pure, against the project's configuration) -------------------------------------

@pytest.fixture(scope="module")
def project() -> Home:
    from pathlib import Path

    return Home(Path(__file__).resolve().parents[2])


def test_fill_rate_drill_takes_down_the_treaty_region_with_fewest_providers(project: Home
                                                                             ) -> None:
    providers = load_providers(project).providers
    assert load_treaty(project).regions == ["eu-west-1", "us-west-2"]
    region = drill_region(providers, load_treaty(project).regions)
    assert region == "eu-west-1"
    events = fault_events(DRILLABLE["TreatyFillRateLow"], providers, region=region,
                          duration="30m")
    assert {e["provider"] for e in events} == {"akash", "render", "flux", "aethir", "vastai"}
    assert all(e["type"] == "outage" and e["mode"] == "refuse" and e["for"] == "30m"
               for e in events)
    # the other region keeps a provider, so only the drilled region's orders drop
    survivors = [p for p in providers if p.id not in {e["provider"] for e in events}]
    assert any("us-west-2" in p.regions for p in survivors)
    with pytest.raises(DrillPlanError, match="no provider serves"):
        fault_events(DRILLABLE["TreatyFillRateLow"], providers, region="mars-north-1",
                     duration="1m")


def test_latency_drill_spikes_every_provider_but_drops_no_order(project: Home) -> None:
    providers = load_providers(project).providers
    events = fault_events(DRILLABLE["TreatyRttP95High"], providers, region="eu-west-1",
                          duration="30m")
    assert sorted(e["provider"] for e in events) == sorted(p.id for p in providers)
    assert {(e["type"], e["factor"]) for e in events} == {("latency_spike", RTT_SPIKE_FACTOR)}
    # under the spike every tenant still has a provider in every region it orders in: the
    # router's latency ceilings (orion-labs 320 ms) must not turn the drill into drops
    prefs = {t.id: t.routing for t in load_tenants(project)}
    offers = [Offer(p.id, True, tuple(p.regions), tuple(p.gpu_types),
                    p.price_usd_per_gpu_hour, p.base_latency_ms * RTT_SPIKE_FACTOR,
                    p.capacity_gpu_hours, p.reputation) for p in providers]
    for workload in load_workloads(project).tenants:
        for region in workload.regions:
            fits = [o.id for o in offers
                    if eligible(o, region, 0.1, prefs[workload.tenant]) is not None]
            assert fits, f"{workload.tenant} in {region}: no provider under its ceilings"


def test_drill_plans(home) -> None:  # type: ignore[no-untyped-def]
    fill = drill_plan(Home(home), "TreatyFillRateLow")
    assert (fill.expected_sev, fill.alerts) == ("SEV2",
                                               ("TreatyFillRateLow", "TreatyFillBudgetBurn"))
    assert "eu-west-1" in fill.summary
    rtt = drill_plan(Home(home), "TreatyRttP95High")
    assert (rtt.expected_sev, rtt.alerts) == ("SEV3", ("TreatyRttP95High", "TreatyRttBudgetBurn"))
    with pytest.raises(DrillError, match="drillable alerts are TreatyFillRateLow, "
                                         "TreatyRttP95High"):
        drill_plan(Home(home), "TreatyProvenanceCritical")


# --- the receiver tags what a running drill causes ----------------------------------------------

def fill_rate_notification(fingerprint: str = "0123456789abcdef", **labels: str) -> bytes:
    return body(notification(alert("TreatyFillRateLow", fingerprint=fingerprint,
                                   severity="critical", **labels)))


def test_incidents_opened_during_a_drill_are_drill_incidents(store: IncidentStore,
                                                             clock: FakeClock) -> None:
    drill_id = "DRILL-20261125T090000Z"
    store.record("drill", subject=drill_id, data=drillwindow.started_data(
        drill_id, "TreatyFillRateLow", ("TreatyFillBudgetBurn",), started_at=clock.now,
        expires_at=clock.now + timedelta(minutes=30)))
    clock.advance(minutes=1)
    [tagged] = store.ingest(parse_webhook(fill_rate_notification())).opened
    burn = notification(alert("TreatyFillBudgetBurn", severity="critical",
                              fingerprint="1111111111111111"))
    [companion] = store.ingest(parse_webhook(body(burn))).opened
    other = notification(alert("TreatyProvenanceLow", severity="critical",
                               fingerprint="2222222222222222"))
    [real] = store.ingest(parse_webhook(body(other))).opened
    assert store.get(tagged).drill == store.get(companion).drill == drill_id
    assert store.get(real).drill is None  # a real incident during a drill stays real
    report = store.report()
    assert report.drills == 2 and report.major == 1
    # after the drill: incidents are real again
    store.record("drill", subject=drill_id,
                 data=drillwindow.finished_data(drill_id, {"passed": True}))
    store.resolve(tagged, by="alice", note="drill over")
    clock.advance(minutes=1)
    later = notification(alert("TreatyFillRateLow", severity="critical",
                               starts_at="2026-11-25T09:10:00Z"))
    [after] = store.ingest(parse_webhook(body(later))).opened
    assert store.get(after).drill is None
