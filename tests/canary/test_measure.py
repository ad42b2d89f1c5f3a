"""One step's measurements from ledger rows; the deploy entries that record them; replay."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aurora.bridge.service import Attempt
from aurora.canary.analysis import Decision, HardGates, Thresholds, judge
from aurora.canary.evidence import (
    EvidenceError,
    history,
    measurement_entry,
    start_entry,
    verdict_entry,
)
from aurora.canary.gates import measure_gates, queries
from aurora.canary.measure import Window, baseline, measure, measure_step
from aurora.canary.plan import Phase, Plan, advance, bucket_of, check_split, start
from aurora.cli import app
from aurora.command import run_app
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.ledger import Entry, Ledger
from aurora.slo.prometheus import Sample

TREATY = "AURORA-AKASH-001"
TENANTS = [f"tenant-{i:02d}" for i in range(80)]


@dataclass(frozen=True)
class FakeRow:
    ts: str
    kind: str
    tenant_id: str | None
    data: Any
    seq: int = 0
    subject: str | None = None


def _order(tenant: str, i: int, *, rtt: float, dropped: bool = False) -> Entry:
    attempts = [Attempt("akash", "H100", "timeout" if dropped else "acked", rtt).to_json()]
    route = {"candidates": ["akash"], "attempts": attempts}
    if dropped:
        return Entry("drop", {"order": {}, "route": route, "reason": "every candidate failed",
                              "policy_ms": 0.5}, TREATY, tenant, f"n-{tenant}-{i}")
    return Entry("order", {"order": {}, "ack": {}, "route": route, "rtt_ms": rtt,
                           "policy_ms": 0.5}, TREATY, tenant, f"n-{tenant}-{i}")


def _rows(minute: int, slow_canary: bool) -> list[FakeRow]:
    """Orders of every tenant at ``minute``; the 10 % canary's RTT +150 ms if slow."""
    rows = []
    for n, tenant in enumerate(TENANTS):
        rtt = 250.0 + (n * 7 + minute * 3) % 60
        if slow_canary and bucket_of(tenant) < 10:
            rtt += 150.0
        entry = _order(tenant, minute, rtt=rtt)
        rows.append(FakeRow(f"2026-12-01T10:{minute:02d}:{n:02d}.000000Z", entry.kind, tenant,
                            dict(entry.data)))
    return rows


def test_a_slower_canary_fails_rtt_against_stables_earlier_p95_and_the_query_says_how() -> None:
    before = [r for m in range(0, 10) for r in _rows(m, slow_canary=False)]
    during = [r for m in range(10, 40) for r in _rows(m, slow_canary=True)]
    base = baseline(before, stable_from=0)
    assert base["rtt_p95"] is not None and 250 < base["rtt_p95"] < 310
    window = Window("2026-12-01T10:10:00.000000Z", "2026-12-01T11:00:00.000000Z")
    result = measure(before + during, window=window, weight=10, step=0, at=window.end,
                     thresholds=Thresholds.of(), base=base)
    verdicts = {v.key: v for v in result.verdicts}
    assert verdicts["rtt_p95"].decision is Decision.FAIL
    assert verdicts["fill"].decision is not Decision.FAIL  # only latency is worse
    rtt = next(m for m in result.measurements if m.comparison == "rtt_p95")
    assert repr(base["rtt_p95"]) in rtt.query and "[0, 10)" in rtt.query and "[10, 20)" in rtt.query
    assert rtt.sample_size == verdicts["rtt_p95"].pairs > 0
    # the same rows as a good canary: no comparison fails
    good = [r for m in range(10, 40) for r in _rows(m, slow_canary=False)]
    same = measure(before + good, window=window, weight=10, step=0, at=window.end,
                   thresholds=Thresholds.of(), base=base)
    assert all(v.decision is not Decision.FAIL for v in same.verdicts)


