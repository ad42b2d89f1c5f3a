"""The soak's plan and its schedule: which task runs at which soak-clock time. Pure.

A soak starts at 00:00 UTC of its start date (``t0``). Every day has the seed's four
rituals — 09:00 smoke, ledger backup, SLO check; 12:00 metrics endpoint and anomaly checks;
18:00 daily report and metrics archive; 23:59 health check and verify-audit — and hour 72
(``t0 + 72h``) has the signed governance bundle. Drills (alert drills that inject a fault,
a restore and a rollback drill) sit at fixed times on fixed days. With ``rpo_every_s`` the
orchestrator also takes a ledger backup at that interval of soak clock (the compressed
rehearsal, where the stack's own 15-minute loop cannot keep up with the clock).

Every slot has a key unique within the soak (``d3/0900/smoke``): the ledger records tasks
by key, which is how a restarted soak knows what already ran.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from aurora.errors import AuroraError

Mode = Literal["wall", "compressed"]
DAY = timedelta(days=1)
HOUR72 = timedelta(hours=72)
REQUIRED_DAYS = 7  # the Day-7 checklist
RPO_SECONDS = 15 * 60

# (time of day, task), in the order the seed lists them.
DAILY: tuple[tuple[time, str], ...] = (
    (time(9, 0), "smoke"),
    (time(9, 0), "backup"),
    (time(9, 0), "slo-check"),
    (time(12, 0), "metrics-check"),
    (time(12, 0), "anomaly-check"),
    (time(18, 0), "daily-report"),
    (time(18, 0), "archive"),
    (time(23, 59), "health-check"),
    (time(23, 59), "verify-audit"),
)
GOVERNANCE = "governance-72h"
RPO_BACKUP = "rpo-backup"


@dataclass(frozen=True)
class DrillSpec:
    name: str
    task: str
    day: int
    at: time
    alert: str | None = None  # alert drills: the alert the injected fault must fire


# Placed away from the rituals (14:00/15:00), so that a fault never overlaps a smoke test
# or an SLO check, and the alert drills before and after hour 72.
DRILLS: dict[str, DrillSpec] = {
    "fill": DrillSpec("fill", "drill-alert-fill", 2, time(14, 0), "TreatyFillRateLow"),
    "restore": DrillSpec("restore", "drill-restore", 3, time(15, 0)),
    "latency": DrillSpec("latency", "drill-alert-latency", 5, time(14, 0), "TreatyRttP95High"),
    "rollback": DrillSpec("rollback", "drill-rollback", 6, time(15, 0)),
}
DRILL_TASKS = {spec.task: spec for spec in DRILLS.values()}

SOAK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PlanError(AuroraError):
    """A soak plan that cannot run (bad dates, days, ids)."""

    exit_code = 2


@dataclass(frozen=True)
class SoakPlan:
    """Everything that defines a soak; recorded in its first ledger entry."""

    soak_id: str
    start_date: date
    days: int = REQUIRED_DAYS
    mode: Mode = "wall"
    day_seconds: float | None = None  # compressed: one soak day in this many real seconds
    rpo_every_s: float | None = None  # the orchestrator's own backups (soak-clock seconds)
    drills: tuple[str, ...] = tuple(DRILLS)
    key_id: str | None = None  # GnuPG key for the governance report
    treaty_id: str = "AURORA-AKASH-001"
    extra: dict[str, Any] = field(default_factory=dict)  # recorded as is (e.g. stack pids)

    def __post_init__(self) -> None:
        if not SOAK_ID.match(self.soak_id):
            raise PlanError(f"soak id {self.soak_id!r} must match {SOAK_ID.pattern}")
        if not 1 <= self.days <= 31:
            raise PlanError(f"--days {self.days}: a soak lasts 1 to 31 days")
        if self.mode == "compressed" and not (self.day_seconds and self.day_seconds > 0):
            raise PlanError("a compressed soak needs --day-seconds > 0")
        if self.rpo_every_s is not None and self.rpo_every_s < 60:
            raise PlanError("the orchestrator's backup interval is at least 1m of soak clock")
        unknown = [d for d in self.drills if d not in DRILLS]
        if unknown:
            raise PlanError(f"unknown drill(s) {', '.join(unknown)}; known: {', '.join(DRILLS)}")

    @property
    def t0(self) -> datetime:
        return datetime.combine(self.start_date, time(0, 0), tzinfo=UTC)

    @property
    def speed(self) -> float:
        """Soak-clock seconds per real second."""
        return 86400.0 / self.day_seconds if self.mode == "compressed" and self.day_seconds \
            else 1.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start_date"] = self.start_date.isoformat()
        data["drills"] = list(self.drills)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SoakPlan:
        try:
            return cls(soak_id=str(data["soak_id"]),
                       start_date=date.fromisoformat(str(data["start_date"])),
                       days=int(data["days"]), mode=data["mode"],
                       day_seconds=data.get("day_seconds"), rpo_every_s=data.get("rpo_every_s"),
                       drills=tuple(data.get("drills") or ()), key_id=data.get("key_id"),
                       treaty_id=str(data.get("treaty_id") or "AURORA-AKASH-001"),
                       extra=dict(data.get("extra") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"recorded soak plan is unreadable: {exc}") from None


@dataclass(frozen=True, order=True)
class Slot:
    """One task at one soak-clock time. Ordered by time, then by the seed's order."""

    at: datetime
    order: int
    key: str = field(compare=False)
    day: int = field(compare=False)
    task: str = field(compare=False)

    @property
    def datestamp(self) -> str:
        """``YYYYMMDD`` of the soak clock: the seed's ``$(date +%Y%m%d)``."""
        return self.at.strftime("%Y%m%d")

    @property
    def drill(self) -> DrillSpec | None:
        return DRILL_TASKS.get(self.task)


