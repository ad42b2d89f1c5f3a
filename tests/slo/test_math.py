"""Pure SLO arithmetic."""

from __future__ import annotations

import math

import pytest

from aurora.durations import parse_duration
from aurora.slo import math as m
from aurora.slo.catalog import BUDGETS, BURN_WINDOWS, SLO_PERIOD


def test_compliance_needs_a_value() -> None:
    assert m.compliant(0.85, ">=", 0.85) is True
    assert m.compliant(0.849, ">=", 0.85) is False
    assert m.compliant(350.0, "<=", 350.0) is True
    assert m.compliant(350.1, "<=", 350.0) is False
    for nothing in (None, math.nan, math.inf, -math.inf):
        assert m.compliant(nothing, ">=", 0.85) is None


def test_overall_compliance_is_never_true_by_default() -> None:
    assert m.all_compliant([True, True]) is True
    assert m.all_compliant([True, None]) is False
    assert m.all_compliant([True, False]) is False
    assert m.all_compliant([]) is False


def test_ratio_without_events_is_no_data() -> None:
    assert m.ratio(98, 100) == pytest.approx(0.98)
    assert m.ratio(0, 0) is None
    assert m.ratio(None, 10) is None
    assert m.ratio(5, None) is None
    # increase() extrapolates: a part may come out a hair above the whole
    assert m.ratio(100.0000001, 100) == 1.0


def test_burn_rate_and_budget() -> None:
    assert m.error_budget(0.95) == pytest.approx(0.05)
    assert m.burn_rate(0.05, 0.95) == pytest.approx(1.0)
    assert m.burn_rate(0.84, 0.95) == pytest.approx(16.8)
    assert m.burn_rate(None, 0.95) is None
    week = parse_duration("7d")
    # spending exactly at the sustainable rate for the whole period leaves nothing
    assert m.budget_remaining(0.95, 0.95, week, week) == pytest.approx(0.0)
    # a perfect SLI leaves all of it; 72 h at burn rate 1 leaves 96 h worth (4/7)
    assert m.budget_remaining(1.0, 0.95, 72 * 3600, week) == pytest.approx(1.0)
    assert m.budget_remaining(0.95, 0.95, 72 * 3600, week) == pytest.approx(1 - 72 / 168)
    # overspending is negative, not clamped
    assert m.budget_remaining(0.5, 0.95, week, week) == pytest.approx(-9.0)
    # a window longer than the period is judged on its own budget
    assert m.budget_remaining(0.96, 0.95, 2 * week, week) == pytest.approx(0.2)
    assert m.budget_remaining(None, 0.95, week, week) is None
    with pytest.raises(ValueError):
        m.error_budget(1.0)


def test_burn_windows_spend_the_workbook_shares_of_a_7_day_budget() -> None:
    period = parse_duration(SLO_PERIOD)
    spent = [m.budget_spent_by(w.factor, parse_duration(w.long), period) for w in BURN_WINDOWS]
    assert spent == pytest.approx([0.10, 0.20, 0.40])
    # each short window is 1/12 of its long window
    assert all(parse_duration(w.long) == 12 * parse_duration(w.short) for w in BURN_WINDOWS)


def test_only_the_fill_budget_cannot_reach_the_fastest_factor() -> None:
    unreachable = {b.key for b in BUDGETS for w in BURN_WINDOWS
                   if w.factor > m.max_burn_rate(b.objective)}
    assert unreachable == {"fill"}


def test_the_two_readings_of_a_percentile() -> None:
    assert m.quantile_for(95, higher_is_better=False) == pytest.approx(0.95)
    assert m.quantile_for(95, higher_is_better=True) == 0.05
    assert m.quantile_for(50, higher_is_better=True) == 0.5
    with pytest.raises(ValueError):
        m.quantile_for(100, higher_is_better=True)