def test_the_settling_time_after_a_weight_change_is_not_judged() -> None:
    """A canary slow only while its connections open (the step's first minutes) is no
    worse once they settle; judged from the step's first order, it would be aborted."""
    before = [r for m in range(0, 10) for r in _rows(m, slow_canary=False)]
    settling = [r for m in range(10, 20) for r in _rows(m, slow_canary=True)]
    settled = [r for m in range(20, 50) for r in _rows(m, slow_canary=False)]
    rows = before + settling + settled

    def rtt(judged_from: str) -> Decision:
        _, result = measure_step(rows, step_start="2026-12-01T10:10:00.000000Z",
                                 judged_from=judged_from, end="2026-12-01T11:00:00.000000Z",
                                 weight=10, stable_from=0, step=0, thresholds=Thresholds.of())
        return next(v for v in result.verdicts if v.key == "rtt_p95").decision

    assert rtt("2026-12-01T10:10:00.000000Z") is Decision.FAIL
    assert rtt("2026-12-01T10:20:00.000000Z") is not Decision.FAIL
    # the thresholds come from before the step either way: the settling rows never set them
    base, _ = measure_step(rows, step_start="2026-12-01T10:10:00.000000Z",
                           judged_from="2026-12-01T10:20:00.000000Z",
                           end="2026-12-01T11:00:00.000000Z", weight=10, stable_from=0,
                           step=0, thresholds=Thresholds.of())
    assert base == baseline(before, stable_from=0)


def test_a_plan_recorded_without_settle_time_is_replayed_without_one() -> None:
    from aurora.canary.evidence import plan_from, plan_json

    assert Plan().settle_s == 60.0
    recorded = plan_json(Plan(settle_s=5.0))
    assert plan_from(recorded).settle_s == 5.0
    del recorded["settle_s"]
    assert plan_from(recorded).settle_s == 0.0
    with pytest.raises(ValueError, match="negative"):
        Plan(settle_s=-1)


def test_without_rows_before_the_step_latency_is_an_error_never_a_pass() -> None:
    during = [r for m in range(10, 40) for r in _rows(m, slow_canary=False)]
    window = Window("2026-12-01T10:10:00.000000Z", "2026-12-01T11:00:00.000000Z")
    result = measure(during, window=window, weight=10, step=0, at=window.end,
                     thresholds=Thresholds.of(), base=baseline([], stable_from=0))
    decisions = {v.key: v.decision for v in result.verdicts}
    assert decisions["rtt_p95"] is Decision.ERROR and decisions["policy_p99"] is Decision.ERROR
    gates = HardGates(0, 1.0, 0)
    assert judge(gates, result.verdicts).decision is Decision.ERROR
    # at 100 % nothing is left to compare with
    assert measure(during, window=window, weight=100, step=2, at=window.end,
                   thresholds=Thresholds.of(), base={}).verdicts == ()


class Answers:
    """A Prometheus stand-in answering recorded values per query (None: the query fails)."""

    def __init__(self, values: dict[str, float | None]) -> None:
        self.values = values
        self.asked: list[str] = []

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        self.asked.append(expr)
        for key, value in self.values.items():
            if key in expr:
                if value is None:
                    raise AuroraError(f"query {expr!r} failed")
                return [Sample({}, value, 0.0)]
        return []


@pytest.mark.parametrize("values, want", [
    ({"consistency": 0.0, "provenance_coverage": 1.0, "ALERTS": 0.0}, []),
    ({"consistency": 0.4, "provenance_coverage": 1.0, "ALERTS": 0.0}, ["consistency"]),
    ({"consistency": 0.0, "provenance_coverage": 0.999, "ALERTS": 0.0}, ["provenance"]),
    ({"consistency": 0.0, "provenance_coverage": 1.0, "ALERTS": 1.0}, ["tampering"]),
])
def test_hard_gates_fail_on_any_breach(values: dict[str, float | None], want: list[str]) -> None:
    gates, measurements = measure_gates(Answers(values), window_s=600, track="canary",
                                        at="t", step=0, weight=10)
    assert [w for w in ("consistency", "provenance", "tampering")
            if any(w in f for f in gates.failures())] == want
    assert {m.comparison for m in measurements} == {
        "gate:consistency_failures", "gate:canary_provenance_coverage", "gate:tampering_alerts"}
    assert all(m.query in {q.expr for q in queries(600, "canary")} for m in measurements)


