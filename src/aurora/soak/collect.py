"""Evidence for the Day-7 gate, re-verified: nothing is trusted for existing.

What a soak recorded in the ledger says what ran and what it produced; every claim is
checked again here before the gate (``aurora.soak.gate``, pure) judges it:

* the ledger itself: a full ``verify-audit``, and a consistency proof from the Day-1 to the
  Day-7 checkpoint (and on to the current tree), both checkpoints' signatures verified;
* files: re-hashed against the sha256 the ledger holds (smoke logs, reports, backups);
* backups: unpacked, ``PRAGMA integrity_check`` and audited against their own signed
  checkpoint, their root equal to the recorded one and a prefix of the live ledger;
* the governance report's signatures (JSON and PDF): ``gpg --verify`` in a keyring holding
  only the key the ledger names, accepted from that fingerprint only; and the PDF rendered
  again from the JSON must be byte-identical (it prints nothing the signed JSON does not);
* alerts: ``promtool test rules ops/prometheus/tests/*.yml`` runs now, and each alert drill's
  ``drill`` ledger entry must say the alert fired and resolved;
* SLOs: Prometheus range queries over the soak's real span (drill windows left out) when
  Prometheus answers and holds the data, else the recorded daily SLO checks;
* incidents: ``incident_report`` over the soak's span (drills apart).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from aurora.digests import sha256_file
from aurora.drills.window import DrillWindow
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.ledger import Ledger, LedgerError
from aurora.ledger.audit import audit
from aurora.ledger.backup import verify_backup
from aurora.ledger.files import load_verifier, origin
from aurora.ledger.merkle import verify_consistency
from aurora.ledger.note import Checkpoint, open_checkpoint
from aurora.soak.evidence import load_state, open_readonly, read_rows, resolve
from aurora.soak.gate import (
    AlertFacts,
    DayFact,
    DayStatus,
    GateFacts,
    IncidentFacts,
    LedgerFacts,
    RpoFacts,
    SingleFact,
    SloFacts,
)
from aurora.soak.schedule import DRILLS, GOVERNANCE, REQUIRED_DAYS, Slot
from aurora.soak.state import SoakState, TaskRecord, to_soak_time
from aurora.wire import format_rfc3339, parse_rfc3339, utc_now

PROMTOOL_TIMEOUT_S = 120


def _status(state: SoakState, slot: Slot | None) -> tuple[DayStatus, TaskRecord | None]:
    """A slot's fact: its recorded outcome, or missing (it should have run) / pending."""
    if slot is None:
        return "pending", None
    record = state.finished.get(slot.key)
    if record is not None:
        return ("pass" if record.passed else "fail"), record
    later = any(r.scheduled > slot.at for r in state.finished.values())
    return ("missing" if state.ended is not None or later else "pending"), None


def file_problems(home: Home, record: TaskRecord) -> list[str]:
    """Each recorded file (and the task's log) still there with the recorded sha256."""
    problems = []
    files = list(record.files)
    if record.log and record.output_sha256 and all(f.path != record.log for f in files):
        from aurora.soak.state import FileDigest

        files.append(FileDigest(record.log, record.output_sha256, 0))
    for item in files:
        path = resolve(home, item.path)
        if not path.is_file():
            problems.append(f"{item.path} is missing")
        elif sha256_file(path) != item.sha256:
            problems.append(f"{item.path} was altered after the fact (sha256 differs from the "
                            "ledger's)")
    return problems


def _slot(state: SoakState, task: str, day: int) -> Slot | None:
    return next((s for s in state.schedule() if s.task == task and s.day == day), None)


def _daily(state: SoakState, task: str, check: Callable[[TaskRecord], list[str]]
           ) -> tuple[DayFact, ...]:
    facts = []
    for day in range(1, REQUIRED_DAYS + 1):
        slot = _slot(state, task, day)
        status, record = _status(state, slot)
        problems: list[str] = []
        evidence: dict[str, Any] = {}
        if record is not None:
            evidence = {"seq": record.seq, "summary": record.summary}
            if record.passed:
                try:
                    problems = check(record)
                except AuroraError as exc:
                    problems = [str(exc)]
        facts.append(DayFact(day, status, tuple(problems), evidence))
    return tuple(facts)


