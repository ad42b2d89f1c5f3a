"""Judge one window of a canary step against the ledger and Prometheus (a thin I/O shell).

The same function serves the live rollout (``aurora canary start``), its dry run and
``aurora canary replay``: the analysis an operator rehearses on past data is the one that
gates the traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

from aurora.canary.analysis import StepJudgement, Thresholds, Verdict, judge
from aurora.canary.gates import measure_gates
from aurora.canary.measure import Window, measure_step
from aurora.canary.observe import KINDS
from aurora.canary.plan import Measurement
from aurora.ledger.ledger import Ledger
from aurora.slo.prometheus import QuerySource
from aurora.wire import rfc3339_at


@dataclass(frozen=True)
class StepResult:
    window: Window
    baseline: dict[str, float | None]
    orders: int  # rows of the window that bear on some comparison
    verdicts: tuple[Verdict, ...]
    measurements: tuple[Measurement, ...]  # comparisons, then hard gates
    judgement: StepJudgement


def judge_window(ledger: Ledger, prom: QuerySource, *, start: float, end: float,
                 weight: int, stable_from: int, step: int, baseline_s: float,
                 track: str | None, thresholds: Thresholds,
                 settle_s: float = 0.0) -> StepResult:
    """Comparisons over ``[start + settle_s, end)`` with latency thresholds from the
    ``baseline_s`` before ``start``; hard gates from Prometheus over all of ``[start, end)``."""
    window = Window(rfc3339_at(min(start + settle_s, end)), rfc3339_at(end))
    first = rfc3339_at(start - baseline_s)
    rows = [r for r in ledger.scan(kinds=KINDS, since_ts=first) if r.ts < window.end]
    base, compared = measure_step(rows, step_start=rfc3339_at(start), judged_from=window.start,
                                  end=window.end, weight=weight, stable_from=stable_from,
                                  step=step, thresholds=thresholds)
    gates, gate_measurements = measure_gates(prom, window_s=end - start, track=track,
                                             at=window.end, step=step, weight=weight)
    return StepResult(window, base, sum(window.holds(r.ts) for r in rows), compared.verdicts,
                      compared.measurements + gate_measurements,
                      judge(gates, compared.verdicts))
