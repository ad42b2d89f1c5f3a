"""One measurement pass of a canary step, from the ledger's order rows (pure, no I/O).

A step is judged on the orders of its own window: the canary's tenants (buckets below the
weight) against the matched stable slice (``plan.stable_slice``). The two latency
comparisons count an order as bad when it is slower than *stable's* quantile over the window
before the step (``baseline``): that threshold is fixed before the step's first order, so
a slow canary cannot move its own yardstick. Every comparison becomes a ``Measurement``
whose ``query`` says exactly which rows were read, so anyone holding the ledger can recount
the pairs and re-derive the decision (``aurora canary replay`` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aurora.canary.analysis import (
    COMPARISONS,
    Comparison,
    PairCounts,
    Thresholds,
    Verdict,
    decide,
    pair_outcomes,
    quantile,
)
from aurora.canary.observe import KINDS, LATENCY_FIELD, Row, latency_values, observations
from aurora.canary.plan import (
    Measurement,
    bucket_of,
    matched_sequences,
    measurement_of,
    stable_slice,
)


@dataclass(frozen=True)
class Window:
    """The rows a step is judged on: ``start <= ts < end`` (RFC 3339 UTC strings)."""

    start: str
    end: str

    def holds(self, ts: str) -> bool:
        return self.start <= ts < self.end


def baseline(rows: Iterable[Row], *, stable_from: int) -> dict[str, float | None]:
    """Stable's latency quantiles over the window before a step (``None``: no data).

    ``stable_from`` is the canary weight *before* the step: tenants in buckets at or above
    it were on stable then (all of them before the first step).
    """
    stable = [r for r in rows if r.tenant_id and bucket_of(r.tenant_id) >= stable_from]
    out: dict[str, float | None] = {}
    for key, (_, q) in LATENCY_FIELD.items():
        values = latency_values(stable, key)
        out[key] = quantile(values, q) if values else None
    return out


def query_text(comparison: Comparison, window: Window, weight: int,
               threshold: float | None) -> str:
    """How the comparison's pairs are counted, precisely enough to recount them offline."""
    slice_ = stable_slice(weight)
    bad = comparison.bad
    if comparison.key in LATENCY_FIELD:
        field, q = LATENCY_FIELD[comparison.key]
        bad = f"{field} > {threshold!r} (stable's q{q:g} before the step)"
    return (f"ledger rows kind in ({','.join(KINDS)}) with {window.start} <= ts < {window.end}; "
            f"canary = crc32(tenant_id) % 100 in [0, {weight}), stable slice = "
            f"[{slice_.start}, {slice_.stop}); pair i-th with i-th by ts; bad: {bad}")


@dataclass(frozen=True)
class StepMeasure:
    verdicts: tuple[Verdict, ...]
    measurements: tuple[Measurement, ...]


def measure_step(rows: Sequence[Row], *, step_start: str, judged_from: str, end: str,
                 weight: int, stable_from: int, step: int,
                 thresholds: Thresholds) -> tuple[dict[str, float | None], StepMeasure]:
    """A step's comparisons: the rows before ``step_start`` fix the latency thresholds,
    those in ``[judged_from, end)`` are judged; the settling time between is neither."""
    base = baseline([r for r in rows if r.ts < step_start], stable_from=stable_from)
    return base, measure(rows, window=Window(judged_from, end), weight=weight, step=step,
                         at=end, thresholds=thresholds, base=base)


def measure(rows: Sequence[Row], *, window: Window, weight: int, step: int, at: str,
            thresholds: Thresholds, base: dict[str, float | None],
            comparisons: Sequence[Comparison] = COMPARISONS) -> StepMeasure:
    """Every comparison of the step at weight ``weight`` over ``window``.

    A latency comparison without a baseline (no stable orders before the step) is an
    ``error``, never a pass; at 100 % there is no stable slice, so nothing is compared.
    """
    inside = [r for r in rows if window.holds(r.ts)]
    verdicts: list[Verdict] = []
    measurements: list[Measurement] = []
    if not stable_slice(weight):
        return StepMeasure((), ())
    for comparison in comparisons:
        threshold = base.get(comparison.key) if comparison.key in LATENCY_FIELD else None
        counts: PairCounts | None = None
        if comparison.key not in LATENCY_FIELD or threshold is not None:
            canary, stable = matched_sequences(
                observations(inside, comparison.key, threshold), weight)
            counts = pair_outcomes(canary, stable)
        verdict = decide(comparison, counts, thresholds)
        verdicts.append(verdict)
        measurements.append(measurement_of(
            verdict, at=at, step=step, weight=weight,
            query=query_text(comparison, window, weight, threshold)))
    return StepMeasure(tuple(verdicts), tuple(measurements))