# --- ledger -----------------------------------------------------------------------------------


def _checkpoint_fact(home: Home, state: SoakState, day: int
                     ) -> tuple[SingleFact, Checkpoint | None]:
    status, record = _status(state, _slot(state, "verify-audit", day))
    if record is None or status != "pass":
        return SingleFact(status if record is None else "fail",
                          () if record is None else (f"day {day} verify-audit failed",)), None
    recorded = record.detail.get("checkpoint") or {}
    try:
        checkpoint = open_checkpoint(str(recorded["note"]), [load_verifier(home)], origin(home))
    except (KeyError, LedgerError) as exc:
        return SingleFact("fail", (f"recorded checkpoint does not verify: {exc}",)), None
    evidence = {"tree_size": checkpoint.size, "root": checkpoint.root.hex(), "seq": record.seq,
                "note": str(recorded["note"])}
    return SingleFact("pass", (), evidence), checkpoint


def ledger_facts(home: Home, ledger: Ledger, state: SoakState) -> LedgerFacts:
    try:
        note_file = home.checkpoint_file
        note = (note_file.read_text(encoding="utf-8"), str(note_file)) \
            if note_file.exists() else None
        report = audit(ledger.location, [load_verifier(home)], origin=origin(home),
                       checkpoint_note=note)
        audit_ok: bool | None = True
        audit_detail = f"tree size {report.tree_size}, root {report.root.hex()}"
    except LedgerError as exc:
        audit_ok, audit_detail = (False if "TAMPERED" in str(exc) else None), str(exc)
    first, first_cp = _checkpoint_fact(home, state, 1)
    last, last_cp = _checkpoint_fact(home, state, REQUIRED_DAYS)
    if state.plan.days < REQUIRED_DAYS:
        last = SingleFact("pending", (), {"why": f"the soak planned {state.plan.days} day(s)"})
        last_cp = None
    proof_ok: bool | None = None
    proof_detail = "Day-7 checkpoint not recorded"
    if first_cp is not None and last_cp is not None:
        try:
            proof = ledger.consistency_proof(first_cp.size, last_cp.size)
            verify_consistency(first_cp.size, last_cp.size, first_cp.root, last_cp.root,
                               proof.proof)
            now = ledger.consistency_proof(last_cp.size)
            verify_consistency(last_cp.size, now.new_size, last_cp.root, now.new_root,
                               now.proof)
            proof_ok = True
            proof_detail = (f"consistency proof {first_cp.size} → {last_cp.size} verifies "
                            f"against both signed checkpoints, and {last_cp.size} → "
                            f"{now.new_size} (now)")
        except LedgerError as exc:
            proof_ok, proof_detail = False, str(exc)
    return LedgerFacts(audit_ok, audit_detail, first, last, proof_ok, proof_detail)


# --- backups ----------------------------------------------------------------------------------


def backup_problems(home: Home, ledger: Ledger, record: TaskRecord) -> list[str]:
    problems = file_problems(home, record)
    if problems:
        return problems
    info = record.detail.get("backup") or {}
    path = home.backups_dir / str(info.get("file"))
    try:
        report = verify_backup(home, path)
    except LedgerError as exc:
        return [f"{path.name} does not verify: {exc}"]
    if (report.tree_size, report.root.hex()) != (info.get("tree_size"), info.get("root_hash")):
        return [f"{path.name}: tree {report.tree_size}/{report.root.hex()[:12]}… differs from "
                "the recorded one"]
    try:
        proof = ledger.consistency_proof(report.tree_size)
        proof.verify()
    except LedgerError as exc:
        return [f"{path.name}: not a prefix of the ledger: {exc}"]
    if proof.old_root != report.root:
        return [f"{path.name}: its root is not the ledger's at size {report.tree_size}"]
    return []


# --- governance -------------------------------------------------------------------------------


