"""The orchestrator with stand-in tasks on a real ledger: evidence, the compressed clock,
and resumption after an interruption (no stack needed)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from aurora.home import Home
from aurora.ledger import Ledger
from aurora.priority import HOUSEKEEPING_NICE
from aurora.soak import runner
from aurora.soak.evidence import load_state
from aurora.soak.runner import QuietHooks, Runner
from aurora.soak.schedule import SoakPlan
from aurora.soak.tasks import TaskContext, TaskOutcome

PLAN = SoakPlan("unit", date(2026, 1, 1), days=1, mode="compressed", day_seconds=2.0,
                rpo_every_s=3600.0, drills=())
CUT_OFF = "d1/1200/metrics-check"


class StandIns:
    """A task per name that records its calls; one of them is cut off once."""

    def __init__(self, cut_off: str | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.cut_off = cut_off

    def __call__(self, ctx: TaskContext) -> TaskOutcome:
        self.calls[ctx.slot.key] += 1
        ctx.say(f"ran {ctx.slot.key}")
        if ctx.slot.key == self.cut_off:
            self.cut_off = None
            raise KeyboardInterrupt  # the process dies mid-task: no outcome recorded
        out = ctx.home.root / f"{ctx.slot.task}.out"
        out.write_text(ctx.slot.key)
        return TaskOutcome(True, "ok", [out], {"key": ctx.slot.key})


def run(home: Home, tasks: StandIns, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "TASKS", {name: tasks for name in runner.TASKS})
    Runner(home, PLAN, QuietHooks(), threading.Event()).run()


def test_every_task_is_recorded_with_digests(home: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = StandIns()
    run(Home(home), tasks, monkeypatch)
    with Ledger.open(home, readonly=True) as ledger:
        state = load_state(ledger, "unit")
    assert state.ended is not None and state.pending() == []
    assert set(tasks.calls.values()) == {1}
    record = state.finished["d1/0900/smoke"]
    assert record.passed and record.output_sha256 and record.files[0].path == "smoke.out"
    assert record.log == "logs/soak/unit/d1-0900-smoke.log"
    # the clock held at each slot: every task started exactly on its soak time
    assert all(r.sim_start == r.scheduled for r in state.records())


def test_an_interrupted_task_is_rerun_and_nothing_else(home: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = StandIns(cut_off=CUT_OFF)
    with pytest.raises(KeyboardInterrupt):
        run(Home(home), tasks, monkeypatch)
    before = dict(tasks.calls)
    with Ledger.open(home, readonly=True) as ledger:
        cut = load_state(ledger, "unit")
    assert [s.key for s in cut.interrupted] == [CUT_OFF]
    run(Home(home), tasks, monkeypatch)  # the restart
    with Ledger.open(home, readonly=True) as ledger:
        state = load_state(ledger, "unit")
    assert state.ended is not None and state.duplicates == []
    assert set(state.finished) == {s.key for s in state.schedule()}  # nothing lost
    assert tasks.calls[CUT_OFF] == 2 and state.finished[CUT_OFF].attempt == 2
    assert all(tasks.calls[k] == 1 for k in before if k != CUT_OFF)  # nothing repeated
    assert state.resumes == 1


def test_a_finished_soak_is_not_run_again(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = StandIns()
    run(Home(home), tasks, monkeypatch)
    run(Home(home), tasks, monkeypatch)
    assert set(tasks.calls.values()) == {1}


def test_one_orchestrator_per_soak(home: Path) -> None:
    with runner.soak_lock(Home(home), "unit"):
        assert runner.is_running(Home(home), "unit")
        with pytest.raises(runner.SoakBusy), runner.soak_lock(Home(home), "unit"):
            pass
    assert not runner.is_running(Home(home), "unit")


def test_housekeeping_runs_below_the_stack_and_the_smoke_test_does_not(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Backups, reports, archives and audits yield the CPU to the stack being soaked; the
    smoke test (which measures the stack) and the drills (which restart its services, who
    would inherit a lowered priority) keep the runner's."""
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: dict[str, int] = {}

    class Recording(StandIns):
        def __call__(self, ctx: TaskContext) -> TaskOutcome:
            seen[ctx.slot.task] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            return super().__call__(ctx)

    run(Home(home), Recording(), monkeypatch)
    lowered = min(19, base + HOUSEKEEPING_NICE)
    assert {t for t, n in seen.items() if n == lowered} >= {"backup", "daily-report", "archive",
                                                            "health-check", "verify-audit"}
    assert seen["smoke"] == base and seen["slo-check"] == base