def slot_key(day: int, at: datetime, task: str) -> str:
    return f"d{day}/{at:%H%M}/{task}"


def day_of(plan: SoakPlan, at: datetime) -> int:
    """1-based soak day of a soak-clock time (hour 72 belongs to day 4)."""
    return (at - plan.t0) // DAY + 1


def first_task_time(plan: SoakPlan) -> datetime:
    return datetime.combine(plan.start_date, DAILY[0][0], tzinfo=UTC)


def end_time(plan: SoakPlan) -> datetime:
    """When the soak's days are over: 00:00 after the last day."""
    return plan.t0 + plan.days * DAY


def _rpo_slots(plan: SoakPlan, daily_backups: set[datetime], order: int) -> Iterable[Slot]:
    if plan.rpo_every_s is None:
        return
    step = timedelta(seconds=plan.rpo_every_s)
    at = first_task_time(plan)
    # through the end of the last day inclusive, so the last night's checks are covered too
    while at <= end_time(plan):
        if at not in daily_backups:
            yield Slot(at, order, slot_key(day_of(plan, at), at, RPO_BACKUP), day_of(plan, at),
                       RPO_BACKUP)
        at += step


def build_schedule(plan: SoakPlan) -> list[Slot]:
    """Every slot of the soak, in the order the orchestrator runs them."""
    slots: list[Slot] = []
    daily_backups: set[datetime] = set()
    for day in range(1, plan.days + 1):
        date_ = plan.start_date + timedelta(days=day - 1)
        for order, (at_time, task) in enumerate(DAILY):
            at = datetime.combine(date_, at_time, tzinfo=UTC)
            slots.append(Slot(at, order, slot_key(day, at, task), day, task))
            if task == "backup":
                daily_backups.add(at)
    if plan.days * DAY >= HOUR72:
        at = plan.t0 + HOUR72
        # before anything else at that minute: it reports on the three days just ended
        slots.append(Slot(at, -1, f"h72/{GOVERNANCE}", day_of(plan, at), GOVERNANCE))
    for name in plan.drills:
        spec = DRILLS[name]
        if spec.day <= plan.days:
            at = datetime.combine(plan.start_date + timedelta(days=spec.day - 1), spec.at,
                                  tzinfo=UTC)
            slots.append(Slot(at, len(DAILY), slot_key(spec.day, at, spec.task), spec.day,
                              spec.task))
    # rpo backups sort after a ritual at the same minute (they never coincide with 09:00)
    slots.extend(_rpo_slots(plan, daily_backups, len(DAILY) + 1))
    slots.sort()
    keys = [s.key for s in slots]
    assert len(keys) == len(set(keys)), "slot keys must be unique"
    return slots


def rituals(slots: Iterable[Slot]) -> list[Slot]:
    """The slots an operator reads in a status table (periodic backups left out)."""
    return [s for s in slots if s.task != RPO_BACKUP]