def governance_fact(home: Home, state: SoakState) -> SingleFact:
    slot = next((s for s in state.schedule() if s.task == GOVERNANCE), None)
    if slot is None:
        return SingleFact("pending", (), {"why": f"a {state.plan.days}-day soak has no hour 72"})
    status, record = _status(state, slot)
    if record is None:
        return SingleFact(status)
    detail = record.detail
    evidence = {"seq": record.seq, "fingerprint": detail.get("fingerprint"),
                "report_sha256": detail.get("report_sha256")}
    problems = file_problems(home, record)
    if not detail.get("signed"):
        problems.append("the governance report was not signed (no GnuPG key during the soak)")
        return SingleFact("fail", tuple(problems), evidence)
    if status == "fail":
        return SingleFact("fail", tuple(problems) or (record.summary,), evidence)
    report = home.reports_dir / "canary-72h.json"
    pdf = home.reports_dir / "canary-72h.pdf"
    pub = home.reports_dir / "canary-72h.pub.asc"
    if not any(Path(f.path).name == pdf.name for f in record.files):
        problems.append(f"{pdf.name} is not among the files the governance task recorded")
    try:
        from aurora import gpg

        with gpg.keyring_with(pub) as keyring:
            for path, key in ((report, "signature"), (pdf, "pdf_signature")):
                check = gpg.verify_detached(path, gnupghome=keyring,
                                            expected_fingerprint=str(detail.get("fingerprint")))
                evidence[key] = check.detail
                if not check.ok:
                    problems.append(f"{path.name} signature: {check.detail}")
    except AuroraError as exc:
        problems.append(f"signature could not be checked: {exc}")
    problems += rendering_problems(report, pdf)
    return SingleFact("pass", tuple(problems), evidence)


def rendering_problems(report: Path, pdf: Path) -> list[str]:
    """The PDF is the rendering of the signed JSON: rendered again from the JSON, the same
    bytes (rendering is deterministic), so it shows no number the JSON does not hold."""
    import json

    from aurora.docket.render import RenderError, slo_report_html
    from aurora.docket.render import pdf as print_pdf

    if not report.is_file() or not pdf.is_file():
        return []  # reported as missing by the file and signature checks
    try:
        document = json.loads(report.read_text(encoding="utf-8"))
        again = print_pdf(slo_report_html(document, report.stem), document)
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{report.name} cannot be rendered again: {type(exc).__name__}: {exc}"]
    except RenderError as exc:
        return [f"{pdf.name} could not be re-rendered: {exc}"]
    if again != pdf.read_bytes():
        return [f"{pdf.name} is not the rendering of {report.name} (stale or altered)"]
    return []


# --- alerts and drills ------------------------------------------------------------------------


def promtool_check(home: Home) -> tuple[bool | None, str]:
    """``promtool test rules ops/prometheus/tests/*.yml`` in the home, one file per process,
    as many at once as there are cores (promtool runs a file's groups one after another, on
    one core; the gate waits for the slowest file)."""
    binary = shutil.which("promtool")
    files = sorted(glob.glob(str(home.ops / "prometheus" / "tests" / "*.yml")))
    if binary is None:
        return None, "promtool is not installed (Debian/Ubuntu: apt-get install prometheus)"
    if not files:
        return False, "no rule tests in ops/prometheus/tests/"

    def test(file: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, "test", "rules", file], cwd=home.root,
                              capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S)

    largest_first = sorted(files, key=lambda f: -os.path.getsize(f))
    try:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            results = dict(zip(largest_first, pool.map(test, largest_first), strict=True))
    except subprocess.TimeoutExpired:
        return None, f"promtool did not finish within {PROMTOOL_TIMEOUT_S}s"
    failed = [f for f in files if results[f].returncode != 0]
    if not failed:
        return True, f"{len(files)} test file(s): SUCCESS"
    details = []
    for file in failed:
        out = results[file]
        text = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()]
        details.append(f"{Path(file).name}: {text[-1] if text else 'failed'}")
    return False, f"{len(failed)} of {len(files)} test file(s) failed: " + "; ".join(details)


