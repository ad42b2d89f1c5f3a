"""The Day-7 gate: the seed's checklist judged from collected evidence. Pure.

Three outcomes, like an Argo Rollouts analysis: ``pass`` (exit 0), ``fail`` (exit 1) and
``inconclusive`` (exit 3: too little data or an unreachable source; a person decides).
Nothing passes by default: an item passes only on positive evidence, and the gate passes
only when every item does. ``aurora.soak.collect`` gathers (and re-verifies) the facts;
this module only judges them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aurora.soak.schedule import REQUIRED_DAYS, RPO_SECONDS

Outcome = Literal["pass", "fail", "inconclusive"]
# per-day fact: pass/fail recorded, "missing" (its slot is past and nothing was recorded),
# "pending" (not due yet)
DayStatus = Literal["pass", "fail", "missing", "pending"]
EXIT_CODES: dict[Outcome, int] = {"pass": 0, "fail": 1, "inconclusive": 3}
MARKS: dict[Outcome, str] = {"pass": "✅", "fail": "❌", "inconclusive": "❔"}


@dataclass(frozen=True)
class Item:
    key: str
    title: str
    outcome: Outcome
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "outcome": self.outcome,
                "mark": MARKS[self.outcome], "reason": self.reason, "evidence": self.evidence}


@dataclass(frozen=True)
class GateResult:
    items: tuple[Item, ...]

    @property
    def outcome(self) -> Outcome:
        outcomes = [i.outcome for i in self.items]
        if "fail" in outcomes:
            return "fail"
        if not outcomes or "inconclusive" in outcomes:
            return "inconclusive"
        return "pass"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def item(self, key: str) -> Item:
        return next(i for i in self.items if i.key == key)


# --- facts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayFact:
    """One day's record of a daily task, after re-verification."""

    day: int
    status: DayStatus
    problems: tuple[str, ...] = ()  # re-verification failures: a recorded pass that no longer holds
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SloFacts:
    """The recorded daily SLO checks: each judged the time since the previous check, drill
    windows left out, from Prometheus as it was then. The gate reads only these, so its
    verdict is the same whether or not Prometheus still runs at Day 7."""

    recorded: tuple[DayFact, ...]  # each day's slo-check, its files re-verified
    segments: tuple[dict[str, Any], ...] = ()  # every segment the checks judged
    drill_free_s: float | None = None  # drill-free seconds the checks spanned (None: unknown)
    judged_s: float = 0.0  # of which in segments with enough orders for a verdict


@dataclass(frozen=True)
class IncidentFacts:
    available: bool
    detail: str
    major: int = 0  # SEV1 + SEV2, drills excluded
    stray_drill_tags: tuple[str, ...] = ()  # drill-tagged incidents outside every drill window
    evidence: dict[str, Any] = field(default_factory=dict)
    # the counted ones, as a reader names them: "SEV2 TreatyFillRateLow opened 10:29:01Z"
    named: tuple[str, ...] = ()


@dataclass(frozen=True)
class SingleFact:
    """The outcome of one scheduled task (the governance bundle, a drill)."""

    status: DayStatus
    problems: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertFacts:
    promtool_ok: bool | None  # None: promtool could not run
    promtool_detail: str
    drills: dict[str, SingleFact]  # alert name -> its drill


@dataclass(frozen=True)
class LedgerFacts:
    audit_ok: bool | None  # None: could not be audited
    audit_detail: str
    first: SingleFact  # the Day-1 checkpoint
    last: SingleFact  # the Day-7 checkpoint
    proof_ok: bool | None  # consistency proof first -> last verified
    proof_detail: str


@dataclass(frozen=True)
class RpoFacts:
    backup_times: tuple[float, ...]  # soak-clock seconds since t0 of each verified backup
    span: tuple[float, float] | None  # soak-clock seconds of the soak's first and last task
    final: bool  # the soak is over (no more backups to expect)
    orders_lost: tuple[dict[str, Any], ...] = ()  # from rollback/restore drills


