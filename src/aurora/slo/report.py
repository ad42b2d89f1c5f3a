"""The SLO report: every SLO over a window, from Prometheus, as one JSON document.

``build_report(source, treaty_id=..., window="72h", at=..., prometheus_url=...)`` runs the
queries of :func:`report_queries` at one evaluation time ``at`` through any
:class:`~aurora.slo.prometheus.QuerySource` (the HTTP client, or recorded answers in tests)
and assembles the report. Every value is computed over the window (``*_over_time``,
``increase``, ``rate`` over ``[window]``), never cumulatively since an exporter started —
except the seed's literal queries, which are reported next to the windowed values as the
seed wrote them.

Missing data is ``null`` and "insufficient data"; the report is then not compliant.

Each SLO also carries its series over the window (``series``: one point per
``window / SERIES_POINTS``, each the SLI over the step before it, from one range query), the
alert threshold the seed set for it and its error budget's key: the charts of the PDF
(:mod:`aurora.docket`) are drawn from these values in the signed document, never re-queried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from aurora import metricnames as names
from aurora.canonical import canonical_json
from aurora.durations import parse_duration
from aurora.errors import AuroraError
from aurora.slo import math as slomath
from aurora.slo import queries as q
from aurora.slo.catalog import (
    BUDGET,
    OBJECTIVE,
    OBJECTIVE_ALERT,
    OBJECTIVE_BUDGET,
    POLICY_GOOD_MS,
    RTT_GOOD_MS,
    SEED_ALERTS,
    SLO_PERIOD,
    BudgetKey,
    Objective,
)
from aurora.slo.prometheus import RangeSeries, RangeSource, Sample
from aurora.wire import format_rfc3339

if TYPE_CHECKING:
    from aurora.gpg import Published

REPORT_KIND = "aurora-slo-report"
REPORT_VERSION = 2  # 2: series, alert and error_budget per SLO; budget spent
INSUFFICIENT = "insufficient data"
SERIES_POINTS = 96  # points per chart: 45 min each over 72 h
SERIES_MIN_RANGE_S = 4.0  # a rate needs a few scrapes (the rehearsal scrapes every second)


@dataclass(frozen=True)
class Window:
    text: str  # as the operator wrote it, e.g. "72h"
    seconds: float
    promql: str  # as it appears in the queries

    @classmethod
    def parse(cls, text: str) -> Window:
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise AuroraError(f"--window: {exc}", exit_code=2) from None
        if seconds < 60:
            raise AuroraError(f"--window {text}: a report window is at least 1m", exit_code=2)
        promql = text if q.is_prom_duration(text) else q.prom_duration(seconds)
        return cls(text, seconds, promql)


def report_queries(treaty_id: str, window: str) -> dict[str, str]:
    """Name → PromQL of every query the report runs, for one treaty over ``window``."""
    w, t = window, treaty_id
    return {
        "fill_p50": q.fill_p50(w, t),
        "fill_p95_strict": q.fill_p95_strict(w, t),
        "fill_p95_literal": q.fill_p95_literal(w, t),
        "fill_p95_seed": q.SEED_FILL_P95,
        "fill_windows": q.fill_windows(w, t),
        "rtt_p50": q.rtt_quantile(0.5, w, t),
        "rtt_p95": q.rtt_quantile(0.95, w, t),
        "rtt_p95_seed": q.SEED_RTT_P95,
        "rtt_good": q.histogram_good(names.RTT_MS, RTT_GOOD_MS, w, t),
        "rtt_total": q.histogram_count(names.RTT_MS, w, t),
        "provenance_avg": q.over_time("avg", names.PROVENANCE_COVERAGE, w, t),
        "provenance_min": q.over_time("min", names.PROVENANCE_COVERAGE, w, t),
        "provenance_samples": q.over_time("count", names.PROVENANCE_COVERAGE, w, t),
        "provenance_seed": q.SEED_PROVENANCE,
        "policy_p99": q.policy_p99(w, t),
        "policy_p99_seed": q.SEED_POLICY_P99,
        "policy_good": q.histogram_good(names.POLICY_DECISION_MS, POLICY_GOOD_MS, w, t),
        "policy_total": q.histogram_count(names.POLICY_DECISION_MS, w, t),
        "requests_by_outcome": q.requests_by_outcome(w, t),
        "drops_by_reason": q.drops_by_reason(w, t),
        "scrapes": q.over_time("count", "up", w, t),
        "up_ratio": q.over_time("avg", "up", w, t),
    }


def series_queries(treaty_id: str, range_: str) -> dict[str, str]:
    """SLO key → PromQL of its SLI over ``range_`` (a chart point), for one treaty."""
    t = treaty_id
    return {
        "fill_rate_p50": q.fill_p50(range_, t),
        "fill_rate_p95": q.fill_p95_strict(range_, t),
        "rtt_p50": q.rtt_quantile(0.5, range_, t),
        "rtt_p95": q.rtt_quantile(0.95, range_, t),
        "provenance": q.over_time("avg", names.PROVENANCE_COVERAGE, range_, t),
        "policy_p99": q.policy_p99(range_, t),
    }


@dataclass(frozen=True)
class SeriesPlan:
    """The range queries of a report: ``start`` .. ``end`` every ``step`` seconds."""

    start: float
    end: float
    step: float
    range: str  # each point's PromQL range

    @classmethod
    def of(cls, window: Window, at: datetime) -> SeriesPlan:
        step = window.seconds / SERIES_POINTS
        end = at.timestamp()
        return cls(end - window.seconds + step, end, step,
                   q.prom_duration(max(step, SERIES_MIN_RANGE_S)))


def _treaty_series(series: list[RangeSeries], treaty_id: str
                   ) -> list[tuple[float, float | None]]:
    mine = [s for s in series if s.labels.get("treaty_id", treaty_id) == treaty_id]
    return mine[0].points if len(mine) == 1 else []


def _series_entry(query: str, plan: SeriesPlan, points: list[tuple[float, float | None]]
                  ) -> dict[str, Any]:
    return {
        "query": query,
        "start": format_rfc3339(datetime.fromtimestamp(plan.start, UTC)),
        "end": format_rfc3339(datetime.fromtimestamp(plan.end, UTC)),
        "step_seconds": round(plan.step, 3),
        "range": plan.range,
        "points": [[round(t, 3), _round(v)] for t, v in points],
        "points_with_data": sum(1 for _, v in points if slomath.finite(v) is not None),
    }


def alert_entry(slo: str) -> dict[str, Any] | None:
    name = OBJECTIVE_ALERT.get(slo)
    alert = next((a for a in SEED_ALERTS if a.name == name), None)
    if alert is None:
        return None
    return {"name": alert.name, "op": alert.op, "threshold": alert.threshold,
            "hold": alert.hold, "severity": alert.severity}


def _treaty_value(samples: list[Sample], treaty_id: str) -> float | None:
    """The value of the treaty's series (an unlabelled result counts as the treaty's)."""
    mine = [s for s in samples if s.labels.get("treaty_id", treaty_id) == treaty_id]
    return mine[0].value if len(mine) == 1 else None


def _by_label(samples: list[Sample], label: str, treaty_id: str) -> dict[str, float]:
    return {s.labels.get(label, ""): _round(s.value) or 0.0 for s in samples
            if s.labels.get("treaty_id", treaty_id) == treaty_id and s.value is not None}


def _round(value: float | None) -> float | None:
    value = slomath.finite(value)
    return None if value is None else round(value, 6)


def _status(verdict: bool | None) -> str:
    return INSUFFICIENT if verdict is None else ("met" if verdict else "not met")


def _slo_entry(objective: Objective, query: str, value: float | None,
               samples: float | None, **extra: Any) -> dict[str, Any]:
    verdict = slomath.compliant(value, objective.op, objective.target)
    return {
        "title": objective.title,
        "objective": {"op": objective.op, "target": objective.target, "unit": objective.unit},
        "query": query,
        "value": _round(value),
        "compliant": verdict,
        "status": _status(verdict),
        "samples": _round(samples),
        **extra,
    }


def _budget_entry(key: BudgetKey, sli: float | None, good: float | None, total: float | None,
                  queries: dict[str, str], window: Window) -> dict[str, Any]:
    budget = BUDGET[key]
    error_ratio = None if sli is None else 1 - sli
    remaining = _round(slomath.budget_remaining(sli, budget.objective, window.seconds,
                                                parse_duration(SLO_PERIOD)))
    return {
        "title": budget.title,
        "sli": f"{budget.good} / {budget.total}",
        "objective": budget.objective,
        "period": SLO_PERIOD,
        "good": _round(good),
        "total": _round(total),
        "value": _round(sli),
        "error_ratio": _round(error_ratio),
        "burn_rate": _round(slomath.burn_rate(error_ratio, budget.objective)),
        "remaining": remaining,
        "spent": None if remaining is None else _round(1 - remaining),
        "queries": queries,
    }


def build_report(source: RangeSource, *, treaty_id: str, window: str, at: datetime,
                 prometheus_url: str) -> dict[str, Any]:
    """Query ``source`` at ``at`` and assemble the report (see the module docstring)."""
    win = Window.parse(window)
    exprs = report_queries(treaty_id, win.promql)
    stamp = at.timestamp()
    raw = {name: source.query(expr, stamp) for name, expr in exprs.items()}
    val = {name: _treaty_value(samples, treaty_id) for name, samples in raw.items()}
    plan = SeriesPlan.of(win, at)
    charts = {slo: _series_entry(expr, plan, _treaty_series(
                  source.query_range(expr, plan.start, plan.end, plan.step), treaty_id))
              for slo, expr in series_queries(treaty_id, plan.range).items()}

    outcomes = _by_label(raw["requests_by_outcome"], "outcome", treaty_id)
    have_requests = bool(raw["requests_by_outcome"])
    filled = outcomes.get("filled", 0.0) if have_requests else None
    dropped = outcomes.get("dropped", 0.0) if have_requests else None
    admitted = None if filled is None or dropped is None else filled + dropped

    seed_note = "the seed's literal query: cumulative since the exporter started"
    slos = {
        "fill_rate_p50": _slo_entry(OBJECTIVE["fill_rate_p50"], exprs["fill_p50"],
                                    val["fill_p50"], val["fill_windows"]),
        "fill_rate_p95": _slo_entry(
            OBJECTIVE["fill_rate_p95"], exprs["fill_p95_strict"], val["fill_p95_strict"],
            val["fill_windows"],
            reading=f"strict: the fill rate met in 95 % of windows (quantile {q.FILL_STRICT_Q})",
            literal={"query": exprs["fill_p95_literal"], "value": _round(val["fill_p95_literal"]),
                     "reading": "quantile 0.95 over the window: the best 5 % of windows"},
            seed={"query": exprs["fill_p95_seed"], "value": _round(val["fill_p95_seed"]),
                  "reading": seed_note},
        ),
        "rtt_p50": _slo_entry(OBJECTIVE["rtt_p50"], exprs["rtt_p50"], val["rtt_p50"],
                              val["rtt_total"]),
        "rtt_p95": _slo_entry(OBJECTIVE["rtt_p95"], exprs["rtt_p95"], val["rtt_p95"],
                              val["rtt_total"],
                              seed={"query": exprs["rtt_p95_seed"],
                                    "value": _round(val["rtt_p95_seed"]), "reading": seed_note}),
        "provenance": _slo_entry(
            OBJECTIVE["provenance"], exprs["provenance_avg"], val["provenance_avg"],
            val["provenance_samples"],
            minimum={"query": exprs["provenance_min"], "value": _round(val["provenance_min"])},
            seed={"query": exprs["provenance_seed"], "value": _round(val["provenance_seed"]),
                  "reading": "the seed's literal query: the value at the report's time"},
        ),
        "policy_p99": _slo_entry(OBJECTIVE["policy_p99"], exprs["policy_p99"], val["policy_p99"],
                                 val["policy_total"],
                                 seed={"query": exprs["policy_p99_seed"],
                                       "value": _round(val["policy_p99_seed"]),
                                       "reading": seed_note}),
    }
    budgets = {
        "fill": _budget_entry("fill", slomath.ratio(filled, admitted), filled, admitted,
                              {"good_and_total": exprs["requests_by_outcome"]}, win),
        "rtt": _budget_entry("rtt", slomath.ratio(val["rtt_good"], val["rtt_total"]),
                             val["rtt_good"], val["rtt_total"],
                             {"good": exprs["rtt_good"], "total": exprs["rtt_total"]}, win),
        "policy": _budget_entry("policy", slomath.ratio(val["policy_good"], val["policy_total"]),
                                val["policy_good"], val["policy_total"],
                                {"good": exprs["policy_good"], "total": exprs["policy_total"]},
                                win),
        "provenance": _budget_entry("provenance", slomath.finite(val["provenance_avg"]), None,
                                    None, {"value": exprs["provenance_avg"]}, win),
    }
    for slo, entry in slos.items():
        entry.update(series=charts[slo], alert=alert_entry(slo),
                     error_budget=OBJECTIVE_BUDGET[slo])
    verdicts = [entry["compliant"] for entry in slos.values()]
    overall = slomath.all_compliant(verdicts)
    status = ("compliant" if overall
              else "not compliant" if any(v is False for v in verdicts) else INSUFFICIENT)
    met = sum(1 for v in verdicts if v is True)
    return {
        "report": REPORT_KIND,
        "version": REPORT_VERSION,
        "treaty_id": treaty_id,
        "window": win.text,
        "window_seconds": win.seconds,
        "generated_at": format_rfc3339(at),
        "prometheus": prometheus_url,
        "slos": slos,
        "drop_rate": {
            "value": _round(slomath.ratio(dropped, admitted)),
            "dropped": _round(dropped),
            "admitted": _round(admitted),
            "by_reason": _by_label(raw["drops_by_reason"], "reason", treaty_id),
            "queries": {"dropped_and_admitted": exprs["requests_by_outcome"],
                        "by_reason": exprs["drops_by_reason"]},
        },
        "error_budgets": budgets,
        "samples": {
            "orders_by_outcome": outcomes,
            "admitted_orders": _round(admitted),
            "rtt_observations": _round(val["rtt_total"]),
            "policy_decisions": _round(val["policy_total"]),
            "fill_windows": _round(val["fill_windows"]),
            "provenance_samples": _round(val["provenance_samples"]),
            "scrapes": _round(val["scrapes"]),
            "target_up_ratio": _round(val["up_ratio"]),
        },
        "compliant": overall,
        "status": status,
        "summary": f"{treaty_id} over {win.text}: {status} ({met}/{len(verdicts)} SLOs met)",
    }


def report_bytes(report: dict[str, Any]) -> bytes:
    """The report file's content: canonical JSON, like everything Aurora signs."""
    return canonical_json(report)