def test_a_failed_or_empty_gate_query_is_an_error_not_a_pass() -> None:
    prom = Answers({"consistency": None, "ALERTS": 0.0})  # coverage: no series at all
    gates, measurements = measure_gates(prom, window_s=600, track="canary", at="t", step=0,
                                        weight=10)
    assert gates.failures() == [] and len(gates.errors()) == 2
    assert [m.decision for m in measurements].count(Decision.ERROR) == 2
    assert any('track="canary"' in q for q in prom.asked)


def test_deploy_entries_tell_the_rollout_back_from_the_ledger(home: Path) -> None:
    plan = Plan(steps=(10, 100), hold_s=0.0, decide_within_s=10.0)
    state = start(plan, 1000.0)
    window = Window("2026-12-01T10:10:00.000000Z", "2026-12-01T11:00:00.000000Z")
    before = [r for m in range(0, 10) for r in _rows(m, slow_canary=False)]
    during = [r for m in range(10, 40) for r in _rows(m, slow_canary=True)]
    result = measure(before + during, window=window, weight=10, step=0, at=window.end,
                     thresholds=Thresholds.of(), base=baseline(before, stable_from=0))
    judgement = judge(HardGates(0, 1.0, 0), result.verdicts)
    split = check_split(30, 270, 10, plan)
    after = advance(plan, state, judgement, split, 1100.0)
    assert after.phase is Phase.ABORTED and after.weight == 0
    with Ledger.open(Home(home)) as ledger:
        ledger.append(start_entry("r1", TREATY, candidate={"dir": "/x"}, plan=plan,
                                  gate={"outcome": "pass"}, dry_run=False, sizes=[],
                                  state=state))
        for m in result.measurements:
            ledger.append(measurement_entry("r1", TREATY, m))
        ledger.append(verdict_entry("r1", TREATY, at=window.end, before=state, after=after,
                                    judgement=judgement, split=split))
        rows = list(ledger.scan(kinds="deploy"))
    told = history(rows)
    assert told.rollout == "r1" and told.state == after and told.plan == plan
    assert "rtt_p95" in told.verdicts[-1]["judgement"]["reasons"][0]
    stored = {m["comparison"]: m for m in told.measurements}
    assert stored["rtt_p95"]["decision"] == "fail" and stored["rtt_p95"]["query"]
    json.dumps(told.start)  # canonical JSON went in, plain JSON comes out
    with pytest.raises(EvidenceError, match="no canary rollout 'r2'"):
        history(rows, "r2")
    with pytest.raises(EvidenceError, match="no canary rollout"):
        history([])


def _replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_app(app, ["canary", "replay", *args], prog="aurora")
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def test_replay_judges_the_ledgers_orders_and_an_unreachable_prometheus_is_no_pass(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Ledger.open(Home(home)) as ledger:
        for future in [ledger.submit(_order(t, i, rtt=260.0, dropped=bucket_of(t) < 10))
                       for i in range(40) for t in TENANTS]:
            future.result()
    code, out, err = _replay(capsys, "--since", "1h", "--weight", "10", "--json")
    assert code == 0, err
    document = json.loads(out)
    decisions = {m["comparison"]: m["decision"] for m in document["measurements"]}
    assert decisions["fill"] == "fail"  # the canary's tenants' orders dropped
    assert decisions["rtt_p95"] == "error"  # nothing before the window to set the threshold
    assert decisions["gate:consistency_failures"] == "error"  # no Prometheus in this test
    assert document["judgement"]["decision"] == "fail"
    assert document["orders"] == 40 * len(TENANTS)


@pytest.mark.parametrize("args, message", [
    (["--since", "yesterday"], "--since"),
    (["--weight", "0"], "--weight"),
    (["--weight", "100"], "--weight"),
    (["--baseline", "-1h"], "--baseline"),
])
def test_replay_refuses_bad_options_in_one_line(home: Path, capsys: pytest.CaptureFixture[str],
                                                args: list[str], message: str) -> None:
    code, _, err = _replay(capsys, *args)
    assert code == 2 and message in err and "Traceback" not in err