@dataclass(frozen=True)
class GateFacts:
    soak_id: str
    days_planned: int
    ended: bool
    smoke: tuple[DayFact, ...]
    slo: SloFacts
    incidents: IncidentFacts
    backups: tuple[DayFact, ...]
    governance: SingleFact
    alerts: AlertFacts
    runbook: dict[str, SingleFact]  # "rollback", "restore"
    ledger: LedgerFacts
    rpo: RpoFacts


# --- judging ---------------------------------------------------------------------------------


def _days(key: str, title: str, facts: Sequence[DayFact], days_planned: int,
          what: str) -> Item:
    """N consecutive days of ``what``: every day 1..7 passed and still verifies."""
    evidence = {"days": [{"day": f.day, "status": f.status, "problems": list(f.problems),
                          **f.evidence} for f in facts]}
    bad: list[str] = []
    for f in facts:
        if f.status == "fail":
            bad.append(f"day {f.day}: {what} failed"
                       + (f" ({'; '.join(f.problems)})" if f.problems else ""))
        elif f.problems:
            bad.append(f"day {f.day}: {what} recorded as passed, but {'; '.join(f.problems)}")
    missing = [f.day for f in facts if f.status == "missing"]
    if bad or missing:
        reasons = bad + ([f"no {what} recorded for day(s) {', '.join(map(str, missing))}"]
                         if missing else [])
        return Item(key, title, "fail", "; ".join(reasons), evidence)
    good = sum(1 for f in facts if f.status == "pass")
    if days_planned < REQUIRED_DAYS:
        return Item(key, title, "inconclusive",
                    f"the soak planned {days_planned} day(s); the checklist needs "
                    f"{REQUIRED_DAYS}", evidence)
    if good < REQUIRED_DAYS:
        return Item(key, title, "inconclusive",
                    f"{good}/{REQUIRED_DAYS} days so far; the rest are not due yet", evidence)
    return Item(key, title, "pass", f"{good}/{REQUIRED_DAYS} consecutive days, re-verified",
                evidence)


MIN_JUDGED_SHARE = 0.5  # below this share of drill-free time with a verdict: too little data


def judge_slo(facts: SloFacts, days_planned: int) -> Item:
    key, title = "slo", "All SLOs met for 168 hours"
    share = (round(facts.judged_s / facts.drill_free_s, 3)
             if facts.drill_free_s else None)
    item = _days(key, title, facts.recorded, days_planned, "SLO check")
    missed = [f"{name} = {seg['values'].get(name)} in {seg['start']} .. {seg['end']}"
              for seg in facts.segments for name, ok in seg["verdicts"].items() if ok is False]
    evidence = {"source": "recorded", **item.evidence, "segments": list(facts.segments),
                "drill_free_s": facts.drill_free_s, "judged_s": round(facts.judged_s, 3),
                "covered_share": share}
    reason = item.reason + (f"; not met: {'; '.join(missed[:5])}" if missed else "")
    outcome: Outcome = "fail" if missed else item.outcome
    if outcome == "pass" and share is not None and share < MIN_JUDGED_SHARE:
        outcome = "inconclusive"
        reason = (f"only {share:.0%} of the drill-free time held enough orders to judge "
                  f"(needs {MIN_JUDGED_SHARE:.0%})")
    elif outcome == "pass" and share is not None:
        reason += f", {share:.0%} of the drill-free time judged"
    return Item(key, title, outcome, f"from the recorded daily SLO checks: {reason}", evidence)


