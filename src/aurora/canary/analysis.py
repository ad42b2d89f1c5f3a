"""Canary statistics: sequential tests that stay valid however often they are checked.

The design (pure, no I/O):

**Matched pairs.** The canary is compared with a *matched slice* of stable of the same
weight (``aurora.canary.plan.stable_slice``), over the same window, never with the rest of
stable. The i-th canary order of the window is paired with the i-th order of the stable
slice (by arrival, fixed before any outcome is seen). Each comparison turns an order into a
"bad" bit, so each pair gives ``D = canary_bad - stable_bad`` in {-1, 0, +1}:

- ratios (fill, 5xx, 503, failover, rejected ACK): the order was dropped / answered 5xx /
  answered 503 / needed a failover / had an ACK rejected;
- latency distributions (RTT p95, policy p99): the order's value *exceeded a threshold fixed
  before the step*, the stable track's quantile over the previous window. Under "same
  distribution" a canary order and a stable-slice order exceed any fixed threshold equally
  often, whatever the threshold, so the test is exact even if that quantile estimate is off;
  the estimate only decides where the test looks (at the tail the SLO is about).

Why exceedance and not Mann-Whitney (Kayenta's choice): Mann-Whitney needs a normal
approximation and a fixed sample; checked every minute it inflates the false-fail rate
(the "peeking" problem), and its sequential variants are asymptotic. It also reacts to a
shift in the median that leaves the tail (the SLO) alone. The exceedance bit loses some
power against pure location shifts but is exact at the tiny counts a low-traffic treaty
gives and tests exactly what the SLO says ("p95 <= x" is "at most 5 % exceed x").

**Two always-valid one-sided tests per comparison** (test supermartingales; Ville's
inequality bounds the chance that one *ever* crosses its threshold, so any number of looks
is fine, and none needs a planned sample size):

- FAIL when ``M_fail >= K / alpha`` (K comparisons, Bonferroni): evidence against
  "the canary is no worse" (``E[D] <= 0``). ``M_fail`` is a mixture over a grid of bets of
  ``prod(1 + lam * D_i)``, which depends on the discordant pairs only: a mixture sequential
  probability ratio test (mSPRT) of the discordant-pair sign, exact for any counts.
- PASS when ``M_pass >= 1 / beta``: evidence against "the canary is worse by the stated
  effect or more" (``E[D] >= effect``), by the same construction on ``effect - D``
  (testing by betting, Waudby-Smith & Ramdas 2023). Ties count here: many clean pairs are
  evidence that the canary is not worse by ``effect``, so a canary with no errors at all
  passes after enough orders instead of waiting forever for a discordant pair.

Error guarantees: ``P(FAIL ever | canary no worse) <= alpha / K`` per comparison, so
``<= alpha`` for the rollout; ``P(PASS ever | canary worse by effect) <= beta``.
"Not enough data" is never a pass; a failed query (``None`` counts) is an ``error``,
never a pass; FAIL wins if both ever cross. The tests assume the pairs are independent
across time (one tenant's orders are on one track; the hash split makes the slices
comparable, and a replay on past data, an A/A run, checks that they are).

**Sizing** (``size``) simulates the very procedure above (seeded, deterministic) to give,
for each comparison, the pairs needed to FAIL a canary worse by the effect and to PASS an
equal one, each with probability ``power``, and the time that takes at a given order rate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

DEFAULT_ALPHA = 0.05  # false-fail rate of a whole rollout step (all comparisons together)
DEFAULT_BETA = 0.10  # false-pass rate of a canary worse by the stated effect (per comparison)
DEFAULT_POWER = 0.80
# Bets of the FAIL mixture, as the canary's share of discordant pairs q = (1 + lam) / 2.
_FAIL_Q = (0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
# Bets of the PASS mixture, as fractions of the largest bet that keeps every factor >= 0.
_PASS_C = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)


class Decision(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_ENOUGH_DATA = "not_enough_data"
    ERROR = "error"  # the measurement could not be taken: never a pass


@dataclass(frozen=True)
class Comparison:
    """One canary-vs-stable comparison and the effect it must detect.

    ``baseline`` is the stable slice's usual bad-event rate (used for sizing only);
    ``effect`` is the absolute increase of the canary's bad-event rate the rollout must
    catch (and below which it may pass).
    """

    key: str
    title: str
    kind: Literal["ratio", "quantile"]
    bad: str  # what makes one order "bad" for this comparison
    baseline: float
    effect: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.baseline < 1.0 or not 0.0 < self.effect <= 1.0 - self.baseline:
            raise ValueError(f"{self.key}: need 0 <= baseline < 1 and 0 < effect <= 1 - baseline")


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("fill", "Fill rate", "ratio",
               "an admitted order no provider filled", 0.05, 0.10),
    Comparison("http_5xx", "5xx ratio", "ratio",
               "an order answered 5xx", 0.02, 0.05),
    Comparison("http_503", "503 ratio", "ratio",
               "an order answered 503", 0.02, 0.05),
    Comparison("failover", "Failover rate", "ratio",
               "an order that needed a failover", 0.05, 0.10),
    Comparison("rejected_ack", "Rejected-ACK rate", "ratio",
               "an order with a rejected ACK", 0.002, 0.03),
    Comparison("rtt_p95", "RTT p95", "quantile",
               "an order's RTT above stable's p95 of the previous window", 0.05, 0.15),
    Comparison("policy_p99", "Policy decision p99", "quantile",
               "a decision slower than stable's p99 of the previous window", 0.01, 0.05),
)
COMPARISON = {c.key: c for c in COMPARISONS}


@dataclass(frozen=True)
class PairCounts:
    """Matched pairs so far: canary bad & stable good, the reverse, and the rest."""

    worse: int = 0
    better: int = 0
    ties: int = 0

    def __post_init__(self) -> None:
        if min(self.worse, self.better, self.ties) < 0:
            raise ValueError("pair counts cannot be negative")

    @property
    def pairs(self) -> int:
        return self.worse + self.better + self.ties

    def add(self, d: int) -> PairCounts:
        if d == 1:
            return PairCounts(self.worse + 1, self.better, self.ties)
        if d == -1:
            return PairCounts(self.worse, self.better + 1, self.ties)
        if d == 0:
            return PairCounts(self.worse, self.better, self.ties + 1)
        raise ValueError(f"a pair difference is -1, 0 or 1, not {d}")


def pair_outcomes(canary_bad: Sequence[bool], stable_bad: Sequence[bool]) -> PairCounts:
    """Pair the i-th canary order with the i-th stable-slice order (arrival order).

    Orders beyond the shorter sequence wait for their partner (they are not counted yet).
    """
    worse = better = ties = 0
    for c, s in zip(canary_bad, stable_bad, strict=False):
        if c and not s:
            worse += 1
        elif s and not c:
            better += 1
        else:
            ties += 1
    return PairCounts(worse, better, ties)


def exceedances(values: Sequence[float], threshold: float) -> list[bool]:
    """The "bad" bits of a latency comparison: value above the pre-set threshold."""
    return [v > threshold for v in values]


def quantile(values: Sequence[float], q: float) -> float:
    """The empirical ``q`` quantile (nearest rank) used to fix a latency threshold."""
    if not values:
        raise ValueError("no values to take a quantile of")
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _log_mean_exp(logs: Sequence[float]) -> float:
    top = max(logs)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(x - top) for x in logs) / len(logs))


def _fail_terms() -> tuple[tuple[float, float], ...]:
    return tuple((math.log(2 * q), math.log(2 * (1 - q))) for q in _FAIL_Q)


def _pass_terms(effect: float) -> tuple[tuple[float, float, float], ...]:
    """log factors for D = +1, 0, -1 of each PASS bet on ``effect - D``."""
    top = 1.0 / (1.0 - effect)  # largest bet with 1 + mu * (effect - 1) >= 0
    terms = []
    for c in _PASS_C:
        mu = c * top
        terms.append((math.log1p(mu * (effect - 1.0)), math.log1p(mu * effect),
                      math.log1p(mu * (effect + 1.0))))
    return tuple(terms)


_FAIL = _fail_terms()


def log_fail_evidence(counts: PairCounts) -> float:
    """log M_fail: evidence that the canary is worse (needs discordant pairs)."""
    return _log_mean_exp([counts.worse * w + counts.better * b for w, b in _FAIL])


def log_pass_evidence(counts: PairCounts, effect: float) -> float:
    """log M_pass: evidence that the canary is not worse by ``effect``."""
    return _log_mean_exp([counts.worse * w + counts.ties * t + counts.better * b
                          for w, t, b in _pass_terms(effect)])


@dataclass(frozen=True)
class Thresholds:
    """The evidence each side needs: ``log(K / alpha)`` to fail, ``log(1 / beta)`` to pass."""

    log_fail: float
    log_pass: float

    @classmethod
    def of(cls, *, alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA,
           comparisons: int = len(COMPARISONS)) -> Thresholds:
        if not 0.0 < alpha < 1.0 or not 0.0 < beta < 1.0 or comparisons < 1:
            raise ValueError("need 0 < alpha, beta < 1 and at least one comparison")
        return cls(math.log(comparisons / alpha), math.log(1.0 / beta))


@dataclass(frozen=True)
class Verdict:
    """One comparison's decision with everything needed to re-check it offline."""

    key: str
    decision: Decision
    pairs: int
    worse: int
    better: int
    log_fail_evidence: float
    log_pass_evidence: float
    log_fail_threshold: float
    log_pass_threshold: float
    effect: float
    reason: str


