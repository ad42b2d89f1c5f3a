"""SLOs over stretches of real time, from Prometheus, with drill windows left out.

The reporter (``aurora.slo.report``) judges one window ending at one instant; a soak needs
the same SLIs over its real time span minus the windows in which a drill injected a fault
on purpose. Each remaining segment is judged with the reporter's own queries
(``report_queries``) over exactly that segment, against the seed's objectives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aurora.drills.window import DrillWindow
from aurora.slo import math as slomath
from aurora.slo.catalog import OBJECTIVE
from aurora.slo.prometheus import QuerySource, Sample
from aurora.slo.queries import prom_duration
from aurora.slo.report import report_queries
from aurora.soak.spans import Span, subtract, total_seconds
from aurora.wire import format_rfc3339

# SLO (the reporter's key) -> the report query that measures it
SLO_QUERIES = {
    "fill_rate_p50": "fill_p50",
    "fill_rate_p95": "fill_p95_strict",
    "rtt_p50": "rtt_p50",
    "rtt_p95": "rtt_p95",
    "provenance": "provenance_avg",
    "policy_p99": "policy_p99",
}


def _value(samples: list[Sample], treaty_id: str) -> float | None:
    mine = [s for s in samples if s.labels.get("treaty_id", treaty_id) == treaty_id]
    return mine[0].value if len(mine) == 1 else None


def judge_segment(source: QuerySource, treaty_id: str, span: Span) -> dict[str, Any]:
    """Every SLO over ``span``: values, verdicts (None: no data) and the queries run."""
    start, end = span
    window = prom_duration(max(1.0, (end - start).total_seconds()))
    exprs = report_queries(treaty_id, window)
    values: dict[str, float | None] = {}
    verdicts: dict[str, bool | None] = {}
    for slo, name in SLO_QUERIES.items():
        value = slomath.finite(_value(source.query(exprs[name], end.timestamp()), treaty_id))
        objective = OBJECTIVE[slo]
        values[slo] = None if value is None else round(value, 6)
        verdicts[slo] = slomath.compliant(value, objective.op, objective.target)
    return {"start": format_rfc3339(start), "end": format_rfc3339(end), "window": window,
            "values": values, "verdicts": verdicts,
            "queries": {slo: exprs[name] for slo, name in SLO_QUERIES.items()}}


def judge_span(source: QuerySource, treaty_id: str, span: Span, holes: Sequence[Span],
               min_segment_s: float) -> tuple[list[dict[str, Any]], float]:
    """Segments of ``span`` outside ``holes`` judged one by one, and the share of the
    drill-free time they cover (pieces shorter than ``min_segment_s`` are not judged)."""
    segments = subtract(span, holes, min_segment_s)
    judged = [judge_segment(source, treaty_id, seg) for seg in segments]
    drill_free = max(total_seconds(subtract(span, holes, 0.0)), 1e-9)
    return judged, total_seconds(segments) / drill_free


def overall(segments: Sequence[dict[str, Any]]) -> dict[str, bool | None]:
    """Per SLO: False if any segment missed it, True if every segment with data met it."""
    out: dict[str, bool | None] = {}
    for slo in SLO_QUERIES:
        seen = [seg["verdicts"][slo] for seg in segments]
        known = [v for v in seen if v is not None]
        out[slo] = False if False in known else (True if known else None)
    return out


def drill_holes(windows: Sequence[DrillWindow]) -> list[Span]:
    """The spans the SLO judgement leaves out: the alert drills' windows."""
    return [w.slo_hole() for w in windows]