def judge_incidents(facts: IncidentFacts) -> Item:
    key, title = "incidents", "Zero SEV1/SEV2 incidents"
    evidence = {"detail": facts.detail, "major": facts.major,
                "stray_drill_tags": list(facts.stray_drill_tags), **facts.evidence}
    if not facts.available:
        return Item(key, title, "inconclusive", f"incident record unavailable: {facts.detail}",
                    evidence)
    total = facts.major + len(facts.stray_drill_tags)
    if total:
        extra = (f" (incl. {len(facts.stray_drill_tags)} tagged as drills outside any drill "
                 "window)") if facts.stray_drill_tags else ""
        shown = "; ".join(facts.named[:3]) + (f"; {len(facts.named) - 3} more"
                                               if len(facts.named) > 3 else "")
        which = f": {shown}" if shown else ""
        return Item(key, title, "fail", f"{total} SEV1/SEV2 incident(s){extra}{which}",
                    evidence)
    return Item(key, title, "pass", f"none during the soak (drills excluded: {facts.detail})",
                evidence)


def _single(key: str, title: str, fact: SingleFact, what: str, good: str) -> Item:
    evidence = {"status": fact.status, "problems": list(fact.problems), **fact.evidence}
    if fact.status == "fail" or fact.problems:
        why = "; ".join(fact.problems) or f"{what} failed"
        return Item(key, title, "fail", why, evidence)
    if fact.status == "missing":
        return Item(key, title, "fail", f"no {what} recorded", evidence)
    if fact.status == "pending":
        return Item(key, title, "inconclusive", f"{what} not due yet", evidence)
    return Item(key, title, "pass", good, evidence)


def judge_alerts(facts: AlertFacts) -> Item:
    key, title = "alerts", "Alerts validated (rule tests + fault drills)"
    evidence = {"promtool": {"ok": facts.promtool_ok, "detail": facts.promtool_detail},
                "drills": {alert: {"status": f.status, "problems": list(f.problems),
                                   **f.evidence} for alert, f in facts.drills.items()}}
    reasons: list[str] = []
    outcome: Outcome = "pass"
    if facts.promtool_ok is False:
        outcome, reasons = "fail", [f"promtool test rules failed: {facts.promtool_detail}"]
    for alert, fact in facts.drills.items():
        item = _single(key, title, fact, f"alert drill for {alert}",
                       f"{alert} fired and resolved")
        if item.outcome == "fail":
            outcome = "fail"
            reasons.append(f"{alert}: {item.reason}")
        elif item.outcome == "inconclusive" and outcome == "pass":
            outcome = "inconclusive"
            reasons.append(f"{alert}: {item.reason}")
    if not facts.drills:
        reasons.append("no alert drill was planned or ran")
        outcome = "fail" if outcome == "fail" else "inconclusive"
    if facts.promtool_ok is None and outcome == "pass":
        outcome = "inconclusive"
        reasons.append(f"promtool did not run: {facts.promtool_detail}")
    if outcome == "pass":
        names = ", ".join(facts.drills)
        return Item(key, title, "pass", f"promtool tests pass; {names} fired and resolved "
                    "during the soak", evidence)
    return Item(key, title, outcome, "; ".join(reasons), evidence)


def judge_runbook(drills: dict[str, SingleFact]) -> Item:
    key, title = "runbook", "Runbook procedures tested (rollback + restore drills)"
    items = {name: _single(key, title, fact, f"{name} drill",
                           f"{name} drill passed, ledger verified afterwards")
             for name, fact in drills.items()}
    evidence = {name: item.evidence for name, item in items.items()}
    for wanted in ("rollback", "restore"):
        if wanted not in items:
            return Item(key, title, "inconclusive", f"no {wanted} drill planned", evidence)
    failed = [f"{n}: {i.reason}" for n, i in items.items() if i.outcome == "fail"]
    if failed:
        return Item(key, title, "fail", "; ".join(failed), evidence)
    waiting = [f"{n}: {i.reason}" for n, i in items.items() if i.outcome == "inconclusive"]
    if waiting:
        return Item(key, title, "inconclusive", "; ".join(waiting), evidence)
    return Item(key, title, "pass", "rollback and restore drills passed; the ledger verified "
                "after each", evidence)


