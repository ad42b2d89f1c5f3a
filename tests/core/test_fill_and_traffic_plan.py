"""Sliding fill window, its distribution, and the traffic plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from aurora.bridge.fill import Distribution, FillWindow
from aurora.bridge.metrics import TreatyMetrics
from aurora.config import load_workloads
from aurora.home import Home
from aurora.traffic.plan import BudgetBook, TrafficPlan, sustainable_rate

REPO = Path(__file__).resolve().parents[2]


def test_fill_window_counts_only_recent_admitted_orders() -> None:
    window = FillWindow(window=300)
    assert window.rate(0.0) is None  # nothing admitted: no rate, not a made-up one
    for t in range(8):
        window.record(True, 100.0 + t)
    window.record(False, 110.0)
    window.record(False, 111.0)
    assert window.rate(120.0) == pytest.approx(0.8)
    assert window.rate(100.0 + 300 + 5) == pytest.approx(0.6)  # fills before 105 aged out
    assert window.rate(1_000.0) is None


def test_distribution_is_cumulative_with_inf_last() -> None:
    dist = Distribution(bounds=(0.5, 0.8, 1.0))
    for value in (0.4, 0.8, 0.81, 1.0):
        dist.observe(value)
    assert dist.cumulative() == [("0.5", 1), ("0.8", 2), ("1.0", 4), ("+Inf", 4)]
    assert dist.count == 4 and dist.total == pytest.approx(3.01)


def test_plan_is_reproducible_and_poisson_like() -> None:
    workloads = load_workloads(Home(REPO))
    a = TrafficPlan(workloads, 10.0, seed=7)
    b = TrafficPlan(workloads, 10.0, seed=7)
    first = [a.next() for _ in range(2_000)]
    assert first == [b.next() for _ in range(2_000)]
    gaps = [y.at - x.at for x, y in zip(first, first[1:], strict=False)]
    mean = sum(gaps) / len(gaps)
    assert mean == pytest.approx(0.1, rel=0.1)
    assert all(o.gpu_hours >= 0.1 for o in first)
    shares = {w.tenant: w.share for w in workloads.tenants}
    for tenant, share in shares.items():
        seen = sum(1 for o in first if o.tenant_id == tenant) / len(first)
        assert seen == pytest.approx(share, abs=0.04)


def test_budget_pacing_spreads_the_budget_over_the_day() -> None:
    workloads = load_workloads(Home(REPO))
    orion = next(w for w in workloads.tenants if w.tenant == "orion-labs")
    book = BudgetBook()
    book.add("orion-labs", "2026-11-27", 40.0)
    # at 06:00 a quarter of 90 GPU-h (+ burst) may be spent; 40 already is
    assert not book.allows(orion, "2026-11-27", 0.25, 0.1, pace=True)
    assert book.allows(orion, "2026-11-27", 0.25, 0.1, pace=False)
    assert book.allows(orion, "2026-11-27", 0.5, 0.1, pace=True)
    book.mark_exhausted("orion-labs", "2026-11-27")
    assert not book.allows(orion, "2026-11-27", 0.9, 0.1, pace=False)
    assert book.allows(orion, "2026-11-28", 0.0, 0.1, pace=True)  # a new UTC day


def test_default_workloads_fit_the_treaty() -> None:
    workloads = load_workloads(Home(REPO))
    assert sum(w.daily_budget_gpu_hours for w in workloads.tenants) <= 10_000 / 30
    assert all(w.daily_budget_gpu_hours <= 100 for w in workloads.tenants)
    assert 0 < sustainable_rate(workloads) < workloads.default_rate_per_s


def test_the_first_admitted_order_is_observed_at_once() -> None:
    """The seed's histogram_quantile(0.95, treaty_fill_rate_bucket) is NaN while every bucket
    is empty; the distribution gets its first value with the first admitted order, not one
    ``fill_bucket_every`` (1 m) later."""
    metrics = TreatyMetrics("T", fill_window_s=300)

    def inf_bucket() -> float:
        for line in generate_latest(metrics.registry).decode().splitlines():
            if line.startswith("treaty_fill_rate_bucket{") and 'le="+Inf"' in line:
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError("no +Inf bucket")

    assert inf_bucket() == 0  # nothing admitted: no fill rate, no observation
    metrics.record_fill(True)
    assert inf_bucket() == 1 and metrics.fill_distribution.total == 1.0
    metrics.record_fill(False)  # later orders wait for the periodic sample
    assert inf_bucket() == 1
    assert metrics.sample_fill_rate() == 0.5 and inf_bucket() == 2


def test_a_stop_request_ends_traffic_between_far_apart_orders(tmp_path: Path) -> None:
    """Ctrl-C on `aurora traffic` at a low rate: the run ends at once, not after the next
    arrival (here minutes away); nothing is sent, and no server is needed for that."""
    import asyncio
    import time

    from aurora.traffic.run import run_traffic
    from support import make_home

    home = Home(make_home(tmp_path / "home"))
    asked = time.monotonic() + 0.3
    stats = asyncio.run(asyncio.wait_for(run_traffic(
        home, rate=0.001, seed=1, stop=lambda: time.monotonic() > asked), timeout=60))
    assert stats.sent == 0 and stats.planned == 1
