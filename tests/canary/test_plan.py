"""The rollout plan: steps, hold, promote/abort/inconclusive, split drift, measurement records."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.canary.analysis import (
    COMPARISON,
    Decision,
    PairCounts,
    StepJudgement,
    Thresholds,
    decide,
)
from aurora.canary.plan import (
    Phase,
    Plan,
    State,
    advance,
    binomial_two_sided_p,
    check_split,
    measurement_of,
    parse_steps,
    stable_slice,
    start,
)
from aurora.canonical import canonical_json

PLAN = Plan(hold_s=1800, decide_within_s=7200, inconclusive_for_s=3600)
PASS = StepJudgement(Decision.PASS, ("all passed",), False)
FAIL = StepJudgement(Decision.FAIL, ("rtt_p95: canary worse",), False)
WAIT = StepJudgement(Decision.NOT_ENOUGH_DATA, ("fill: 3 pairs",), False)
ERROR = StepJudgement(Decision.ERROR, ("fill: query failed",), False)


def _step(state: State, judgement: StepJudgement, now: float, drifted: bool = False) -> State:
    split = check_split(300 if drifted else state.weight * 10,
                        700 if drifted else (100 - state.weight) * 10, state.weight, PLAN)
    return advance(PLAN, state, judgement, split, now)


def test_default_steps_and_parsing() -> None:
    assert Plan().steps == (10, 50, 100)
    assert parse_steps("5,25,100") == (5, 25, 100)
    for bad in ("10,50", "50,10,100", "0,100", "ten,100", "10,10,100"):
        with pytest.raises(ValueError):
            parse_steps(bad)


def test_matched_stable_slice_has_the_canary_width_next_to_it() -> None:
    assert stable_slice(10) == range(10, 20)
    assert stable_slice(50) == range(50, 100)
    assert len(stable_slice(100)) == 0


def test_a_passing_rollout_holds_each_step_then_promotes() -> None:
    s = start(PLAN, 0.0)
    assert (s.phase, s.weight) == (Phase.STEP, 10)
    s = _step(s, PASS, 60.0)  # passing early: hold the weight until the hold time is up
    assert (s.phase, s.weight) == (Phase.STEP, 10)
    s = _step(s, PASS, 1800.0)
    assert (s.phase, s.weight, s.step_started_at) == (Phase.STEP, 50, 1800.0)
    s = _step(s, PASS, 3600.0)
    assert s.weight == 100
    # at 100 % there is no stable slice: the hard gates decide, after the hold
    s = _step(s, WAIT, 4000.0)
    assert s.phase is Phase.STEP
    s = _step(s, WAIT, 5400.0)
    assert (s.phase, s.weight) == (Phase.PROMOTED, 100)
    assert _step(s, FAIL, 9999.0) == s  # a finished rollout stays finished


def test_a_failure_aborts_at_once_with_weight_zero() -> None:
    s = _step(start(PLAN, 0.0), FAIL, 10.0)
    assert (s.phase, s.weight) == (Phase.ABORTED, 0)
    assert "rtt_p95" in s.reason


def test_undecided_past_the_deadline_is_inconclusive_then_aborted() -> None:
    s = _step(start(PLAN, 0.0), WAIT, 7199.0)
    assert s.phase is Phase.STEP
    s = _step(s, ERROR, 7200.0)
    assert (s.phase, s.weight, s.inconclusive_since) == (Phase.INCONCLUSIVE, 10, 7200.0)
    s = _step(s, WAIT, 7200.0 + 3599)
    assert s.phase is Phase.INCONCLUSIVE
    s = _step(s, WAIT, 7200.0 + 3600)
    assert (s.phase, s.weight) == (Phase.ABORTED, 0)


def test_an_inconclusive_step_that_then_passes_moves_on() -> None:
    s = _step(start(PLAN, 0.0), WAIT, 7200.0)
    s = _step(s, PASS, 7300.0)
    assert (s.phase, s.weight, s.inconclusive_since) == (Phase.STEP, 50, None)


def test_a_split_that_drifts_stops_the_rollout_as_inconclusive() -> None:
    s = _step(start(PLAN, 0.0), PASS, 1800.0, drifted=True)
    assert (s.phase, s.weight) == (Phase.INCONCLUSIVE, 10)
    assert "split drifted" in s.reason


def test_an_error_at_100_percent_never_promotes() -> None:
    s = State(Phase.STEP, 2, 100, 0.0)
    assert _step(s, ERROR, 1800.0).phase is not Phase.PROMOTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([WAIT, ERROR]), st.floats(0, 20_000)), max_size=30))
def test_nothing_undecided_ever_moves_traffic_forward(
        steps: list[tuple[StepJudgement, float]]) -> None:
    s = start(PLAN, 0.0)
    now = 0.0
    for judgement, dt in steps:
        now += dt
        s = _step(s, judgement, now)
        assert s.weight in (10, 0)
        assert s.phase is not Phase.PROMOTED


def test_split_check_is_an_exact_binomial_test_with_a_tolerance() -> None:
    assert binomial_two_sided_p(0, 10, 0.5) == pytest.approx(2 / 1024)
    assert binomial_two_sided_p(5, 10, 0.5) == pytest.approx(1.0)
    on = check_split(101, 899, 10, PLAN)
    assert not on.drifted and on.share == pytest.approx(0.101)
    off = check_split(300, 700, 10, PLAN)
    assert off.drifted and off.p_value < 1e-6
    # significant but within the tolerance: not a drift (a heavy tenant is not a broken proxy)
    assert not check_split(1300, 8700, 10, PLAN).drifted
    # beyond the tolerance but on too few orders to tell: not yet a drift
    assert not check_split(2, 8, 10, PLAN).drifted
    assert check_split(0, 0, 10, PLAN).share is None


def test_a_measurement_is_a_canonical_json_ledger_record() -> None:
    verdict = decide(COMPARISON["fill"], PairCounts(worse=0, better=0, ties=0), Thresholds.of())
    m = measurement_of(verdict, at="2026-12-01T22:00:00Z", step=0, weight=10,
                       query="ledger scan kinds=order,drop track=canary")
    data = m.ledger_data()
    canonical_json(data)  # no NaN or infinity: canonical JSON accepts it
    assert data["decision"] == "not_enough_data" and data["sample_size"] == 0
    assert data["threshold"] == pytest.approx(math.log(7 / 0.05))
    failed = measurement_of(decide(COMPARISON["fill"], None, Thresholds.of()),
                            at="2026-12-01T22:00:00Z", step=0, weight=10, query="q")
    assert failed.ledger_data()["value"] is None
    assert failed.ledger_data()["decision"] == "error"
    canonical_json(failed.ledger_data())


def test_raising_the_weight_only_moves_tenants_from_stable_to_canary() -> None:
    from aurora.canary.plan import track_of

    tenants = [f"tenant-{i}" for i in range(2000)]
    for low, high in ((10, 50), (50, 100), (0, 10)):
        assert all(track_of(t, high) == "canary" for t in tenants if track_of(t, low) == "canary")
    assert {track_of(t, 0) for t in tenants} == {"stable"}
    assert {track_of(t, 100) for t in tenants} == {"canary"}


def test_observations_split_into_canary_and_the_matched_slice_only() -> None:
    from aurora.canary.analysis import pair_outcomes
    from aurora.canary.plan import Observation, bucket_of, matched_sequences

    tenants = [f"tenant-{i:02d}" for i in range(50)]
    canary_t = [t for t in tenants if bucket_of(t) < 10]
    slice_t = [t for t in tenants if 10 <= bucket_of(t) < 20]
    rest = [t for t in tenants if bucket_of(t) >= 20]
    assert canary_t and slice_t and rest
    obs = [Observation(f"2026-12-01T10:00:{i:02d}Z", t, bad)
           for i, (t, bad) in enumerate([(canary_t[0], True), (rest[0], True),
                                         (slice_t[0], False), (canary_t[-1], False),
                                         (slice_t[-1], False), (rest[-1], False)])]
    canary, stable = matched_sequences(reversed(obs), 10)  # input order does not matter
    assert (canary, stable) == ([True, False], [False, False])
    assert pair_outcomes(canary, stable).worse == 1