def judge_ledger(facts: LedgerFacts) -> Item:
    key, title = "ledger", "Ledger append-only across the soak (Day-1 → Day-7 consistency)"
    evidence = {"audit": {"ok": facts.audit_ok, "detail": facts.audit_detail},
                "day1": {"status": facts.first.status, **facts.first.evidence},
                "day7": {"status": facts.last.status, **facts.last.evidence},
                "proof": {"ok": facts.proof_ok, "detail": facts.proof_detail}}
    if facts.audit_ok is False:
        return Item(key, title, "fail", f"verify-audit: {facts.audit_detail}", evidence)
    for name, fact in (("Day-1", facts.first), ("Day-7", facts.last)):
        if fact.problems or fact.status in ("fail", "missing"):
            why = "; ".join(fact.problems) or "not recorded"
            return Item(key, title, "fail", f"{name} checkpoint: {why}", evidence)
    if facts.proof_ok is False:
        return Item(key, title, "fail", f"consistency proof: {facts.proof_detail}", evidence)
    if facts.audit_ok is None:
        return Item(key, title, "inconclusive", f"not audited: {facts.audit_detail}", evidence)
    if "pending" in (facts.first.status, facts.last.status) or facts.proof_ok is None:
        return Item(key, title, "inconclusive", f"Day-7 checkpoint not recorded yet "
                    f"({facts.proof_detail})", evidence)
    return Item(key, title, "pass", f"verify-audit ok ({facts.audit_detail}); "
                f"{facts.proof_detail}", evidence)


def rpo_gaps(times: Sequence[float], span: tuple[float, float] | None) -> list[float]:
    """Gaps between consecutive backups, plus from the soak's first task to the first backup
    and from the last backup to the soak's last task (exposure at the edges counts too)."""
    ordered = sorted(times)
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
    if span is not None and ordered:
        gaps += [max(0.0, ordered[0] - span[0]), max(0.0, span[1] - ordered[-1])]
    return gaps


def judge_rpo(facts: RpoFacts) -> Item:
    key, title = "rpo", "RPO ≤ 15 min (largest gap between verified backups, soak clock)"
    gaps = rpo_gaps(facts.backup_times, facts.span)
    largest = max(gaps, default=None)
    evidence = {"verified_backups": len(facts.backup_times),
                "largest_gap_s": None if largest is None else round(largest, 1),
                "objective_s": RPO_SECONDS, "orders_lost_in_drills": list(facts.orders_lost)}
    if len(facts.backup_times) < 2:
        outcome: Outcome = "fail" if facts.final else "inconclusive"
        return Item(key, title, outcome, f"{len(facts.backup_times)} verified backup(s): too "
                    "few to measure", evidence)
    assert largest is not None
    lost = "; ".join(f"{d.get('drill')}: a restore from the newest backup would lose "
                     f"{d.get('orders_lost')} acknowledged order(s)" for d in facts.orders_lost)
    if largest > RPO_SECONDS:
        return Item(key, title, "fail", f"largest gap {largest / 60:.1f} min of soak clock "
                    f"> 15 min", evidence)
    return Item(key, title, "pass", f"{len(facts.backup_times)} verified backups, largest gap "
                f"{largest / 60:.1f} min of soak clock" + (f"; {lost}" if lost else ""), evidence)


def evaluate(facts: GateFacts) -> GateResult:
    """The gate over ``facts``: one item per checklist line, plus append-only and RPO."""
    return GateResult((
        _days("smoke", "7 consecutive days of smoke tests passed", facts.smoke,
              facts.days_planned, "smoke test"),
        judge_slo(facts.slo, facts.days_planned),
        judge_incidents(facts.incidents),
        _days("backups", "Ledger backups complete (7 verified snapshots)", facts.backups,
              facts.days_planned, "ledger backup"),
        _single("governance", "Governance report signed and filed", facts.governance,
                "hour-72 governance report", "canary-72h.json and canary-72h.pdf signed, "
                "signatures and sha256 verify, the PDF is the JSON's rendering, bundle filed"),
        judge_alerts(facts.alerts),
        judge_runbook(facts.runbook),
        judge_ledger(facts.ledger),
        judge_rpo(facts.rpo),
    ))