def decide(comparison: Comparison, counts: PairCounts | None, thresholds: Thresholds) -> Verdict:
    """FAIL, PASS, NOT_ENOUGH_DATA, or ERROR when the counts could not be measured."""
    if counts is None:
        return Verdict(comparison.key, Decision.ERROR, 0, 0, 0, math.nan, math.nan,
                       thresholds.log_fail, thresholds.log_pass, comparison.effect,
                       "the measurement failed (query error or missing data)")
    fail = log_fail_evidence(counts)
    passing = log_pass_evidence(counts, comparison.effect)
    if fail >= thresholds.log_fail:
        decision, reason = Decision.FAIL, (
            f"canary worse: {counts.worse} pairs where only the canary was bad against "
            f"{counts.better} the other way")
    elif passing >= thresholds.log_pass:
        decision, reason = Decision.PASS, (
            f"canary not worse by {comparison.effect:g} after {counts.pairs} pairs")
    else:
        decision, reason = Decision.NOT_ENOUGH_DATA, (
            f"{counts.pairs} pairs are not enough to decide either way")
    return Verdict(comparison.key, decision, counts.pairs, counts.worse, counts.better,
                   fail, passing, thresholds.log_fail, thresholds.log_pass,
                   comparison.effect, reason)


@dataclass(frozen=True)
class HardGates:
    """Measurements that end a rollout at once. ``None`` means the query failed."""

    consistency_failures: int | None
    canary_provenance_coverage: float | None
    tampering_alerts: int | None

    def failures(self) -> list[str]:
        """Reasons to abort now (a failed hard-gate query is not one: it is an error)."""
        out = []
        if self.consistency_failures is not None and self.consistency_failures > 0:
            out.append(f"{self.consistency_failures} ledger consistency failure(s)")
        if self.canary_provenance_coverage is not None and self.canary_provenance_coverage < 1:
            out.append(f"canary provenance coverage {self.canary_provenance_coverage:.4f} < 1")
        if self.tampering_alerts is not None and self.tampering_alerts > 0:
            out.append(f"{self.tampering_alerts} tampering alert(s)")
        return out

    def errors(self) -> list[str]:
        names = ("consistency_failures", "canary_provenance_coverage", "tampering_alerts")
        return [f"{n} could not be measured" for n in names if getattr(self, n) is None]


