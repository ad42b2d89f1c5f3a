"""The rehearsal's traffic rate: what the tenants' daily budgets carry through it. Pure."""

from __future__ import annotations

from pathlib import Path

from aurora.config import load_workloads
from aurora.home import Home
from aurora.soak.rehearsal import (
    CLOCK_HOLD_ALLOWANCE,
    DEFAULT_TRAFFIC_RATE,
    lasting_traffic_rate,
)
from aurora.traffic.plan import sustainable_rate

REPO = Path(__file__).resolve().parents[2]


def test_short_rehearsals_keep_the_default_rate() -> None:
    assert lasting_traffic_rate(1272.0, days=7, day_seconds=12.0) == DEFAULT_TRAFFIC_RATE


def test_long_rehearsals_spread_one_real_day_of_budgets_over_all_their_days() -> None:
    per_day = sustainable_rate(load_workloads(Home(REPO))) * 86400.0
    for day_seconds in (60.0, 150.0):
        rate = lasting_traffic_rate(per_day, days=7, day_seconds=day_seconds)
        assert rate < DEFAULT_TRAFFIC_RATE
        # the orders sent while the clock runs, with its holds, fit in one day's budgets
        assert rate * 7 * day_seconds * CLOCK_HOLD_ALLOWANCE <= per_day + 1e-6
    # what a fixed 3 orders/s spent: a day's budgets gone within three 150-s days
    assert per_day / DEFAULT_TRAFFIC_RATE < 3 * 150.0