def _drill_entry(ledger: Ledger, seq: Any) -> dict[str, Any] | None:
    if not isinstance(seq, int):
        return None
    try:
        row = ledger.get(seq)
    except LedgerError:
        return None
    entry = row.entry
    return entry if entry.get("kind") == "drill" else None


def drill_fact(ledger: Ledger, state: SoakState, task: str, check: Callable[[dict[str, Any]],
               list[str]]) -> SingleFact:
    slot = next((s for s in state.schedule() if s.task == task), None)
    status, record = _status(state, slot)
    if record is None:
        return SingleFact(status if slot is not None else "pending",
                          (), {} if slot is not None else {"why": "not planned in this soak"})
    entry = _drill_entry(ledger, record.detail.get("ledger_seq"))
    evidence = {"seq": record.seq, "summary": record.summary,
                "drill_seq": record.detail.get("ledger_seq")}
    if status == "fail":
        return SingleFact("fail", (record.summary,), evidence)
    if entry is None:
        return SingleFact("fail", ("its drill entry is not in the ledger",), evidence)
    return SingleFact("pass", tuple(check(entry["data"])), evidence)


def alert_facts(home: Home, ledger: Ledger, state: SoakState) -> AlertFacts:
    ok, detail = promtool_check(home)
    drills: dict[str, SingleFact] = {}
    for spec in DRILLS.values():
        if spec.alert is None or spec.name not in state.plan.drills:
            continue
        alert = spec.alert

        def check(data: dict[str, Any], alert: str = alert) -> list[str]:
            if data.get("alert") != alert or data.get("event", "finished") != "finished":
                return [f"the drill entry is not a finished drill of {alert}"]
            if data.get("passed") is not True or not data.get("resolved_at"):
                return [f"the drill entry says {alert} did not fire and resolve: "
                        f"{data.get('failure')}"]
            return []

        drills[alert] = drill_fact(ledger, state, spec.task, check)
    return AlertFacts(ok, detail, drills)


def runbook_problems(data: Mapping[str, Any]) -> list[str]:
    """Why a rollback/restore ``drill`` entry does not show the procedure tested: it failed,
    a step of it did not run (skipped, e.g. the sqlite3 CLI missing: the seed's commands were
    never tried) or the ledger was not verified afterwards. The entry's own ``passed`` flag
    is not trusted: entries written before a skipped step stopped counting as a pass say
    ``passed`` with skipped steps."""
    if data.get("passed") is not True:
        return [f"the drill entry says it failed: {data.get('failure')}"]
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        return ["the drill entry records no steps"]
    not_run = [f"{s.get('step')} was {'skipped' if s.get('ok') is None else 'not passed'}: "
               f"{s.get('detail')}" for s in steps
               if not isinstance(s, dict) or s.get("ok") is not True]
    if not_run:
        return not_run
    if not (data.get("verified_after") or {}).get("prefix_of_live"):
        return ["the drill entry does not show the ledger verified afterwards"]
    return []


def runbook_facts(ledger: Ledger, state: SoakState) -> dict[str, SingleFact]:
    return {name: drill_fact(ledger, state, DRILLS[name].task, runbook_problems)
            for name in ("rollback", "restore") if name in state.plan.drills}


def drill_windows(state: SoakState) -> list[DrillWindow]:
    return [DrillWindow.from_json(r.detail["window"]) for r in state.records()
            if r.task.startswith("drill-alert") and isinstance(r.detail.get("window"), dict)]


# --- incidents --------------------------------------------------------------------------------