@dataclass(frozen=True)
class StepJudgement:
    decision: Decision
    reasons: tuple[str, ...]
    hard_fail: bool


def judge(gates: HardGates, verdicts: Sequence[Verdict]) -> StepJudgement:
    """The step's decision: hard gates first, then FAIL if any fails, PASS only if all pass.

    Anything else (a comparison without enough data, a failed query, no comparison at all)
    is never a pass.
    """
    if failures := gates.failures():
        return StepJudgement(Decision.FAIL, tuple(failures), True)
    failed = [f"{v.key}: {v.reason}" for v in verdicts if v.decision is Decision.FAIL]
    if failed:
        return StepJudgement(Decision.FAIL, tuple(failed), False)
    errors = gates.errors() + [f"{v.key}: {v.reason}" for v in verdicts
                               if v.decision is Decision.ERROR]
    if errors:
        return StepJudgement(Decision.ERROR, tuple(errors), False)
    waiting = [f"{v.key}: {v.reason}" for v in verdicts
               if v.decision is not Decision.PASS]
    if waiting or not verdicts:
        return StepJudgement(Decision.NOT_ENOUGH_DATA,
                             tuple(waiting) or ("no comparison was measured",), False)
    return StepJudgement(Decision.PASS, tuple(f"{v.key}: {v.reason}" for v in verdicts), False)


