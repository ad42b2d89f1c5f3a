"""The canary's ledger entries (kind ``deploy``) and the rollout they prove (pure, no I/O).

DESIGN.md: "ledger entries of kind ``deploy`` (start, every measurement with its query,
value, threshold and sample size, every verdict)". Each entry's ``subject`` is the rollout
id, its ``data["event"]`` one of:

- ``start``: candidate, plan, the Day-7 gate's verdict as verified (or the forcing reason),
  the sample sizes printed before the start, whether it is a dry run;
- ``measurement``: one comparison, hard gate or split measurement (``plan.Measurement``);
- ``verdict``: the state before and after ``plan.advance`` and the judgement's reasons;
- ``weight``: a weight the proxy was set to, with the share measured afterwards.

``history`` folds a rollout's entries back into what ``aurora canary status`` shows, so
"why did it roll back?" is answered from the ledger alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aurora.canary.analysis import StepJudgement
from aurora.canary.plan import Measurement, Phase, Plan, SplitCheck, State
from aurora.errors import AuroraError
from aurora.ledger.entry import Entry

DEPLOY = "deploy"
EVENTS = ("start", "measurement", "verdict", "weight")


def plan_json(plan: Plan) -> dict[str, Any]:
    data = asdict(plan)
    data["steps"] = list(plan.steps)
    return data


def plan_from(data: Mapping[str, Any]) -> Plan:
    # a plan recorded before settle_s existed judged from the step's first order
    return Plan(**{"settle_s": 0.0, **data, "steps": tuple(data["steps"])})


def state_json(state: State) -> dict[str, Any]:
    return {**asdict(state), "phase": state.phase.value}


def state_from(data: Mapping[str, Any]) -> State:
    return State(**{**data, "phase": Phase(data["phase"])})


def _entry(rollout: str, treaty_id: str | None, data: dict[str, Any]) -> Entry:
    return Entry(DEPLOY, data, treaty_id=treaty_id, subject=rollout)


def start_entry(rollout: str, treaty_id: str | None, *, candidate: Mapping[str, Any],
                plan: Plan, gate: Mapping[str, Any], dry_run: bool,
                sizes: Iterable[Mapping[str, Any]], state: State) -> Entry:
    return _entry(rollout, treaty_id, {
        "event": "start", "rollout": rollout, "candidate": dict(candidate),
        "plan": plan_json(plan), "gate": dict(gate), "dry_run": dry_run,
        "sizes": [dict(s) for s in sizes], "state": state_json(state)})


def measurement_entry(rollout: str, treaty_id: str | None, m: Measurement) -> Entry:
    return _entry(rollout, treaty_id, {"event": "measurement", "rollout": rollout,
                                       **m.ledger_data()})


def verdict_entry(rollout: str, treaty_id: str | None, *, at: str, before: State,
                  after: State, judgement: StepJudgement, split: SplitCheck) -> Entry:
    return _entry(rollout, treaty_id, {
        "event": "verdict", "rollout": rollout, "at": at,
        "before": state_json(before), "after": state_json(after),
        "judgement": {"decision": judgement.decision.value,
                      "reasons": list(judgement.reasons), "hard_fail": judgement.hard_fail},
        "split": {"canary": split.canary, "stable": split.stable, "weight": split.weight,
                  "drifted": split.drifted, "p_value": split.p_value}})


def weight_entry(rollout: str, treaty_id: str | None, *, at: str, weight: int,
                 why: str) -> Entry:
    return _entry(rollout, treaty_id, {"event": "weight", "rollout": rollout, "at": at,
                                       "weight": weight, "why": why})


@dataclass
class Rollout:
    """A rollout as its ``deploy`` entries tell it (``seq`` of each entry kept)."""

    rollout: str
    start: dict[str, Any]
    state: State
    measurements: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    weights: list[dict[str, Any]] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)

    @property
    def plan(self) -> Plan:
        return plan_from(self.start["plan"])

    @property
    def dry_run(self) -> bool:
        return bool(self.start.get("dry_run"))

    def latest_measurements(self) -> list[dict[str, Any]]:
        """The newest measurement of each comparison in the current step."""
        newest: dict[str, dict[str, Any]] = {}
        for m in self.measurements:
            if m["step"] == self.state.step:
                newest[m["comparison"]] = m
        return list(newest.values())


class EvidenceError(AuroraError):
    """The ledger's deploy entries do not tell a rollout (none, or out of order)."""


def history(rows: Iterable[Any], rollout: str | None = None) -> Rollout:
    """The rollout ``rollout`` (default: the latest started) from ``deploy`` rows in seq order.

    ``rows`` are ledger rows (``seq``, ``kind``, ``subject``, ``data``) as
    ``Ledger.scan(kinds="deploy")`` yields them.
    """
    by_id: dict[str, Rollout] = {}
    latest: str | None = None
    for row in rows:
        if row.kind != DEPLOY or not isinstance(row.data, Mapping):
            continue
        data: dict[str, Any] = dict(row.data)
        rid = str(data.get("rollout") or row.subject)
        event = data.get("event")
        if event == "start":
            by_id[rid] = Rollout(rid, data, state_from(data["state"]))
            latest = rid
            target = by_id[rid]
        elif rid in by_id:
            target = by_id[rid]
            if event == "measurement":
                target.measurements.append(data)
            elif event == "verdict":
                target.verdicts.append(data)
                target.state = state_from(data["after"])
            elif event == "weight":
                target.weights.append(data)
        else:
            continue
        target.seqs.append(int(row.seq))
    wanted = rollout or latest
    if wanted is None:
        raise EvidenceError("the ledger holds no canary rollout (no `deploy` start entry)")
    if wanted not in by_id:
        raise EvidenceError(f"the ledger holds no canary rollout {wanted!r}")
    return by_id[wanted]
