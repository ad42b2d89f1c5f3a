"""The Prometheus rule files, from :mod:`aurora.slo.catalog` and :mod:`aurora.slo.queries`:
the SLO quantile records, the seed's and Aurora's threshold alerts, and the error-ratio
records with their multiwindow burn-rate alerts (written by :mod:`aurora.slo.artifacts`).
"""

from __future__ import annotations

from typing import Any

from aurora.durations import parse_duration
from aurora.slo import queries as q
from aurora.slo.catalog import (
    BUDGETS,
    BURN_WINDOWS,
    CANARY_ALERTS,
    INTEGRITY_ALERTS,
    MIN_EVENTS_IN_LONG_WINDOW,
    NO_TRAFFIC_HOLD,
    NO_TRAFFIC_WINDOW,
    SEED_ALERTS,
    SLO_PERIOD,
    TARGET_DOWN_HOLD,
    BudgetSLO,
    BurnWindow,
    ThresholdAlert,
    runbook_url,
)


def _threshold_expr(alert: ThresholdAlert) -> str:
    return f"{q.ALERT_SIGNALS[alert.signal_key]} {alert.op} {number(alert.threshold)}"

def number(value: float) -> str:
    """A threshold as PromQL writes it (0.75, 400)."""
    return str(int(value)) if float(value).is_integer() else repr(value)

def _alert(name: str, expr: str, hold: str | None, labels: dict[str, str], summary: str,
           description: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if hold:
        rule["for"] = hold
    rule["labels"] = labels
    rule["annotations"] = {"summary": summary, "description": description,
                           "runbook_url": runbook_url(name)}
    return rule

def recording_rules() -> dict[str, Any]:
    return {"groups": [{
        "name": "aurora-slo-quantiles",
        "rules": [{"record": name, "expr": expr} for name, expr in q.QUANTILE_RECORDS.items()],
    }, {
        "name": "aurora-slo-per-track",
        "rules": [{"record": name, "expr": expr} for name, expr in q.TRACK_RECORDS.items()],
    }]}

def alert_rules() -> dict[str, Any]:
    def threshold_rules(alerts: tuple[ThresholdAlert, ...]) -> list[dict[str, Any]]:
        return [_alert(a.name, _threshold_expr(a), a.hold,
                       {"severity": a.severity, "slo": a.slo}, a.summary, a.description)
                for a in alerts]

    seed = threshold_rules(SEED_ALERTS)
    availability = [
        _alert("TreatyNoTraffic", q.NO_TRAFFIC, NO_TRAFFIC_HOLD,
               {"severity": "warning", "slo": "traffic"},
               "No admitted orders for {{ $labels.treaty_id }} while its exporter is up",
               "The bridge's exporter answers but no order was filled or dropped in the last "
               f"{NO_TRAFFIC_WINDOW}: tenants cannot reach the bridge, every order is "
               "refused before admission, or the traffic generator stopped."),
        _alert("AuroraTargetDown", q.TARGET_DOWN, TARGET_DOWN_HOLD,
               {"severity": "warning", "slo": "observability"},
               "Prometheus cannot scrape {{ $labels.job }} ({{ $labels.instance }})",
               "The target has been down for 5 minutes: its SLO series stop and their alerts "
               "go silent."),
    ]
    return {"groups": [
        {"name": "aurora-seed-alerts", "rules": seed},
        {"name": "aurora-availability", "rules": availability},
        # SEV1: the record at risk; and the incident process itself failing
        {"name": "aurora-integrity", "rules": threshold_rules(INTEGRITY_ALERTS)},
        {"name": "aurora-canary", "rules": threshold_rules(CANARY_ALERTS)},
    ]}

def burn_threshold(budget: BudgetSLO, window: BurnWindow) -> tuple[str, bool]:
    """PromQL for the error-ratio threshold and whether it had to be capped at 100 %.

    An error ratio cannot exceed 1: with a large budget (fill: 15 %) a factor times the
    budget may; then the alert asks for every event in both windows to be bad.
    """
    error_budget = budget.error_budget
    if window.factor * error_budget >= 1:
        return "1", True
    return f"({number(window.factor)} * {number(error_budget)})", False

def _burn_alert(budget: BudgetSLO, window: BurnWindow) -> dict[str, Any]:
    threshold, capped = burn_threshold(budget, window)
    op = ">=" if capped else ">"
    long_ratio = q.error_ratio_record(budget.key, window.long)
    short_ratio = q.error_ratio_record(budget.key, window.short)
    # counted in the window itself, not as a rate times its nominal length: on a compressed
    # clock (aurora.slo.promconfig) a "6h" range holds seconds of traffic, and a ratio of
    # three orders must not page there either
    guard = f"{q.events_record(budget.key, window.long)} >= {MIN_EVENTS_IN_LONG_WINDOW}"
    expr = (f"(\n  {long_ratio} {op} {threshold}\n  and on (treaty_id)\n"
            f"  {short_ratio} {op} {threshold}\n)\nand on (treaty_id)\n{guard}")
    error_budget = budget.error_budget
    burn = 1 / error_budget if capped else window.factor
    spent = burn * parse_duration(window.long) / parse_duration(SLO_PERIOD)
    how = (f"every event bad ({number(window.factor)}x exceeds the largest possible burn "
           f"rate, 1/{number(error_budget)} = {burn:.1f}x)" if capped
           else f"burn rate above {number(window.factor)}x")
    return _alert(
        budget.alert,
        expr,
        None,
        {"severity": window.severity, "slo": budget.key, "long_window": window.long,
         "short_window": window.short, "action": window.action},
        f"{budget.title} error budget burning on {{{{ $labels.treaty_id }}}} "
        f"({window.long}/{window.short}, {window.action})",
        f"{{{{ $value | humanizePercentage }}}} of events bad over {window.long}, and over "
        f"{window.short} too: {how}, objective {number(budget.objective)}; at this pace "
        f"{spent:.0%} of the 7-day budget goes in {window.long}. "
        f"SLI: {budget.good} / {budget.total}; at least {MIN_EVENTS_IN_LONG_WINDOW} events "
        f"in {window.long}.",
    )

def burn_windows() -> list[str]:
    """Every window a burn-rate alert reads, shortest first."""
    return sorted({w for bw in BURN_WINDOWS for w in (bw.long, bw.short)}, key=parse_duration)

def burn_rate_rules() -> dict[str, Any]:
    groups = []
    for budget in BUDGETS:
        rules: list[dict[str, Any]] = [
            {"record": q.error_ratio_record(budget.key, w), "expr": q.error_ratio(budget.key, w)}
            for w in burn_windows()
        ]
        rules += [
            {"record": q.events_record(budget.key, bw.long),
             "expr": q.events_in(budget.key, bw.long)}
            for bw in BURN_WINDOWS
        ]
        # alerts after the records of the same group: they see this evaluation's values
        rules += [_burn_alert(budget, bw) for bw in BURN_WINDOWS]
        groups.append({"name": f"aurora-slo-budget-{budget.key}", "rules": rules})
    return {"groups": groups}