# ---------------------------------------------------------------------------- sizing


class _Running:
    """The two evidence processes, updated one pair at a time (for simulation)."""

    def __init__(self, effect: float) -> None:
        self.fail_terms = _FAIL
        self.pass_terms = _pass_terms(effect)
        self.fail = [0.0] * len(self.fail_terms)
        self.passing = [0.0] * len(self.pass_terms)

    def add(self, d: int, times: int = 1) -> None:
        if d != 0:
            i = 0 if d == 1 else 1
            self.fail = [x + times * t[i] for x, t in zip(self.fail, self.fail_terms,
                                                          strict=True)]
        j = {1: 0, 0: 1, -1: 2}[d]
        self.passing = [x + times * t[j] for x, t in zip(self.passing, self.pass_terms,
                                                         strict=True)]

    def log_fail(self) -> float:
        return _log_mean_exp(self.fail)

    def log_pass(self) -> float:
        return _log_mean_exp(self.passing)


def simulate_rollout(p_canary: float, p_stable: float, effect: float, thresholds: Thresholds,
                     max_pairs: int, rng: random.Random) -> tuple[Decision, int]:
    """One simulated comparison, looked at after *every* pair: (decision, pairs used).

    Jumps over runs of tied pairs (they cannot move the FAIL evidence; the PASS evidence
    only rises along them, so the first pair where it crosses is found exactly).
    """
    p_worse = p_canary * (1 - p_stable)
    p_better = p_stable * (1 - p_canary)
    p_disc = p_worse + p_better
    run = _Running(effect)
    n = 0
    while n < max_pairs:
        gap = max_pairs - n if p_disc <= 0 else _geometric(rng, p_disc)
        gap = min(gap, max_pairs - n)
        if gap > 0:
            before = list(run.passing)
            run.add(0, gap)
            if run.log_pass() >= thresholds.log_pass:
                lo, hi = 0, gap  # first t in (lo, hi] that crosses
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    trial = [b + mid * t[1] for b, t in zip(before, run.pass_terms, strict=True)]
                    if _log_mean_exp(trial) >= thresholds.log_pass:
                        hi = mid
                    else:
                        lo = mid
                return Decision.PASS, n + hi
            n += gap
            if n >= max_pairs:
                break
        run.add(1 if rng.random() < p_worse / p_disc else -1)
        n += 1
        if run.log_fail() >= thresholds.log_fail:
            return Decision.FAIL, n
        if run.log_pass() >= thresholds.log_pass:
            return Decision.PASS, n
    return Decision.NOT_ENOUGH_DATA, max_pairs


