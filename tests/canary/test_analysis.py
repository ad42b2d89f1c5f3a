"""The canary statistics: valid under repeated looks, powerful on a clear regression."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.canary.analysis import (
    COMPARISON,
    COMPARISONS,
    Decision,
    HardGates,
    PairCounts,
    Thresholds,
    decide,
    exceedances,
    judge,
    pair_outcomes,
    quantile,
    simulate_rollout,
    size,
)

CLEAN = HardGates(consistency_failures=0, canary_provenance_coverage=1.0, tampering_alerts=0)


def _rollout(rng: random.Random, p_canary: float, p_stable: float, alpha: float,
             pairs: int) -> Decision:
    """One simulated comparison, `decide` called after every single pair (peeking)."""
    comparison = COMPARISON["http_5xx"]
    thresholds = Thresholds.of(alpha=alpha, comparisons=1)
    counts = PairCounts()
    for _ in range(pairs):
        c, s = rng.random() < p_canary, rng.random() < p_stable
        counts = counts.add(int(c) - int(s))
        verdict = decide(comparison, counts, thresholds)
        if verdict.decision is not Decision.NOT_ENOUGH_DATA:
            return verdict.decision
    return Decision.NOT_ENOUGH_DATA


def _allowed(alpha: float, runs: int) -> float:
    """alpha * runs plus three binomial standard deviations (sampling noise, not slack)."""
    return alpha * runs + 3 * math.sqrt(alpha * (1 - alpha) * runs)


@settings(max_examples=6, deadline=None, derandomize=True)
@given(p=st.floats(0.01, 0.4), alpha=st.sampled_from([0.05, 0.2]), seed=st.integers(0, 2**32))
def test_no_difference_fails_at_most_alpha_of_rollouts_however_often_checked(
        p: float, alpha: float, seed: int) -> None:
    rng = random.Random(seed)
    runs = 150
    fails = sum(_rollout(rng, p, p, alpha, 300) is Decision.FAIL for _ in range(runs))
    assert fails <= _allowed(alpha, runs)


def test_the_harness_catches_peeking_a_fixed_sample_test() -> None:
    """The same simulation flags a naive z-test checked after every pair: the check has teeth."""
    rng = random.Random(7)
    runs, alpha, fails = 150, 0.05, 0
    for _ in range(runs):
        diff = 0
        for n in range(1, 301):
            c, s = rng.random() < 0.2, rng.random() < 0.2
            diff += int(c) - int(s)
            var = 2 * 0.2 * 0.8 * n
            if n >= 10 and diff / math.sqrt(var) > 1.645:  # one-sided 5 % each look
                fails += 1
                break
    assert fails > _allowed(alpha, runs)


def test_simulation_used_for_sizing_also_keeps_alpha() -> None:
    rng = random.Random(3)
    thresholds = Thresholds.of(alpha=0.2, comparisons=1)
    runs = 400
    fails = sum(simulate_rollout(0.1, 0.1, 0.05, thresholds, 2000, rng)[0] is Decision.FAIL
                for _ in range(runs))
    assert fails <= _allowed(0.2, runs)


def _rtts(rng: random.Random, n: int, added_ms: float = 0.0) -> list[float]:
    # lognormal around 260 ms (p95 ~ 330 ms), like the providers' own RTT distribution
    return [rng.lognormvariate(math.log(260.0), 0.15) + added_ms for _ in range(n)]


def test_150ms_added_rtt_is_detected_within_ten_hours_at_one_order_a_minute() -> None:
    """At 1 order/min and 10 % canary there are 6 pairs an hour: 60 pairs is 10 h."""
    rng = random.Random(11)
    comparison, thresholds = COMPARISON["rtt_p95"], Thresholds.of()  # all 7 comparisons' alpha
    threshold = quantile(_rtts(rng, 2000), 0.95)  # stable's p95 over the previous window
    outcomes = []
    for _ in range(100):
        canary = exceedances(_rtts(rng, 60, added_ms=150.0), threshold)
        stable = exceedances(_rtts(rng, 60), threshold)
        decision = Decision.NOT_ENOUGH_DATA
        for i in range(1, 61):  # look after every pair
            decision = decide(comparison, pair_outcomes(canary[:i], stable[:i]),
                              thresholds).decision
            if decision is not Decision.NOT_ENOUGH_DATA:
                break
        outcomes.append(decision)
    assert outcomes.count(Decision.PASS) == 0
    assert outcomes.count(Decision.FAIL) >= 95


def test_same_rtt_distribution_passes_and_never_fails() -> None:
    rng = random.Random(5)
    comparison, thresholds = COMPARISON["rtt_p95"], Thresholds.of()
    threshold = quantile(_rtts(rng, 2000), 0.95)
    counts = pair_outcomes(exceedances(_rtts(rng, 400), threshold),
                           exceedances(_rtts(rng, 400), threshold))
    assert decide(comparison, counts, thresholds).decision is Decision.PASS


def test_a_canary_without_any_error_passes_after_enough_orders_but_not_before() -> None:
    comparison, thresholds = COMPARISON["http_5xx"], Thresholds.of()
    assert decide(comparison, PairCounts(ties=20), thresholds).decision \
        is Decision.NOT_ENOUGH_DATA
    assert decide(comparison, PairCounts(ties=400), thresholds).decision is Decision.PASS


def test_discordant_pairs_only_against_the_canary_fail_it() -> None:
    comparison, thresholds = COMPARISON["fill"], Thresholds.of()
    verdict = decide(comparison, PairCounts(worse=30, better=2, ties=40), thresholds)
    assert verdict.decision is Decision.FAIL
    assert verdict.log_fail_evidence >= verdict.log_fail_threshold
    # the same counts the other way round are no evidence against the canary
    assert decide(comparison, PairCounts(worse=2, better=30, ties=40), thresholds).decision \
        is not Decision.FAIL


def test_a_failed_query_is_an_error_never_a_pass() -> None:
    verdicts = [decide(c, PairCounts(ties=5000), Thresholds.of()) for c in COMPARISONS]
    assert all(v.decision is Decision.PASS for v in verdicts)
    assert judge(CLEAN, verdicts).decision is Decision.PASS
    broken = [*verdicts[:-1], decide(COMPARISONS[-1], None, Thresholds.of())]
    assert broken[-1].decision is Decision.ERROR
    assert judge(CLEAN, broken).decision is Decision.ERROR
    unmeasured_gate = HardGates(None, 1.0, 0)
    assert judge(unmeasured_gate, verdicts).decision is Decision.ERROR


def test_not_enough_data_and_no_measurement_at_all_are_not_passes() -> None:
    waiting = [decide(c, PairCounts(ties=3), Thresholds.of()) for c in COMPARISONS]
    assert judge(CLEAN, waiting).decision is Decision.NOT_ENOUGH_DATA
    assert judge(CLEAN, []).decision is Decision.NOT_ENOUGH_DATA


@pytest.mark.parametrize("gates, reason", [
    (HardGates(1, 1.0, 0), "consistency"),
    (HardGates(0, 0.999, 0), "provenance"),
    (HardGates(0, 1.0, 2), "tampering"),
])
def test_hard_gates_end_the_step_at_once_whatever_the_comparisons_say(
        gates: HardGates, reason: str) -> None:
    passing = [decide(c, PairCounts(ties=5000), Thresholds.of()) for c in COMPARISONS]
    result = judge(gates, passing)
    assert result.decision is Decision.FAIL and result.hard_fail
    assert reason in " ".join(result.reasons)


def test_pairing_waits_for_a_partner_and_counts_each_kind() -> None:
    counts = pair_outcomes([True, False, True, False, True], [False, True, True, False])
    assert (counts.worse, counts.better, counts.ties) == (1, 1, 2)
    with pytest.raises(ValueError):
        PairCounts().add(2)


def test_sizing_is_deterministic_and_scales_with_the_order_rate() -> None:
    c = COMPARISON["rtt_p95"]
    slow = size(c, rate_per_min=1.0, weight=0.1, runs=100)
    again = size(c, rate_per_min=1.0, weight=0.1, runs=100)
    fast = size(c, rate_per_min=2.0, weight=0.1, runs=100)
    assert slow == again
    assert slow.pairs_per_hour == pytest.approx(6.0)  # 10 % of 60 orders an hour
    assert slow.pairs_to_fail is not None and slow.pairs_to_pass is not None
    assert fast.pairs_to_fail == slow.pairs_to_fail
    assert slow.hours_to_verdict == pytest.approx(2 * fast.hours_to_verdict)  # type: ignore[operator]
    assert slow.false_fail_rate <= 0.05


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        Thresholds.of(alpha=0.0)
    with pytest.raises(ValueError):
        size(COMPARISON["fill"], rate_per_min=1.0, weight=1.5)
    with pytest.raises(ValueError):
        quantile([], 0.95)


def test_a_step_with_all_seven_comparisons_fails_an_equal_canary_at_most_alpha() -> None:
    """All comparisons looked at after every pair, 5xx and 503 nested (503 is a 5xx): the
    Bonferroni share per comparison keeps the whole step's false-fail rate under alpha."""
    rng = random.Random(21)
    alpha, runs, fails = 0.2, 100, 0
    thresholds = Thresholds.of(alpha=alpha)
    for _ in range(runs):
        counts = {c.key: PairCounts() for c in COMPARISONS}
        for _ in range(300):
            draws = []
            for _track in range(2):
                e503 = rng.random() < 0.02
                draws.append({
                    "fill": rng.random() < 0.05, "http_5xx": e503 or rng.random() < 0.01,
                    "http_503": e503, "failover": rng.random() < 0.05,
                    "rejected_ack": rng.random() < 0.002, "rtt_p95": rng.random() < 0.05,
                    "policy_p99": rng.random() < 0.01})
            counts = {k: v.add(int(draws[0][k]) - int(draws[1][k])) for k, v in counts.items()}
            result = judge(CLEAN, [decide(c, counts[c.key], thresholds) for c in COMPARISONS])
            if result.decision is Decision.FAIL:
                fails += 1
            if result.decision is not Decision.NOT_ENOUGH_DATA:
                break
    assert fails <= _allowed(alpha, runs)