def write_report(report: dict[str, Any], path: Path, key: str | None = None, *,
                 gnupghome: Path | None = None) -> Published:
    """Write the report with its ``.sha256`` and, with a key, its ``.asc``, durably; the
    previous report's signature never survives beside the new content."""
    from aurora.gpg import publish

    return publish(path, report_bytes(report), key, gnupghome=gnupghome)


def _show(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if unit == "ms" and value >= 10 else (
        f"{value:.2f} ms" if unit == "ms" else f"{value:.4f}")


def summary_table(report: dict[str, Any]) -> Table:
    """The human summary of a report (the CLI prints it)."""
    table = Table(title=report["summary"], title_justify="left")
    for column in ("SLO", "objective", "value", "status", "samples"):
        table.add_column(column)
    marks = {"met": "[green]met[/]", "not met": "[red]NOT MET[/]",
             INSUFFICIENT: "[yellow]insufficient data[/]"}
    for entry in report["slos"].values():
        objective = entry["objective"]
        table.add_row(entry["title"],
                      f"{objective['op']} {_show(objective['target'], objective['unit'])}",
                      _show(entry["value"], objective["unit"]), marks[entry["status"]],
                      "—" if entry["samples"] is None else f"{entry['samples']:.0f}")
    drop = report["drop_rate"]["value"]
    table.caption = ("drop rate " + ("—" if drop is None else f"{drop:.2%}") + "; budget left: "
                     + ", ".join(f"{k} " + ("—" if b["remaining"] is None
                                            else f"{b['remaining']:.0%}")
                                 for k, b in report["error_budgets"].items()))
    return table


def evaluation_time(text: str | None) -> datetime:
    """``--at`` (RFC 3339) or now, to the whole second."""
    from aurora.wire import parse_rfc3339

    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise AuroraError(f"--at {text!r}: {exc}", exit_code=2) from None