def _geometric(rng: random.Random, p: float) -> int:
    """Number of tied pairs before the next discordant one (failures before a success)."""
    if p >= 1.0:
        return 0
    u = 1.0 - rng.random()  # in (0, 1]
    return int(math.log(u) / math.log1p(-p))


@dataclass(frozen=True)
class SampleSize:
    key: str
    title: str
    baseline: float
    effect: float
    pairs_to_fail: int | None  # a canary worse by `effect` fails by then with prob. `power`
    pairs_to_pass: int | None  # an equal canary passes by then with prob. `power`
    pairs_per_hour: float
    false_fail_rate: float  # simulated, equal canary, over the horizon

    def hours(self, pairs: int | None) -> float | None:
        if pairs is None or self.pairs_per_hour <= 0:
            return None
        return pairs / self.pairs_per_hour

    @property
    def hours_to_verdict(self) -> float | None:
        """Time until both a bad and a good canary are decided with prob. ``power``."""
        if self.pairs_to_fail is None or self.pairs_to_pass is None:
            return None
        return self.hours(max(self.pairs_to_fail, self.pairs_to_pass))


def pairs_per_hour(rate_per_min: float, weight: float) -> float:
    """Matched pairs per hour: the canary's share of the orders (the slice has as many)."""
    if rate_per_min < 0 or not 0.0 <= weight <= 1.0:
        raise ValueError("need rate >= 0 and 0 <= weight <= 1")
    return rate_per_min * 60.0 * min(weight, 1.0 - weight)


def size(comparison: Comparison, *, rate_per_min: float, weight: float,
         thresholds: Thresholds | None = None, power: float = DEFAULT_POWER,
         runs: int = 400, max_pairs: int = 20_000, seed: int = 0) -> SampleSize:
    """Pairs (and hours at ``rate_per_min`` with the canary at ``weight``) to a verdict."""
    if not 0.0 < power < 1.0:
        raise ValueError("power must be between 0 and 1")
    th = thresholds or Thresholds.of()
    rng = random.Random(f"{seed}:{comparison.key}")
    bad = [simulate_rollout(comparison.baseline + comparison.effect, comparison.baseline,
                            comparison.effect, th, max_pairs, rng) for _ in range(runs)]
    good = [simulate_rollout(comparison.baseline, comparison.baseline, comparison.effect,
                             th, max_pairs, rng) for _ in range(runs)]
    return SampleSize(
        comparison.key, comparison.title, comparison.baseline, comparison.effect,
        _quantile_of_stops(bad, Decision.FAIL, power),
        _quantile_of_stops(good, Decision.PASS, power),
        pairs_per_hour(rate_per_min, weight),
        sum(d is Decision.FAIL for d, _ in good) / runs,
    )


def step_sizes(rate_per_min: float, weight_pct: int,
               thresholds: Thresholds) -> list[SampleSize]:
    """Every comparison's sample size for a step at ``weight_pct`` percent."""
    return [size(c, rate_per_min=rate_per_min, weight=weight_pct / 100.0, thresholds=thresholds)
            for c in COMPARISONS]


def sizes_record(sized: Sequence[SampleSize], rate_per_min: float,
                 weight_pct: int) -> list[dict[str, Any]]:
    """The sample sizes as the rollout's ``begin`` ledger entry records them."""
    return [{"comparison": s.key, "pairs_to_fail": s.pairs_to_fail,
             "pairs_to_pass": s.pairs_to_pass, "hours_to_pass": s.hours(s.pairs_to_pass),
             "rate_per_min": rate_per_min, "weight": weight_pct} for s in sized]


def _quantile_of_stops(results: Sequence[tuple[Decision, int]], wanted: Decision,
                       power: float) -> int | None:
    """Smallest n with P(decided `wanted` within n pairs) >= power; None if never."""
    stops = sorted(n for d, n in results if d is wanted)
    need = math.ceil(power * len(results))
    if len(stops) < need or need == 0:
        return None
    return stops[need - 1]
