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


# Fewer orders than this in a segment and its quantiles are the word of one or two orders
# (a p95 over 19 orders is the slowest one): the segment is "insufficient data", not a
# verdict. This is what keeps the first check, seconds after the stack started, from
# calling a handful of warm-up orders a breach.
MIN_ORDERS = 20
ORDERS_QUERY = "policy_total"  # policy decisions in the window: every order that was judged


def judge_segment(source: QuerySource, treaty_id: str, span: Span) -> dict[str, Any]:
    """Every SLO over ``span``: values, verdicts (None: no data), the orders decided in it
    (``insufficient`` names why no verdict is given) and the queries run."""
    start, end = span
    window = prom_duration(max(1.0, (end - start).total_seconds()))
    exprs = report_queries(treaty_id, window)
    orders = slomath.finite(_value(source.query(exprs[ORDERS_QUERY], end.timestamp()),
                                   treaty_id))
    enough = orders is not None and orders >= MIN_ORDERS
    values: dict[str, float | None] = {}
    verdicts: dict[str, bool | None] = {}
    for slo, name in SLO_QUERIES.items():
        value = slomath.finite(_value(source.query(exprs[name], end.timestamp()), treaty_id))
        objective = OBJECTIVE[slo]
        values[slo] = None if value is None else round(value, 6)
        verdicts[slo] = slomath.compliant(value, objective.op, objective.target) \
            if enough else None
    return {"start": format_rfc3339(start), "end": format_rfc3339(end), "window": window,
            "seconds": round((end - start).total_seconds(), 3),
            "orders": None if orders is None else round(orders, 1),
            "insufficient": None if enough else
            f"insufficient data: {0 if orders is None else round(orders)} order(s) decided, "
            f"fewer than {MIN_ORDERS}",
            "values": values, "verdicts": verdicts,
            "queries": {slo: exprs[name] for slo, name in [*SLO_QUERIES.items(),
                                                             ("orders", ORDERS_QUERY)]}}


def drill_free_seconds(span: Span, holes: Sequence[Span]) -> float:
    return total_seconds(subtract(span, holes, 0.0))


def judge_span(source: QuerySource, treaty_id: str, span: Span, holes: Sequence[Span],
               min_segment_s: float) -> tuple[list[dict[str, Any]], float]:
    """Segments of ``span`` outside ``holes`` judged one by one, and the share of the
    drill-free time they cover (pieces shorter than ``min_segment_s`` are not judged)."""
    segments = subtract(span, holes, min_segment_s)
    judged = [judge_segment(source, treaty_id, seg) for seg in segments]
    return judged, total_seconds(segments) / max(drill_free_seconds(span, holes), 1e-9)


def judged_seconds(segments: Sequence[dict[str, Any]]) -> float:
    """Seconds of ``segments`` that hold enough orders for a verdict."""
    return sum(float(seg.get("seconds", 0.0)) for seg in segments if not seg.get("insufficient"))


def overall(segments: Sequence[dict[str, Any]]) -> dict[str, bool | None]:
    """Per SLO: False if any segment missed it, True if every segment with data met it
    (segments with too few orders have no verdicts)."""
    out: dict[str, bool | None] = {}
    for slo in SLO_QUERIES:
        seen = [seg["verdicts"][slo] for seg in segments]
        known = [v for v in seen if v is not None]
        out[slo] = False if False in known else (True if known else None)
    return out


def drill_holes(windows: Sequence[DrillWindow]) -> list[Span]:
    """The spans the SLO judgement leaves out: the alert drills' windows."""
    return [w.slo_hole() for w in windows]
