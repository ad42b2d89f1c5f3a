"""Folding a soak's ledger entries, mapping real time to soak time, and judging the gate
(pure: facts built by hand)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from aurora.soak.gate import (
    AlertFacts,
    DayFact,
    GateFacts,
    GateResult,
    IncidentFacts,
    LedgerFacts,
    RpoFacts,
    SingleFact,
    SloFacts,
    evaluate,
    judge_rpo,
    rpo_gaps,
)
from aurora.soak.schedule import SoakPlan, build_schedule
from aurora.soak.spans import subtract
from aurora.soak.state import StateError, fold, to_soak_time

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PLAN = SoakPlan("s1", date(2026, 1, 1), days=1, drills=())


def t(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def begin() -> tuple[int, dict[str, Any]]:
    return 0, {"soak_id": "s1", "event": "begin", "plan": PLAN.to_json(),
               "real_start": t(0), "sim_start": t(0)}


def started(seq: int, key: str, attempt: int = 1) -> tuple[int, dict[str, Any]]:
    return seq, {"soak_id": "s1", "event": "started", "key": key, "attempt": attempt,
                 "real_start": t(seq), "sim_start": t(seq)}


def finished(seq: int, key: str, status: str = "pass") -> tuple[int, dict[str, Any]]:
    day, hhmm, task = key.split("/")
    return seq, {"soak_id": "s1", "event": "finished", "key": key, "day": int(day[1:]),
                 "task": task, "scheduled": t(seq), "status": status, "attempt": 1,
                 "real_start": t(seq), "real_end": t(seq + 1), "sim_start": t(seq),
                 "sim_end": t(seq + 1), "files": [], "summary": "", "detail": {}}


def test_fold_finds_done_interrupted_and_pending() -> None:
    keys = [s.key for s in build_schedule(PLAN)]
    rows = [begin(), started(1, keys[0]), finished(2, keys[0]), started(3, keys[1]),
            (4, {"soak_id": "other", "event": "started", "key": keys[2]})]
    state = fold("s1", rows)
    assert set(state.finished) == {keys[0]}
    assert [s.key for s in state.interrupted] == [keys[1]]
    assert [s.key for s in state.pending()] == keys[1:]  # interrupted = still to do
    assert state.attempts(keys[1]) == 1


def test_a_second_outcome_never_replaces_the_first() -> None:
    key = build_schedule(PLAN)[0].key
    state = fold("s1", [begin(), finished(1, key, "fail"), finished(2, key, "pass")])
    assert state.finished[key].status == "fail" and len(state.duplicates) == 1


def test_fold_refuses_entries_without_a_soak() -> None:
    with pytest.raises(StateError):
        fold("s1", [started(1, "d1/0900/smoke")])
    with pytest.raises(StateError):
        fold("nope", [begin()])


def test_real_time_maps_onto_a_clock_that_stood_still() -> None:
    anchors = [(T0, T0), (T0 + timedelta(seconds=1), T0 + timedelta(hours=2)),
               (T0 + timedelta(seconds=4), T0 + timedelta(hours=2))]  # held for 3 s
    assert to_soak_time(T0 + timedelta(seconds=0.5), anchors, 7200) == T0 + timedelta(hours=1)
    assert to_soak_time(T0 + timedelta(seconds=3), anchors, 7200) == T0 + timedelta(hours=2)
    assert to_soak_time(T0 + timedelta(seconds=5), anchors, 7200) == T0 + timedelta(hours=4)


def test_subtracting_drill_windows() -> None:
    span = (T0, T0 + timedelta(seconds=100))
    holes = [(T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)),
             (T0 + timedelta(seconds=95), T0 + timedelta(seconds=200))]
    pieces = subtract(span, holes, min_length=6)
    assert pieces == [(T0 + timedelta(seconds=20), T0 + timedelta(seconds=95)),
                      (T0, T0 + timedelta(seconds=10))][::-1]


# --- the gate -----------------------------------------------------------------------------


def days(status: str = "pass", **overrides: DayFact) -> tuple[DayFact, ...]:
    facts = [DayFact(d, status) for d in range(1, 8)]  # type: ignore[arg-type]
    for key, fact in overrides.items():
        facts[int(key[1:]) - 1] = fact
    return tuple(facts)


def passing() -> GateFacts:
    segment = {"start": t(0), "end": t(100), "seconds": 100.0, "orders": 300.0,
               "insufficient": None, "values": {"rtt_p95": 200.0},
               "verdicts": {"rtt_p95": True}}
    ok = SingleFact("pass")
    return GateFacts(
        soak_id="s1", days_planned=7, ended=True, smoke=days(),
        slo=SloFacts(days(), (segment,), drill_free_s=110.0, judged_s=100.0),
        incidents=IncidentFacts(True, "none"), backups=days(), governance=ok,
        alerts=AlertFacts(True, "3 files: SUCCESS", {"TreatyFillRateLow": ok}),
        runbook={"rollback": ok, "restore": ok},
        ledger=LedgerFacts(True, "ok", ok, ok, True, "proof verifies"),
        rpo=RpoFacts(tuple(float(i * 900) for i in range(10)), (0.0, 8100.0), True))


def outcomes(result: GateResult) -> dict[str, str]:
    return {i.key: i.outcome for i in result.items}


def test_everything_verified_passes() -> None:
    result = evaluate(passing())
    assert set(outcomes(result).values()) == {"pass"}
    assert (result.outcome, result.exit_code) == ("pass", 0)


def test_a_day_whose_smoke_failed_fails_the_gate() -> None:
    result = evaluate(replace(passing(), smoke=days(d4=DayFact(4, "fail"))))
    assert outcomes(result)["smoke"] == "fail" and result.exit_code == 1
    assert "day 4" in result.item("smoke").reason


def test_a_recorded_pass_that_no_longer_verifies_fails() -> None:
    altered = DayFact(2, "pass", ("ops/backups/x.db.gz was altered after the fact",))
    result = evaluate(replace(passing(), backups=days(d2=altered)))
    assert outcomes(result)["backups"] == "fail"
    assert "altered" in result.item("backups").reason


def test_a_lost_day_fails_but_a_day_not_due_yet_is_inconclusive() -> None:
    lost = evaluate(replace(passing(), smoke=days(d5=DayFact(5, "missing"))))
    assert outcomes(lost)["smoke"] == "fail"
    early = evaluate(replace(passing(), smoke=days(d7=DayFact(7, "pending"))))
    assert outcomes(early)["smoke"] == "inconclusive" and early.exit_code == 3


def test_a_short_soak_is_inconclusive_never_a_pass() -> None:
    result = evaluate(replace(passing(), days_planned=2))
    assert outcomes(result)["smoke"] == "inconclusive" and result.exit_code == 3


def test_slos_are_judged_from_the_recorded_checks_alone() -> None:
    few = SloFacts(days(d3=DayFact(3, "pending"), d4=DayFact(4, "pending"),
                        d5=DayFact(5, "pending"), d6=DayFact(6, "pending"),
                        d7=DayFact(7, "pending")))
    result = evaluate(replace(passing(), slo=few))
    assert outcomes(result)["slo"] == "inconclusive"
    assert "recorded daily SLO checks" in result.item("slo").reason
    assert result.item("slo").evidence["source"] == "recorded"
    failed = SloFacts(days(d3=DayFact(3, "fail")))
    assert outcomes(evaluate(replace(passing(), slo=failed)))["slo"] == "fail"


def test_a_missed_slo_fails_and_no_data_is_inconclusive() -> None:
    segment = {"start": t(0), "end": t(60), "seconds": 60.0, "insufficient": None,
               "values": {"rtt_p95": 420.0}, "verdicts": {"rtt_p95": False}}
    missed = SloFacts(days(), (segment,), 60.0, 60.0)
    result = evaluate(replace(passing(), slo=missed))
    assert outcomes(result)["slo"] == "fail" and "rtt_p95 = 420.0" in result.item("slo").reason


def test_too_few_orders_is_no_verdict_and_too_little_judged_time_is_inconclusive() -> None:
    # day 1 09:00, seconds after start: a handful of slow warm-up orders is not a breach
    warmup = {"start": t(0), "end": t(5), "seconds": 5.0, "orders": 4.0,
              "insufficient": "insufficient data: 4 order(s) decided, fewer than 20",
              "values": {"rtt_p95": 900.0}, "verdicts": {"rtt_p95": None}}
    later = {"start": t(5), "end": t(100), "seconds": 95.0, "orders": 300.0,
             "insufficient": None, "values": {"rtt_p95": 200.0},
             "verdicts": {"rtt_p95": True}}
    judged = evaluate(replace(passing(), slo=SloFacts(days(), (warmup, later), 100.0, 95.0)))
    assert outcomes(judged)["slo"] == "pass"
    assert judged.item("slo").evidence["covered_share"] == 0.95
    thin = evaluate(replace(passing(), slo=SloFacts(days(), (warmup,), 100.0, 0.0)))
    assert outcomes(thin)["slo"] == "inconclusive"
    assert "enough orders to judge" in thin.item("slo").reason


def test_incidents() -> None:
    real = evaluate(replace(passing(), incidents=IncidentFacts(True, "x", major=1)))
    assert outcomes(real)["incidents"] == "fail"
    # the reason names what opened, so a failed gate says which alert to look at
    named = tuple(f"SEV2 TreatyFillRateLow opened 10:0{n}:00Z" for n in range(5))
    five = evaluate(replace(passing(), incidents=IncidentFacts(True, "x", 5, named=named)))
    assert five.item("incidents").reason == (
        "5 SEV1/SEV2 incident(s): SEV2 TreatyFillRateLow opened 10:00:00Z; SEV2 "
        "TreatyFillRateLow opened 10:01:00Z; SEV2 TreatyFillRateLow opened 10:02:00Z; 2 more")
    stray = evaluate(replace(passing(), incidents=IncidentFacts(True, "x", 0, ("INC-1",))))
    assert outcomes(stray)["incidents"] == "fail"
    gone = evaluate(replace(passing(), incidents=IncidentFacts(False, "no store")))
    assert outcomes(gone)["incidents"] == "inconclusive"


def test_governance_alerts_runbook_and_ledger() -> None:
    unsigned = SingleFact("fail", ("the governance report was not signed",))
    assert outcomes(evaluate(replace(passing(), governance=unsigned)))["governance"] == "fail"
    facts = passing()
    broken = replace(facts.alerts, promtool_ok=False)
    assert outcomes(evaluate(replace(facts, alerts=broken)))["alerts"] == "fail"
    no_drill = replace(facts.alerts, drills={})
    assert outcomes(evaluate(replace(facts, alerts=no_drill)))["alerts"] == "inconclusive"
    failed = {"rollback": SingleFact("fail", ("restore refused",)),
              "restore": SingleFact("pass")}
    assert outcomes(evaluate(replace(facts, runbook=failed)))["runbook"] == "fail"
    tampered = replace(facts.ledger, audit_ok=False, audit_detail="AUDIT LOG TAMPERED: leaf 3")
    result = evaluate(replace(facts, ledger=tampered))
    assert outcomes(result)["ledger"] == "fail" and "leaf 3" in result.item("ledger").reason
    forked = replace(facts.ledger, proof_ok=False, proof_detail="proof does not verify")
    assert outcomes(evaluate(replace(facts, ledger=forked)))["ledger"] == "fail"


def test_rpo_counts_the_largest_gap_of_soak_clock() -> None:
    assert rpo_gaps([0, 900, 1800], (0, 2000)) == [900, 900, 0, 200]
    late = judge_rpo(RpoFacts((0.0, 900.0, 2000.0), (0.0, 2000.0), True))
    assert late.outcome == "fail" and "18.3 min" in late.reason
    edge = judge_rpo(RpoFacts((600.0, 1500.0), (0.0, 1500.0), True))
    assert edge.outcome == "pass"
    few = judge_rpo(RpoFacts((0.0,), (0.0, 10.0), False))
    assert few.outcome == "inconclusive"
    assert judge_rpo(RpoFacts((0.0,), (0.0, 10.0), True)).outcome == "fail"


def test_no_items_is_never_a_pass() -> None:
    assert GateResult(()).outcome == "inconclusive"
