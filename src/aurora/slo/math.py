"""SLO arithmetic, free of I/O: compliance, error budgets, burn rates, percentile readings.

``None`` stands for "no data" everywhere and propagates: a missing value is never treated
as zero or as compliant.
"""

from __future__ import annotations

import math
from typing import Literal

Comparison = Literal[">=", "<="]


def finite(value: float | None) -> float | None:
    """``value`` unless it is ``None``, NaN or infinite (Prometheus' "no answer")."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return value


def compliant(value: float | None, op: Comparison, target: float) -> bool | None:
    """Whether ``value op target`` holds; ``None`` when there is no value."""
    if finite(value) is None:
        return None
    assert value is not None
    return value >= target if op == ">=" else value <= target


def ratio(part: float | None, whole: float | None) -> float | None:
    """``part / whole``; ``None`` without data or without any event."""
    if finite(part) is None or finite(whole) is None or whole is None or whole <= 0:
        return None
    assert part is not None
    return min(max(part / whole, 0.0), 1.0)


def error_budget(objective: float) -> float:
    """The share of events allowed to be bad; ``objective`` must lie in (0, 1)."""
    if not 0 < objective < 1:
        raise ValueError(f"an objective is a share strictly between 0 and 1, not {objective}")
    return 1 - objective


def burn_rate(error_ratio: float | None, objective: float) -> float | None:
    """How many times faster than sustainable the budget is spent (1 = exactly used up)."""
    if finite(error_ratio) is None:
        return None
    assert error_ratio is not None
    return error_ratio / error_budget(objective)


def budget_remaining(sli: float | None, objective: float, window_s: float,
                     period_s: float) -> float | None:
    """Share of the SLO period's error budget left after ``window_s`` at this SLI.

    The window is taken as part of the period (a 72 h report in a 7-day soak): spending at
    burn rate b for w seconds uses b * w / period of the budget. A window at least as long as
    the period is judged on its own budget. Negative means overspent.
    """
    if finite(sli) is None:
        return None
    assert sli is not None
    burn = burn_rate(1 - sli, objective)
    assert burn is not None
    return 1 - burn * min(window_s, period_s) / period_s


def budget_spent_by(factor: float, window_s: float, period_s: float) -> float:
    """Share of the period's budget a burn rate of ``factor`` spends in ``window_s``."""
    return factor * window_s / period_s


def max_burn_rate(objective: float) -> float:
    """The fastest possible burn: every event bad."""
    return 1 / error_budget(objective)


def quantile_for(percentile: float, higher_is_better: bool) -> float:
    """The histogram quantile that reads "p<percentile>" of an SLO.

    Lower-is-better (latency) "p95 <= x": 95 % of events at or below x, quantile 0.95.
    Higher-is-better (fill rate) "p95 >= x", read strictly: the level met in 95 % of
    windows, i.e. 95 % of windows at or above x, the 0.05 quantile. The seed's literal
    ``histogram_quantile(0.95, ...)`` of a higher-is-better metric only says that the best
    5 % of windows reached x.
    """
    if not 0 < percentile < 100:
        raise ValueError(f"a percentile lies strictly between 0 and 100, not {percentile}")
    share = percentile / 100
    return round(1 - share, 10) if higher_is_better else share


def all_compliant(verdicts: list[bool | None]) -> bool:
    """Overall compliance: every verdict true; no data is not compliance."""
    return bool(verdicts) and all(v is True for v in verdicts)
