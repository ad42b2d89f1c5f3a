"""The soak's drill window is a typed value: recorded as JSON, read back the same, and it
alone decides which incidents and which SLO time are the drill's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aurora.drills.window import DrillWindow
from aurora.soak.slo import drill_holes

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


def test_a_window_round_trips_through_its_record() -> None:
    window = DrillWindow("DRILL-1", "TreatyFillRateLow", ("TreatyFillRateLow",
                         "TreatyFillBudgetBurn"), T0, T0 + timedelta(seconds=30), 5.0, 20.0)
    assert DrillWindow.from_json(window.to_json()) == window


def test_incidents_and_slo_time_belong_to_the_drill_by_its_window() -> None:
    window = DrillWindow("D", "TreatyFillRateLow", ("TreatyFillRateLow", "TreatyFillBudgetBurn"),
                         T0, T0 + timedelta(seconds=30), settle_s=5.0, incident_settle_s=20.0)
    assert window.owns("TreatyFillBudgetBurn", T0 + timedelta(seconds=45))
    assert not window.owns("TreatyFillBudgetBurn", T0 + timedelta(seconds=51))
    assert not window.owns("TreatyRttP95High", T0 + timedelta(seconds=10))  # not its alert
    assert not window.owns("TreatyFillRateLow", T0 - timedelta(seconds=1))
    assert drill_holes([window]) == [(T0, T0 + timedelta(seconds=35))]


def test_an_older_record_without_companions_reads_as_the_drilled_alert() -> None:
    record = {"drill_id": "D", "alert": "TreatyRttP95High", "start": "2026-01-01T09:00:00Z",
              "end": "2026-01-01T09:00:30Z", "settle_s": 4}
    window = DrillWindow.from_json(record)
    assert window.alerts == ("TreatyRttP95High",) and window.incident_settle_s == 4.0