def incident_facts(home: Home, ledger: Ledger, state: SoakState, until: datetime
                   ) -> IncidentFacts:
    from aurora.incidents.service import IncidentStore, incident_report

    since = state.real_start
    try:
        report = incident_report(home, since=since, until=until)
        with IncidentStore.open(home) as store:
            incidents = store.incidents(since=since, until=until)
    except AuroraError as exc:
        return IncidentFacts(False, str(exc))
    windows = drill_windows(state)
    known_drills = {str(d.get("drill_id")) for _, d in read_rows(ledger, ("drill",))}
    major = [i for i in incidents if i.sev in ("SEV1", "SEV2")]
    attributed = [i.id for i in major if i.drill is None and
                  any(w.owns(i.alertname, i.opened_at) for w in windows)]
    real = [i.id for i in major if i.drill is None and i.id not in attributed]
    stray = tuple(i.id for i in major if i.drill is not None and i.drill not in known_drills)
    detail = (f"incident_report: {report.major} SEV1/SEV2 outside drills, {report.drills} "
              f"drill incident(s); {len(attributed)} more opened by a drill's own alerts "
              "inside its recorded window")
    named = tuple(f"{i.sev} {i.alertname} opened {format_rfc3339(i.opened_at)}"
                  for i in major if i.id in real or i.id in stray)
    return IncidentFacts(True, detail, len(real), stray, {
        "report": report.to_json(), "real": real, "attributed_to_drills": attributed}, named)


# --- SLOs -------------------------------------------------------------------------------------


def slo_facts(home: Home, state: SoakState) -> SloFacts:
    """The daily SLO checks as recorded, re-verified; Prometheus is not asked again."""
    from aurora.soak import slo

    days = _daily(state, "slo-check", lambda r: file_problems(home, r))
    checks = [state.finished[s.key] for d in range(1, REQUIRED_DAYS + 1)
              if (s := _slot(state, "slo-check", d)) is not None and s.key in state.finished]
    segments = tuple(seg for r in checks for seg in r.detail.get("segments", []))
    free = [r.detail.get("drill_free_s") for r in checks]
    drill_free = sum(float(f) for f in free if f is not None) \
        if checks and None not in free else None
    return SloFacts(days, segments, drill_free, slo.judged_seconds(segments))


# --- RPO --------------------------------------------------------------------------------------


def rpo_facts(ledger: Ledger, state: SoakState, until: datetime) -> RpoFacts:
    anchors = state.anchors()
    speed = state.plan.speed
    t0 = state.plan.t0
    records = state.records()
    tasks = [r for r in records if r.task in ("backup", "rpo-backup")]
    times = []
    for row in ledger.scan(kinds=("backup",), since_ts=state.real_start):
        real = parse_rfc3339(row.ts)
        if real > until:
            continue
        # a backup the soak took: its snapshot is taken as its task starts (on a compressed
        # clock the task's own milliseconds are minutes); any other (the stack's loop): when
        # it was recorded, on the soak clock
        own = next((r for r in tasks if r.real_start <= real <= r.real_end), None)
        moment = own.sim_start if own else to_soak_time(real, anchors, speed)
        times.append((moment - t0).total_seconds())
    span = None
    if records:
        # scheduled times: after the last slot a compressed clock runs free, so the last
        # task's own duration (minutes of soak clock) is not exposure
        span = ((min(r.scheduled for r in records) - t0).total_seconds(),
                (max(r.scheduled for r in records) - t0).total_seconds())
    lost = tuple(r.detail["drill"]["rpo"] for r in records
                 if r.task in ("drill-rollback", "drill-restore")
                 and isinstance(r.detail.get("drill"), dict) and r.detail["drill"].get("rpo"))
    return RpoFacts(tuple(times), span, state.ended is not None, lost)


# --- all of it --------------------------------------------------------------------------------


def collect(home: Home, soak_id: str | None = None) -> tuple[SoakState, GateFacts]:
    with open_readonly(home) as ledger:
        state = load_state(ledger, soak_id)
        until = state.ended or utc_now()
        facts = GateFacts(
            soak_id=state.soak_id,
            days_planned=state.plan.days,
            ended=state.ended is not None,
            smoke=_daily(state, "smoke", lambda r: file_problems(home, r)),
            slo=slo_facts(home, state),
            incidents=incident_facts(home, ledger, state, until),
            backups=_daily(state, "backup", lambda r: backup_problems(home, ledger, r)),
            governance=governance_fact(home, state),
            alerts=alert_facts(home, ledger, state),
            runbook=runbook_facts(ledger, state),
            ledger=ledger_facts(home, ledger, state),
            rpo=rpo_facts(ledger, state, until),
        )
    return state, facts

