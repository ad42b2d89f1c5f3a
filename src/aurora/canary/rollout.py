"""A canary rollout against a running stack: the gate check, the start, one tick, the report.

The decisions are the pure modules' (``plan.advance`` over ``step.judge_window``); this
module reads the gate's verdict, writes every measurement and verdict to the ledger as a
``deploy`` entry (``aurora.canary.evidence``) and signs the report. The ledger is the
rollout's only state: ``status`` and ``report`` read it back, so they show what an
auditor holding the ledger would see.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aurora import gpg
from aurora.canary.analysis import Thresholds
from aurora.canary.evidence import (
    DEPLOY,
    Rollout,
    history,
    measurement_entry,
    plan_json,
    start_entry,
    state_json,
    verdict_entry,
    weight_entry,
)
from aurora.canary.plan import BUCKETS, Plan, State, check_split, start
from aurora.canary.step import StepResult, judge_window
from aurora.canonical import canonical_json
from aurora.digests import sha256_file
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.ledger.ledger import Ledger
from aurora.slo.prometheus import QuerySource
from aurora.soak.verdict import GATE_FILE, GATE_KIND
from aurora.wire import format_rfc3339, rfc3339_at, utc_now

REPORT_KIND = "aurora-canary-report"


class CanaryRefused(AuroraError):
    """The rollout may not start (gate not passed or not verifiable) or cannot go on."""


def gate_path(home: Home) -> Path:
    return home.reports_dir / GATE_FILE


def verify_gate(path: Path, *, gnupghome: Path | None = None) -> dict[str, Any]:
    """The Day-7 gate's verdict, re-verified: signed, checksum matching, outcome ``pass``."""
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CanaryRefused(f"no Day-7 gate verdict at {path}: run `aurora soak gate` "
                            "(or --force --reason TEXT)") from None
    except ValueError as exc:
        raise CanaryRefused(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("report") != GATE_KIND:
        raise CanaryRefused(f"{path} is not a Day-7 gate verdict")
    check = gpg.verify_detached(path, gnupghome=gnupghome)
    if not check.ok:
        raise CanaryRefused(f"the Day-7 gate verdict does not verify: {check.detail}")
    if document.get("outcome") != "pass":
        raise CanaryRefused(f"the Day-7 gate did not pass (outcome "
                            f"{document.get('outcome')!r}); the canary waits")
    return {"path": str(path), "sha256": sha256_file(path), "outcome": "pass",
            "soak_id": document.get("soak_id"), "fingerprint": check.fingerprint,
            "generated_at": document.get("generated_at")}


@dataclass(frozen=True)
class Settings:
    """How a rollout is judged (recorded in its start entry)."""

    thresholds: Thresholds
    baseline_s: float  # the span before each step whose stable latency sets the thresholds
    track: str | None  # the canary's metric label; None in a dry run (stable is measured)


def begin(ledger: Ledger, *, treaty_id: str, plan: Plan, candidate: Mapping[str, Any],
          gate: Mapping[str, Any], dry_run: bool, sizes: Sequence[Mapping[str, Any]],
          settings: Settings, now: float | None = None) -> Rollout:
    """Record the start; the rollout's id is new, its state the plan's first step."""
    rollout = f"canary-{format_rfc3339(utc_now())[:19].replace(':', '')}-{secrets.token_hex(3)}"
    state = start(plan, time.time() if now is None else now)
    ledger.append(start_entry(rollout, treaty_id, candidate={
        **candidate, "settings": {"log_fail": settings.thresholds.log_fail,
                                  "log_pass": settings.thresholds.log_pass,
                                  "baseline_s": settings.baseline_s, "track": settings.track}},
        plan=plan, gate=gate, dry_run=dry_run, sizes=sizes, state=state))
    return load(ledger, rollout)


def load(ledger: Ledger, rollout: str | None = None) -> Rollout:
    return history(ledger.scan(kinds=DEPLOY), rollout)


def settings_of(rollout: Rollout) -> Settings:
    raw = rollout.start["candidate"]["settings"]
    return Settings(Thresholds(raw["log_fail"], raw["log_pass"]), raw["baseline_s"],
                    raw["track"])


def tick(ledger: Ledger, prom: QuerySource, rollout: Rollout, *, treaty_id: str,
         served: tuple[int, int], now: float | None = None) -> tuple[State, StepResult]:
    """Judge the current step once, record it, and return the state the traffic must follow.

    ``served`` is the proxy's (canary, stable) order count since the step began (a dry
    run counts the would-be split from the ledger).
    """
    when = time.time() if now is None else now
    state, plan, settings = rollout.state, rollout.plan, settings_of(rollout)
    stable_from = plan.steps[state.step - 1] if state.step > 0 else 0
    result = judge_window(ledger, prom, start=state.step_started_at, end=when,
                          weight=state.weight, stable_from=stable_from, step=state.step,
                          baseline_s=settings.baseline_s, track=settings.track,
                          thresholds=settings.thresholds, settle_s=plan.settle_s)
    split = check_split(served[0], served[1], state.weight, plan)
    from aurora.canary.plan import advance

    after = advance(plan, state, result.judgement, split, when)
    at = rfc3339_at(when)
    for m in result.measurements:
        ledger.append(measurement_entry(rollout.rollout, treaty_id, m))
    ledger.append(verdict_entry(rollout.rollout, treaty_id, at=at, before=state, after=after,
                                judgement=result.judgement, split=split))
    if after.weight != state.weight:
        ledger.append(weight_entry(rollout.rollout, treaty_id, at=at, weight=after.weight,
                                   why=after.reason))
    return after, result


def would_be_split(ledger: Ledger, since: float, weight: int) -> tuple[int, int]:
    """(canary, stable) orders since ``since`` by the split's own hash (dry runs)."""
    from aurora.canary.observe import KINDS
    from aurora.canary.plan import bucket_of

    canary = stable = 0
    for row in ledger.scan(kinds=KINDS, since_ts=rfc3339_at(since)):
        if row.tenant_id:
            if bucket_of(row.tenant_id) < weight:
                canary += 1
            else:
                stable += 1
    return canary, stable


def report_document(rollout: Rollout, tree_size: int, root_hash: str) -> dict[str, Any]:
    """The rollout as a document a board member can read and an auditor re-derive."""
    state = rollout.state
    return {
        "report": REPORT_KIND, "version": 1, "rollout": rollout.rollout,
        "generated_at": format_rfc3339(utc_now()),
        "ledger": {"tree_size": tree_size, "root_hash": root_hash,
                   "deploy_entries": rollout.seqs},
        "dry_run": rollout.dry_run, "candidate": rollout.start["candidate"],
        "gate": rollout.start["gate"], "plan": plan_json(rollout.plan),
        "sizes": rollout.start["sizes"],
        "outcome": state.phase.value, "weight": state.weight,
        "final_step": rollout.plan.steps[state.step], "reason": state.reason,
        "state": state_json(state),
        "verdicts": rollout.verdicts, "measurements": rollout.measurements,
        "weights": rollout.weights,
        "promoted": state.phase.value == "promoted" and state.weight == BUCKETS,
    }


def write_report(home: Home, rollout: Rollout, ledger: Ledger, *, key: str | None,
                 output: Path | None = None) -> gpg.Published:
    head = ledger.tree_head()
    document = report_document(rollout, head.size, head.root.hex())
    path = output or home.reports_dir / f"{rollout.rollout}.json"
    return gpg.publish(path, canonical_json(document), key)
