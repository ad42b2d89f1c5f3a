"""The orchestrator: runs a soak's schedule on its clock and records every task.

One task at a time, in schedule order. Before a task runs, a ``started`` entry goes to the
ledger; after it, a ``finished`` one with its outcome, digests and detail. On a restart the
recorded state decides what is left: finished tasks are never rerun, interrupted ones are
named and rerun as their next attempt, and nothing is skipped — a task whose time has
passed runs late (wall clock) or holds the soak clock until it has run (compressed).
Only one orchestrator runs a soak at a time (an advisory lock under ``ops/run/``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from aurora.config import load_stack
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.priority import as_housekeeping
from aurora.soak import tasks
from aurora.soak.clock import CompressedClock, SoakClock, WallClock
from aurora.soak.evidence import EvidenceLog, SoakNotFound, digest, load_state
from aurora.soak.governance import governance
from aurora.soak.schedule import GOVERNANCE, RPO_BACKUP, Slot, SoakPlan, first_task_time
from aurora.soak.spans import Timing
from aurora.soak.state import FAIL, PASS, SoakState, Started, TaskRecord
from aurora.wire import format_rfc3339, utc_now

LEAD = timedelta(minutes=1)  # a compressed clock starts this long before the first task
WAIT_CHUNK_S = 30.0  # long waits re-read the clock (suspend, clock steps)


class SoakBusy(AuroraError):
    exit_code = 2


class Hooks(Protocol):
    def info(self, text: str) -> None: ...

    def task_started(self, slot: Slot, attempt: int, state: SoakState,
                     clock: SoakClock) -> None: ...

    def task_finished(self, slot: Slot, record: TaskRecord, state: SoakState) -> None: ...

    def line(self, text: str) -> None: ...


class QuietHooks:
    """Hooks that only pass information lines on (tests, non-interactive runs)."""

    def __init__(self, emit: Callable[[str], None] = lambda _: None) -> None:
        self.emit = emit

    def info(self, text: str) -> None:
        self.emit(text)

    def task_started(self, slot: Slot, attempt: int, state: SoakState,
                     clock: SoakClock) -> None:
        pass

    def task_finished(self, slot: Slot, record: TaskRecord, state: SoakState) -> None:
        if record.task != RPO_BACKUP or not record.passed:
            self.emit(f"day {record.day} {record.scheduled:%H:%M} {record.task}: "
                      f"{record.status} — {record.summary}")

    def line(self, text: str) -> None:
        pass


def _alert_drill(ctx: tasks.TaskContext) -> tasks.TaskOutcome:
    from aurora.drills.soak import run_drill

    spec = ctx.slot.drill
    assert spec is not None and spec.alert is not None
    passed, summary, detail = run_drill(ctx.home, spec.alert, ctx.timing, ctx.say)
    return tasks.TaskOutcome(passed, summary, detail=detail)


def _procedure_drill(kind: str) -> tasks.Task:
    def run(ctx: tasks.TaskContext) -> tasks.TaskOutcome:
        from aurora.drills.procedures import restore_drill, rollback_drill

        report = (rollback_drill if kind == "rollback" else restore_drill)(ctx.home, ctx.say)
        summary = (f"{kind} drill passed; ledger verified afterwards"
                   + (f"; a restore now would lose {report.rpo.get('orders_lost')} order(s)"
                      if report.rpo else "")) if report.passed else \
            f"{kind} drill failed: {report.failure}"
        return tasks.TaskOutcome(report.passed, summary,
                                 detail={"drill": report.to_json(),
                                         "ledger_seq": report.ledger_seq})
    return run


TASKS: dict[str, tasks.Task] = {
    "smoke": tasks.smoke,
    "backup": tasks.daily_backup,
    "slo-check": tasks.slo_check,
    "metrics-check": tasks.metrics_check,
    "anomaly-check": tasks.anomaly_check,
    "daily-report": tasks.daily_report,
    "archive": tasks.archive,
    "health-check": tasks.health_check,
    "verify-audit": tasks.verify_audit,
    GOVERNANCE: governance,
    RPO_BACKUP: tasks.rpo_backup,
    "drill-alert-fill": _alert_drill,
    "drill-alert-latency": _alert_drill,
    "drill-restore": _procedure_drill("restore"),
    "drill-rollback": _procedure_drill("rollback"),
}
# Tasks that read the ledger and write files, starting no service: they run at housekeeping
# priority (aurora.priority) so that they never compete with the stack being soaked. The
# smoke test and the drills keep the runner's: they measure the stack or restart its services.
HOUSEKEEPING = frozenset({"backup", RPO_BACKUP, "daily-report", "archive", "health-check",
                          "verify-audit", GOVERNANCE})


@contextlib.contextmanager
def soak_lock(home: Home, soak_id: str) -> Iterator[None]:
    """One orchestrator per soak; released by the kernel if the process dies."""
    home.run_dir.mkdir(parents=True, exist_ok=True)
    path = home.run_dir / f"soak-{soak_id}.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise SoakBusy(f"soak {soak_id} is already being run (pid {fh.read().strip() or '?'})"
                           ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_running(home: Home, soak_id: str) -> bool:
    path = home.run_dir / f"soak-{soak_id}.lock"
    if not path.exists():
        return False
    with open(path) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def make_clock(plan: SoakPlan, sim_start: datetime,
               monotonic: Callable[[], float] = time.monotonic) -> SoakClock:
    if plan.mode == "compressed":
        assert plan.day_seconds is not None
        return CompressedClock(sim_start, plan.day_seconds, monotonic)
    return WallClock()


@dataclass
class Runner:
    home: Home
    plan: SoakPlan
    hooks: Hooks
    stop: threading.Event
    gnupghome: Path | None = None
    key_id: str | None = None  # signs the hour-72 report (None: it stays unsigned)

    def run(self) -> SoakState:
        with soak_lock(self.home, self.plan.soak_id), \
                EvidenceLog(self.home, self.plan.soak_id) as log:
            state, clock = self._open(log)
            pending = state.pending()
            for index, slot in enumerate(pending):
                clock.hold(slot.at)
                if not self._wait(clock, slot.at):
                    self.hooks.info(f"stopped before {slot.key}; `aurora soak` resumes it")
                    return state
                # read while the clock is still held at this slot: a compressed task then
                # starts exactly at its slot (a real millisecond is minutes of soak clock)
                started = (utc_now(), clock.now())
                clock.hold(pending[index + 1].at if index + 1 < len(pending) else None)
                self._run_slot(log, state, clock, slot, started)
            if state.ended is None and not state.pending():
                state.ended = utc_now()
                log.end(state.ended, clock.now(), {"stalled_s": round(clock.stalled, 3)})
            return state

    def _open(self, log: EvidenceLog) -> tuple[SoakState, SoakClock]:
        try:
            state = load_state(log.ledger, self.plan.soak_id)
        except SoakNotFound:
            state = None
        if state is None:
            clock = make_clock(self.plan, first_task_time(self.plan) - LEAD)
            log.begin(self.plan, utc_now(), clock.now())
            state = load_state(log.ledger, self.plan.soak_id)
            self.hooks.info(f"soak {self.plan.soak_id} begins: {self.plan.days} day(s) from "
                            f"{self.plan.start_date}, {len(state.schedule())} tasks")
            return state, clock
        self.plan = state.plan  # the recorded plan decides what the soak is
        clock = make_clock(self.plan, state.last_sim_time())
        if state.ended is not None:
            self.hooks.info(f"soak {state.soak_id} already ended ({state.ended:%Y-%m-%d %H:%M})")
            return state, clock
        interrupted = [s.key for s in state.interrupted]
        log.resume(utc_now(), clock.now(), interrupted)
        done = len(state.finished)
        self.hooks.info(f"resuming soak {state.soak_id}: {done} task(s) done, "
                        f"{len(state.pending())} to go" + (
                            f"; interrupted, to be rerun: {', '.join(interrupted)}"
                            if interrupted else ""))
        if any("drill-alert" in key for key in interrupted):
            self._clear_faults()
        return state, clock

    def _clear_faults(self) -> None:
        from aurora.drills.soak import clear_faults

        try:
            clear_faults(self.home)
            self.hooks.info("cleared the fault an interrupted alert drill may have left")
        except AuroraError as exc:
            self.hooks.info(f"could not clear faults: {exc}")

    def _wait(self, clock: SoakClock, until: datetime) -> bool:
        while (left := clock.real_seconds_until(until)) > 0:
            if self.stop.wait(min(left, WAIT_CHUNK_S)):
                return False
        return not self.stop.is_set()

    def _run_slot(self, log: EvidenceLog, state: SoakState, clock: SoakClock, slot: Slot,
                  started: tuple[datetime, datetime]) -> TaskRecord:
        earlier = state.started.get(slot.key, [])
        attempt = len(earlier) + 1
        real_start, sim_start = started
        receipt = log.started(slot, attempt, real_start, sim_start,
                              earlier[-1].seq if earlier else None)
        state.started.setdefault(slot.key, []).append(
            Started(receipt.leaf_index, slot.key, attempt, real_start, sim_start))
        self.hooks.task_started(slot, attempt, state, clock)
        ctx = tasks.TaskContext(self.home, load_stack(self.home), self.plan, state, slot, clock,
                                Timing.of(self.plan), log, self.gnupghome, self.key_id,
                                on_line=self.hooks.line)
        began = time.perf_counter()
        try:
            task = TASKS[slot.task]
            outcome = as_housekeeping(lambda: task(ctx)) if slot.task in HOUSEKEEPING \
                else task(ctx)
        except AuroraError as exc:
            ctx.say(f"error: {exc}")
            outcome = tasks.TaskOutcome(False, str(exc), detail={"error": str(exc)})
        except Exception as exc:  # a bug in a task must not end the soak: it is a failure
            ctx.say(f"error: internal: {type(exc).__name__}: {exc}")
            outcome = tasks.TaskOutcome(False, f"internal error: {type(exc).__name__}: {exc}",
                                        detail={"error": f"{type(exc).__name__}: {exc}"})
        duration = time.perf_counter() - began
        data = self._finished_data(slot, ctx, outcome, attempt, real_start, sim_start, clock,
                                   duration)
        finished = log.finished(slot, data)
        record = TaskRecord.from_data(finished.leaf_index, {
            **data, "key": slot.key, "day": slot.day, "task": slot.task,
            "scheduled": format_rfc3339(slot.at)})
        state.finished[slot.key] = record
        self.hooks.task_finished(slot, record, state)
        return record

    def _finished_data(self, slot: Slot, ctx: tasks.TaskContext, outcome: tasks.TaskOutcome,
                       attempt: int, real_start: datetime, sim_start: datetime,
                       clock: SoakClock, duration: float) -> dict[str, Any]:
        log_path = outcome.log_path
        if log_path is None:
            log_path = (self.home.logs_dir / "soak" / self.plan.soak_id /
                        f"{slot.key.replace('/', '-')}.log")
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text("\n".join(ctx.lines) + "\n", encoding="utf-8")
        log_digest = digest(self.home, log_path)
        files = [digest(self.home, p).to_json() for p in outcome.files if p.exists()]
        missing = [str(p) for p in outcome.files if not p.exists()]
        real_end = utc_now()
        late = (real_start - slot.at).total_seconds() if clock.speed == 1.0 else \
            (sim_start - slot.at).total_seconds()
        return {
            "attempt": attempt, "status": PASS if outcome.passed else FAIL,
            "real_start": format_rfc3339(real_start), "real_end": format_rfc3339(real_end),
            "sim_start": format_rfc3339(sim_start), "sim_end": format_rfc3339(clock.now()),
            "duration_s": round(duration, 3), "late_s": round(max(late, 0.0), 3),
            "stalled_s": round(clock.stalled, 3), "output_sha256": log_digest.sha256,
            "log": log_digest.path, "files": files, "missing_files": missing,
            "summary": outcome.summary[:500], "detail": outcome.detail,
        }
