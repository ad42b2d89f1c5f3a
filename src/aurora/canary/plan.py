"""The canary rollout plan and its verdict state machine (pure, no I/O).

A plan is a list of steps (canary weight in percent, default 10, 50, 100), a hold time (the
least a step lasts, so every step sees traffic for a while even when its verdict comes
early), how long a step may stay undecided before it becomes *inconclusive*, and how long an
inconclusive rollout holds its weight before it is aborted. ``advance`` is the whole state
machine: given the state, the step's judgement (``aurora.canary.analysis.judge``) and the
measured split, it returns the next state and what to do with the traffic.

- FAIL (a comparison or a hard gate) -> aborted: weight 0 at once.
- The measured split drifts from the set weight -> inconclusive (hold the weight).
- PASS once the hold has elapsed -> next step; PASS at the last step -> promoted.
- At 100 % there is no stable slice to compare with: the step promotes after its hold if
  the hard gates stay clean and measurable.
- Not enough data, or a measurement error, past ``decide_within`` -> inconclusive; still
  undecided ``inconclusive_for`` later -> aborted. Nothing undecided ever promotes.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from aurora.canary.analysis import Decision, StepJudgement, Verdict

DEFAULT_STEPS = (10, 50, 100)
BUCKETS = 100  # tenants are hashed into 100 buckets; the canary takes buckets < weight


@dataclass(frozen=True)
class Plan:
    steps: tuple[int, ...] = DEFAULT_STEPS
    hold_s: float = 30 * 60.0
    decide_within_s: float = 72 * 3600.0  # `aurora canary plan`: ~43 h to pass 10 % at 0.9/min
    inconclusive_for_s: float = 6 * 3600.0
    split_tolerance: float = 0.05  # |measured share - weight| allowed (absolute)
    split_alpha: float = 0.001  # a drift must also be significant (exact binomial test)
    # The first seconds after a weight change are not judged (the hard gates still are):
    # a change disturbs both tracks briefly (a process starting, traffic moving), and a
    # transient in one track's first orders would count against a candidate no worse.
    settle_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.steps or list(self.steps) != sorted(set(self.steps)):
            raise ValueError("steps must be strictly increasing")
        if self.steps[0] <= 0 or self.steps[-1] != 100:
            raise ValueError("steps must be between 1 and 100 and end at 100")
        if min(self.hold_s, self.decide_within_s, self.inconclusive_for_s, self.settle_s) < 0:
            raise ValueError("durations cannot be negative")
        if self.decide_within_s < self.hold_s:
            raise ValueError("decide_within must be at least the hold time")
        if not 0.0 < self.split_tolerance < 1.0 or not 0.0 < self.split_alpha < 1.0:
            raise ValueError("split tolerance and alpha must be between 0 and 1")


def parse_steps(text: str) -> tuple[int, ...]:
    """``"10,50,100"`` -> (10, 50, 100); ValueError with a clear message otherwise."""
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"steps must be comma-separated percentages, not {text!r}") from None
    Plan(steps=steps)  # validates
    return steps


def bucket_of(tenant_id: str) -> int:
    """The tenant's bucket: CRC-32 of its id mod 100, exactly what the HAProxy split computes
    (``req.body,json_query('$.tenant_id'),crc32,mod(100)`` in ``aurora.canary.haproxy``)."""
    return zlib.crc32(tenant_id.encode()) % BUCKETS


def track_of(tenant_id: str, weight: int) -> str:
    """The track a tenant's orders go to at ``weight`` (raising it only moves tenants to
    the canary, never back)."""
    return "canary" if bucket_of(tenant_id) < weight else "stable"


@dataclass(frozen=True)
class Observation:
    """One order of the window, as a ledger row gives it: when, whose, and whether it was
    bad for the comparison at hand."""

    ts: str  # RFC 3339 UTC, as the ledger writes it (sorts in time order)
    tenant_id: str
    bad: bool


def matched_sequences(observations: Iterable[Observation],
                      weight: int) -> tuple[list[bool], list[bool]]:
    """The canary's and the matched stable slice's "bad" bits, each in arrival order,
    ready for ``aurora.canary.analysis.pair_outcomes``; other stable tenants are left out."""
    canary_buckets, slice_buckets = range(weight), stable_slice(weight)
    canary: list[bool] = []
    stable: list[bool] = []
    for o in sorted(observations, key=lambda o: o.ts):
        bucket = bucket_of(o.tenant_id)
        if bucket in canary_buckets:
            canary.append(o.bad)
        elif bucket in slice_buckets:
            stable.append(o.bad)
    return canary, stable


def stable_slice(weight: int) -> range:
    """The stable buckets matched to a canary of ``weight`` (same width, next to it).

    The canary holds buckets [0, weight); its comparison slice is [weight, 2 * weight),
    all of stable from 50 % on; empty at 100 % (nothing left to compare with).
    """
    if not 0 <= weight <= BUCKETS:
        raise ValueError("weight must be between 0 and 100")
    return range(weight, min(2 * weight, BUCKETS))


class Phase(StrEnum):
    STEP = "step"
    INCONCLUSIVE = "inconclusive"
    PROMOTED = "promoted"
    ABORTED = "aborted"


@dataclass(frozen=True)
class State:
    phase: Phase
    step: int  # index into plan.steps
    weight: int  # the canary weight the proxy should hold now
    step_started_at: float
    inconclusive_since: float | None = None
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.phase in (Phase.PROMOTED, Phase.ABORTED)


def start(plan: Plan, now: float) -> State:
    return State(Phase.STEP, 0, plan.steps[0], now, reason="rollout started")


@dataclass(frozen=True)
class SplitCheck:
    """The share of orders the proxy actually served to the canary vs its set weight."""

    canary: int
    stable: int
    weight: int
    drifted: bool
    p_value: float

    @property
    def share(self) -> float | None:
        total = self.canary + self.stable
        return self.canary / total if total else None


def check_split(canary: int, stable: int, weight: int, plan: Plan) -> SplitCheck:
    """Drift: beyond ``plan.split_tolerance`` *and* significant by an exact binomial test.

    The counts are orders; with stickiness per tenant they vary more than independent
    draws would, which the tolerance absorbs (the test alone would flag a heavy tenant).
    """
    if min(canary, stable) < 0:
        raise ValueError("served counts cannot be negative")
    n = canary + stable
    p = weight / 100.0
    if n == 0:
        return SplitCheck(canary, stable, weight, False, 1.0)
    share = canary / n
    p_value = binomial_two_sided_p(canary, n, p)
    drifted = abs(share - p) > plan.split_tolerance and p_value < plan.split_alpha
    return SplitCheck(canary, stable, weight, drifted, p_value)


def binomial_two_sided_p(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial p-value: total probability of outcomes no likelier than k."""
    if p <= 0.0 or p >= 1.0:
        return 1.0 if k == round(p * n) else 0.0
    logs = [_log_binom_pmf(i, n, p) for i in range(n + 1)]
    cut = logs[k] + 1e-9
    top = max(logs)
    return min(1.0, sum(math.exp(x - top) for x in logs if x <= cut) * math.exp(top))


