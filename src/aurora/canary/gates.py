"""The canary's hard gates, measured by Prometheus (a thin shell around ``analysis.HardGates``).

Three measurements end a rollout at once: a ledger consistency failure over the step, the
canary's provenance coverage below 1, a firing tampering alert. A query that fails or
returns nothing is ``None``: an error, which never passes a step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aurora import metricnames as names
from aurora.canary.analysis import Decision, HardGates
from aurora.canary.plan import Measurement
from aurora.errors import AuroraError
from aurora.slo.prometheus import QuerySource

TAMPERING_ALERT = "AuroraLedgerTampering"


@dataclass(frozen=True)
class GateQuery:
    key: str
    expr: str
    threshold: float
    fails: str  # how the value fails the gate: "above" or "below" the threshold


def queries(window_s: float, track: str | None) -> tuple[GateQuery, ...]:
    """The gates' PromQL over a step of ``window_s`` seconds (``track``: the canary's label;
    ``None`` for a dry run or a replay, where no candidate serves and stable is measured)."""
    seconds = max(int(window_s), 60)  # increase() needs at least a couple of scrapes
    selector = f'{{track="{track}"}}' if track else ""
    return (
        GateQuery("consistency_failures",
                  f"sum(increase({names.total(names.LEDGER_CONSISTENCY_FAILURES)}"
                  f"[{seconds}s]))", 0.0, "above"),
        GateQuery("canary_provenance_coverage",
                  f"min({names.PROVENANCE_COVERAGE}{selector})", 1.0, "below"),
        GateQuery("tampering_alerts",
                  f'count(ALERTS{{alertname="{TAMPERING_ALERT}",alertstate="firing"}}) '
                  f"or vector(0)", 0.0, "above"),
    )


def _value(prom: QuerySource, expr: str) -> float | None:
    try:
        samples = prom.query(expr)
    except AuroraError:
        return None
    return samples[0].value if samples and samples[0].value is not None else None


def _count(value: float | None) -> int | None:
    """A counter's increase as a count: ``increase()`` extrapolates, so any rise is >= 1."""
    return None if value is None else math.ceil(value) if value > 0 else 0


def measure_gates(prom: QuerySource, *, window_s: float, track: str | None, at: str,
                  step: int, weight: int) -> tuple[HardGates, tuple[Measurement, ...]]:
    values: dict[str, float | None] = {}
    measurements = []
    for q in queries(window_s, track):
        value = _value(prom, q.expr)
        values[q.key] = value
        if value is None:
            decision = Decision.ERROR
        elif (value > q.threshold) if q.fails == "above" else (value < q.threshold):
            decision = Decision.FAIL
        else:
            decision = Decision.PASS
        measurements.append(Measurement(at, step, weight, f"gate:{q.key}", q.expr, value,
                                        q.threshold, 1 if value is not None else 0, decision,
                                        {"fails_when": q.fails}))
    consistency, tampering = values["consistency_failures"], values["tampering_alerts"]
    gates = HardGates(_count(consistency), values["canary_provenance_coverage"],
                      _count(tampering))
    return gates, tuple(measurements)
