"""The schedule and the soak clock (pure)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from aurora.soak.clock import CompressedClock, WallClock
from aurora.soak.schedule import (
    DAILY,
    GOVERNANCE,
    RPO_BACKUP,
    PlanError,
    SoakPlan,
    build_schedule,
    rituals,
)

START = date(2025, 10, 22)  # the seed's start date


def plan(**fields: object) -> SoakPlan:
    return SoakPlan(**{"soak_id": "s1", "start_date": START, **fields})  # type: ignore[arg-type]


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(START + timedelta(days=day - 1), time(hh, mm), tzinfo=UTC)


def test_seven_days_of_the_seeds_rituals_and_hour_72() -> None:
    slots = build_schedule(plan(drills=()))
    assert len(slots) == 7 * len(DAILY) + 1
    day3 = [(s.at, s.task) for s in slots if s.day == 3]
    assert day3 == [(at(3, 9), "smoke"), (at(3, 9), "backup"), (at(3, 9), "slo-check"),
                    (at(3, 12), "metrics-check"), (at(3, 12), "anomaly-check"),
                    (at(3, 18), "daily-report"), (at(3, 18), "archive"),
                    (at(3, 23, 59), "health-check"), (at(3, 23, 59), "verify-audit")]
    governance = [s for s in slots if s.task == GOVERNANCE]
    assert [(s.at, s.day, s.key) for s in governance] == [(at(4, 0), 4, "h72/governance-72h")]
    assert slots.index(governance[0]) == 3 * len(DAILY)  # after day 3, before day 4
    assert slots[0].datestamp == "20251022" and slots[-1].datestamp == "20251028"


def test_keys_are_unique_and_stable() -> None:
    first = build_schedule(plan())
    again = build_schedule(SoakPlan.from_json(plan().to_json()))
    assert [s.key for s in first] == [s.key for s in again]
    assert len({s.key for s in first}) == len(first)


def test_drills_sit_between_rituals_and_only_within_the_soak() -> None:
    slots = build_schedule(plan())
    drills = [(s.day, s.at.time(), s.task) for s in slots if s.task.startswith("drill")]
    assert drills == [(2, time(14), "drill-alert-fill"), (3, time(15), "drill-restore"),
                      (5, time(14), "drill-alert-latency"), (6, time(15), "drill-rollback")]
    short = build_schedule(plan(days=3))
    assert [s.task for s in short if s.task.startswith("drill")] == [
        "drill-alert-fill", "drill-restore"]
    assert not any(s.task == GOVERNANCE for s in build_schedule(plan(days=2)))


def test_periodic_backups_every_15_minutes_of_soak_clock() -> None:
    slots = build_schedule(plan(days=2, rpo_every_s=900.0, drills=()))
    backups = sorted([s.at for s in slots if s.task in (RPO_BACKUP, "backup")])
    gaps = {b - a for a, b in zip(backups, backups[1:], strict=False)}
    assert gaps == {timedelta(minutes=15)}
    assert backups[0] == at(1, 9) and backups[-1] == at(3, 0)  # through the last night
    assert not any(s.task == RPO_BACKUP and s.at.time() == time(9) for s in slots)
    assert len(rituals(slots)) == 2 * len(DAILY)


@pytest.mark.parametrize("fields", [
    {"soak_id": "bad id"}, {"days": 0}, {"mode": "compressed"}, {"rpo_every_s": 10.0},
    {"drills": ("meteor",)},
])
def test_bad_plans_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(PlanError):
        plan(**fields)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_compressed_clock_runs_a_day_in_n_seconds() -> None:
    mono = FakeMonotonic()
    clock = CompressedClock(at(1, 8, 59), day_seconds=12.0, monotonic=mono)
    assert clock.speed == 7200.0
    mono.now += 1.0
    assert clock.now() == at(1, 8, 59) + timedelta(hours=2)
    assert clock.real_seconds_until(at(1, 12, 59)) == pytest.approx(1.0)


def test_the_clock_waits_at_the_next_slot_for_an_overrunning_task() -> None:
    mono = FakeMonotonic()
    clock = CompressedClock(at(1, 9), day_seconds=12.0, monotonic=mono)
    clock.hold(at(1, 9, 15))  # a task runs; the next one is due at 09:15
    mono.now += 3.0  # the task takes 3 s: six soak hours at this speed
    assert clock.now() == at(1, 9, 15)  # never past the slot that has not started
    readings = [clock.now() for _ in range(3)]
    assert readings == sorted(readings)
    assert clock.stalled == pytest.approx(3.0 - 900 / 7200)
    clock.hold(at(1, 9, 30))  # the 09:15 task starts: time moves again from 09:15
    mono.now += 0.0625
    assert clock.now() == at(1, 9, 22) + timedelta(seconds=30)
    assert clock.stalled == pytest.approx(3.0 - 900 / 7200)


def test_a_stall_before_the_barrier_moves_is_not_lost() -> None:
    mono = FakeMonotonic()
    clock = CompressedClock(at(1, 9), day_seconds=12.0, monotonic=mono)
    clock.hold(at(1, 9, 15))
    mono.now += 2.0  # nobody reads the clock meanwhile
    clock.hold(None)  # settles the stall first
    assert clock.now() == at(1, 9, 15)


def test_wall_clock_is_utc_now() -> None:
    fixed = at(2, 10)
    clock = WallClock(lambda: fixed)
    clock.hold(at(1, 9))  # the wall clock waits for nobody
    assert clock.now() == fixed and clock.speed == 1.0 and clock.stalled == 0.0
    assert clock.real_seconds_until(at(2, 11)) == 3600.0
    assert clock.real_seconds_until(at(1, 9)) == 0.0


def test_a_rehearsal_day_is_longer_with_the_ledger_in_postgresql(tmp_path: Path) -> None:
    from aurora.home import Home
    from aurora.soak.rehearsal import (
        DEFAULT_DAY_SECONDS,
        POSTGRES_DAY_SECONDS,
        default_day_seconds,
    )
    from support import make_home

    home = Home(make_home(tmp_path / "a", database_url=""))
    assert default_day_seconds(home) == DEFAULT_DAY_SECONDS
    stack = home.config_dir / "stack.json"
    stack.write_text(json.dumps({**json.loads(stack.read_text()),
                                 "database_url": "postgresql://aurora@127.0.0.1:5432/aurora"}))
    assert default_day_seconds(home) == POSTGRES_DAY_SECONDS > DEFAULT_DAY_SECONDS