def _log_binom_pmf(k: int, n: int, p: float) -> float:
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def advance(plan: Plan, state: State, judgement: StepJudgement, split: SplitCheck,
            now: float) -> State:
    """The next state; ``state.weight`` of the result is what the proxy must be set to."""
    if state.done:
        return state
    if judgement.decision is Decision.FAIL:
        return replace(state, phase=Phase.ABORTED, weight=0,
                       reason="abort: " + "; ".join(judgement.reasons))
    held = now - state.step_started_at >= plan.hold_s
    last = state.step == len(plan.steps) - 1
    if split.drifted:
        return _inconclusive(plan, state, now, f"split drifted: measured share "
                             f"{split.share:.3f} vs weight {split.weight} % "
                             f"(p = {split.p_value:.2g})")
    decided = judgement.decision is Decision.PASS
    if state.weight == BUCKETS:  # nothing to compare with: the hard gates decide
        decided = judgement.decision is not Decision.ERROR
    if decided and held:
        if last:
            return replace(state, phase=Phase.PROMOTED, inconclusive_since=None,
                           reason="promoted: every step passed")
        nxt = state.step + 1
        return State(Phase.STEP, nxt, plan.steps[nxt], now,
                     reason=f"step {state.weight} % passed: " + "; ".join(judgement.reasons))
    if decided:
        return replace(state, reason="passing; holding until the hold time has elapsed")
    why = "; ".join(judgement.reasons) or judgement.decision.value
    if state.phase is Phase.INCONCLUSIVE or now - state.step_started_at >= plan.decide_within_s:
        return _inconclusive(plan, state, now, why)
    return replace(state, reason=f"waiting: {why}")


def _inconclusive(plan: Plan, state: State, now: float, why: str) -> State:
    since = state.inconclusive_since if state.inconclusive_since is not None else now
    if now - since >= plan.inconclusive_for_s:
        return replace(state, phase=Phase.ABORTED, weight=0,
                       reason=f"abort: inconclusive for {plan.inconclusive_for_s:.0f} s: {why}")
    return replace(state, phase=Phase.INCONCLUSIVE, inconclusive_since=since,
                   reason=f"inconclusive: {why}")


@dataclass(frozen=True)
class Measurement:
    """One measurement as it will be recorded: a ledger entry's data and a metric."""

    at: str  # RFC 3339 UTC
    step: int
    weight: int
    comparison: str
    query: str  # how the value was obtained (PromQL or the ledger scan), verbatim
    value: float | None  # None: the query failed
    threshold: float
    sample_size: int
    decision: Decision
    detail: dict[str, float | int | str | None] = field(default_factory=dict)

    def ledger_data(self) -> dict[str, Any]:
        """JSON-ready (canonical JSON has no NaN or infinity: those become None)."""
        return {
            "at": self.at, "step": self.step, "weight": self.weight,
            "comparison": self.comparison, "query": self.query,
            "value": _finite(self.value), "threshold": _finite(self.threshold),
            "sample_size": self.sample_size, "decision": self.decision.value,
            "detail": {k: _finite(v) if isinstance(v, float) else v
                       for k, v in sorted(self.detail.items())},
        }


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def measurement_of(verdict: Verdict, *, at: str, step: int, weight: int,
                   query: str) -> Measurement:
    """A comparison's verdict as a measurement: value = FAIL evidence vs its threshold.

    The PASS side, the pair counts and the effect go in ``detail``; all logs are natural.
    """
    value = None if verdict.decision is Decision.ERROR else verdict.log_fail_evidence
    return Measurement(at, step, weight, verdict.key, query, value,
                       verdict.log_fail_threshold, verdict.pairs, verdict.decision, {
                           "log_pass_evidence": verdict.log_pass_evidence,
                           "log_pass_threshold": verdict.log_pass_threshold,
                           "pairs_canary_worse": verdict.worse,
                           "pairs_canary_better": verdict.better,
                           "effect": verdict.effect, "reason": verdict.reason})
