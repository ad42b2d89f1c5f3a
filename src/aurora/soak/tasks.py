"""The daily rituals of the seed's protocol, as tasks the orchestrator runs.

Each task gets a ``TaskContext`` and returns a ``TaskOutcome`` (pass/fail, a one-line
summary, the files it produced, task-specific detail); whatever it prints goes to its log
(``ctx.say``), whose sha256 is the task's output digest. A task never raises for a failed
check — only for a bug — and the orchestrator records a raised error as a failure too.

The commands are the ones the seed names, run through the project's own code paths:
``make smoke-e2e`` is ``aurora.smoke.run_smoke``; the ledger backup is
``aurora.ledger.backup.backup`` (online, verified) named ``ledger-YYYYMMDD.db.gz``; the SLO
and anomaly queries go to Prometheus; the daily report is the seed's reporter unsigned;
``./ops/bin/health-check`` is ``aurora.slo.health.run_checks``; ``verify-audit`` is
``aurora.ledger.audit.audit``.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from aurora.config import StackConfig
from aurora.drills.window import DrillWindow
from aurora.durable import atomic_output
from aurora.gpg import Published
from aurora.home import Home
from aurora.ledger.backup import seal_path
from aurora.soak.clock import SoakClock
from aurora.soak.evidence import EvidenceLog, resolve
from aurora.soak.schedule import Slot, SoakPlan
from aurora.soak.spans import Timing
from aurora.soak.state import SoakState
from aurora.wire import format_rfc3339, utc_now

if TYPE_CHECKING:
    from aurora.ledger.backup import BackupInfo
    from aurora.slo.prometheus import PrometheusClient

LOOKBACK_DAYS = 3  # how far an SLO check looks back past drill windows for data
KEEP_PERIODIC_BACKUPS = 4  # files of the orchestrator's own 15-minute backups kept on disk


@dataclass
class TaskOutcome:
    passed: bool
    summary: str
    files: list[Path] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None  # the task's own log file (default: one under logs/soak/)


@dataclass
class TaskContext:
    home: Home
    stack: StackConfig
    plan: SoakPlan
    state: SoakState
    slot: Slot
    clock: SoakClock
    timing: Timing
    evidence: EvidenceLog
    gnupghome: Path | None = None
    key_id: str | None = None
    lines: list[str] = field(default_factory=list)
    on_line: Callable[[str], None] = lambda _: None

    def say(self, line: str) -> None:
        self.lines.append(line)
        self.on_line(line)

    def prometheus(self) -> PrometheusClient:
        from aurora.slo.prometheus import PrometheusClient

        return PrometheusClient(self.stack.prometheus_url)

    def drill_windows(self) -> list[DrillWindow]:
        """Windows of the alert drills recorded so far (their faults are not SLO misses)."""
        return [DrillWindow.from_json(r.detail["window"]) for r in self.state.records()
                if r.detail.get("window") and r.task.startswith("drill-alert")]


Task = Callable[[TaskContext], TaskOutcome]


# --- 09:00 ---------------------------------------------------------------------------------


def smoke(ctx: TaskContext) -> TaskOutcome:
    """`make smoke-e2e | tee logs/smoke-$(date +%Y%m%d).log`."""
    from aurora.smoke import run_smoke

    path = ctx.home.logs_dir / f"smoke-{ctx.slot.datestamp}.log"
    ok = run_smoke(ctx.home, emit=ctx.say)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(ctx.lines) + "\n", encoding="utf-8")
    last = next((line for line in reversed(ctx.lines) if line.startswith("smoke-e2e:")), "")
    return TaskOutcome(ok, last or ("smoke passed" if ok else "smoke failed"), [path],
                       log_path=path)


def _backup(ctx: TaskContext, stem: str) -> tuple[BackupInfo, list[Path]]:
    from aurora.ledger.backup import backup, backup_suffix, sidecar_path

    info = backup(ctx.home, name=stem + backup_suffix(ctx.home))
    target = ctx.home.backups_dir / info.file
    ctx.say(f"backup {target}: {info.tree_size} entries, root {info.root_hash}, "
            f"sha256 {info.sha256} (verified)")
    return info, [target, sidecar_path(target)]


def daily_backup(ctx: TaskContext) -> TaskOutcome:
    """The seed's `.backup` + `gzip` as an online, verified backup: ledger-YYYYMMDD.db.gz
    (ledger-YYYYMMDD.sql.gz, a dump, in PostgreSQL mode)."""
    info, files = _backup(ctx, f"ledger-{ctx.slot.datestamp}")
    return TaskOutcome(True, f"{info.file}: {info.tree_size} entries, verified", files,
                       {"backup": info.to_json()})


_PERIODIC = re.compile(r"^ledger-\d{8}-\d{6}\.(db|sql)\.gz$")


def rpo_backup(ctx: TaskContext) -> TaskOutcome:
    """The orchestrator's periodic backup (RPO 15 min of soak clock). Only the newest few
    files stay on disk; the evidence of every one stays in the ledger. Its record is kept
    small: a soak writes 96 a day, and every backup re-verifies the whole ledger."""
    from aurora.ledger.backup import sidecar_path

    info, files = _backup(ctx, f"ledger-{ctx.slot.at:%Y%m%d-%H%M%S}")
    # only files this soak's own periodic backups wrote, never a daily or the stack's
    earlier = [resolve(ctx.home, f.path) for r in ctx.state.records("rpo-backup")
               for f in r.files if _PERIODIC.match(Path(f.path).name)]
    pruned = []
    if len(earlier) >= KEEP_PERIODIC_BACKUPS:
        old = earlier[-KEEP_PERIODIC_BACKUPS]
        # its sidecar, and in PostgreSQL mode its seal
        for path in (old, sidecar_path(old), seal_path(old)):
            if path.exists():
                path.unlink()
                pruned.append(path.name)
    return TaskOutcome(True, f"{info.tree_size} entries, verified", files[:1],
                       {"backup": {k: getattr(info, k) for k in ("file", "sha256", "tree_size",
                                                                  "root_hash")},
                        "pruned": pruned})


def slo_check(ctx: TaskContext) -> TaskOutcome:
    """Every SLO since the previous check (drill windows left out), and the seed's query
    `treaty_fill_rate{treaty_id="..."}`."""
    from aurora.errors import AuroraError
    from aurora.slo import queries as q
    from aurora.soak import slo

    end = utc_now()
    previous = ctx.state.records("slo-check")
    # since the last check; the first looks back one soak day (the warm-up before the soak
    # counts: the stack served the same traffic)
    day = timedelta(seconds=max(ctx.timing.real(86400), 2 * ctx.timing.min_segment_s))
    start = previous[-1].real_end if previous else end - day
    holes = slo.drill_holes(ctx.drill_windows())
    literal = q.seed_fill_rate(ctx.plan.treaty_id)
    try:
        with ctx.prometheus() as prom:
            for _ in range(LOOKBACK_DAYS):
                segments, covered = slo.judge_span(prom, ctx.plan.treaty_id, (start, end),
                                                   holes, ctx.timing.min_segment_s)
                if segments:
                    break
                # a drill filled the time since the last check: look a day further back
                ctx.say(f"no drill-free stretch since {format_rfc3339(start)}; one day more")
                start -= day
            seed_value = [s.value for s in prom.query(literal)]
    except AuroraError as exc:
        ctx.say(f"FAIL  Prometheus: {exc}")
        return TaskOutcome(False, f"Prometheus: {exc}", detail={"error": str(exc)})
    verdicts = slo.overall(segments)
    ctx.say(f"{literal} = {seed_value}")
    for seg in segments:
        if seg["insufficient"]:
            ctx.say(f"NOTE  {seg['start']} .. {seg['end']}: {seg['insufficient']}")
    for name, verdict in verdicts.items():
        values = [seg["values"][name] for seg in segments]
        mark = "PASS" if verdict else "FAIL" if verdict is False else "----"
        ctx.say(f"{mark}  {name:<14} {values}")
    missed = [n for n, v in verdicts.items() if v is False]
    # no value although the segment had orders enough: the data is missing, not too thin
    unknown = sorted({n for seg in segments if not seg["insufficient"]
                      for n, v in seg["verdicts"].items() if v is None})
    passed = not missed and not unknown
    judged = slo.judged_seconds(segments)
    summary = ("not met: " + ", ".join(missed) if missed else
               "no data: " + ", ".join(unknown) if unknown else
               "every SLO met" if judged else "insufficient data (too few orders)")
    # what the gate needs, recorded now: it never asks Prometheus again (the verdict is a
    # function of this evidence, whether or not Prometheus still runs at Day 7)
    return TaskOutcome(passed, f"{summary} ({len(segments)} segment(s), {covered:.0%} of "
                       "the time since the last check)",
                       detail={"span": [format_rfc3339(start), format_rfc3339(end)],
                               "drill_holes": [[format_rfc3339(a), format_rfc3339(b)]
                                               for a, b in holes],
                               "drill_free_s": round(slo.drill_free_seconds((start, end),
                                                                            holes), 3),
                               "judged_s": round(judged, 3),
                               "segments": segments, "verdicts": verdicts,
                               "covered_share": round(covered, 3), "seed_query": literal,
                               "seed_value": seed_value})


# --- 12:00 ---------------------------------------------------------------------------------


def metrics_check(ctx: TaskContext) -> TaskOutcome:
    """`curl http://localhost:9109/metrics | grep -E 'treaty_fill_rate|treaty_rtt_ms'`."""
    url = ctx.stack.metrics_url
    try:
        body = httpx.get(url, timeout=10.0).text
    except httpx.HTTPError as exc:
        ctx.say(f"{url}: {type(exc).__name__}")
        return TaskOutcome(False, f"{url} unreachable ({type(exc).__name__})")
    from aurora.slo.queries import SEED_METRICS_GREP

    pattern = "|".join(map(re.escape, SEED_METRICS_GREP))
    lines = [line for line in body.splitlines() if re.search(pattern, line)]
    for line in lines:
        ctx.say(line)
    missing = [name for name in SEED_METRICS_GREP
               if not any(name in line and not line.startswith("#") for line in lines)]
    return TaskOutcome(not missing, f"{len(lines)} matching lines" + (
        f"; missing {', '.join(missing)}" if missing else ""), detail={"url": url,
                                                                         "missing": missing})


def anomaly_check(ctx: TaskContext) -> TaskOutcome:
    """`rate(treaty_dropped_requests_total[5m])`, and the dropped share of admitted orders over
    the same window on this soak's clock (an anomaly: above the fill SLO's error budget, the
    treaty's 1 - kpi_targets.fill_rate)."""
    from aurora.errors import AuroraError
    from aurora.slo import queries as q
    from aurora.slo.catalog import BUDGET

    window = ctx.timing.rate_window
    seed, scaled, share = q.SEED_DROPPED_RATE, q.dropped_rate(window), q.dropped_share(window)
    try:
        with ctx.prometheus() as prom:
            answers = {expr: [(s.labels.get("reason", ""), s.value) for s in prom.query(expr)]
                       for expr in dict.fromkeys((seed, scaled, share))}
    except AuroraError as exc:
        ctx.say(f"Prometheus: {exc}")
        return TaskOutcome(False, f"Prometheus: {exc}", detail={"error": str(exc)})
    for expr, values in answers.items():
        ctx.say(f"{expr} = {values}")
    dropped = next((v for _, v in answers[share] if v is not None), None)
    anomaly = dropped is not None and dropped > BUDGET["fill"].error_budget
    return TaskOutcome(True, "dropped share " + ("n/a" if dropped is None else f"{dropped:.2%}")
                       + (" — ANOMALY" if anomaly else ""),
                       detail={"queries": {k: [list(v) for v in vals]
                                           for k, vals in answers.items()},
                               "dropped_share": dropped, "anomaly": anomaly})


# --- 18:00 ---------------------------------------------------------------------------------


def write_slo_report(ctx: TaskContext, soak_seconds: float, output: Path,
                     key: str | None = None, *, checkpoint_note: str | None = None
                     ) -> tuple[dict[str, Any], Published]:
    """The seed's reporter over ``soak_seconds`` of soak clock, with the home's evidence
    (ledger, incidents, backups, drills) over the same window, published (signed with
    ``key`` if given) in one durable step."""
    from aurora.docket.evidence import gather
    from aurora.slo.report import build_report, write_report

    window = ctx.timing.report_window(soak_seconds)
    now = utc_now().replace(microsecond=0)
    with ctx.prometheus() as prom:
        document = build_report(prom, treaty_id=ctx.plan.treaty_id, window=window, at=now,
                                prometheus_url=ctx.stack.prometheus_url)
    document["evidence"] = gather(
        ctx.home, since=now - timedelta(seconds=document["window_seconds"]), until=now,
        checkpoint_note=checkpoint_note)
    published = write_report(document, output, key, gnupghome=ctx.gnupghome)
    ctx.say(f"wrote {output}: {document['summary']} (window {window})")
    return document, published


def daily_report(ctx: TaskContext) -> TaskOutcome:
    """`canary-slo-reporter.py --output reports/daily-$(date +%Y%m%d).json --no-sign`."""
    from aurora.errors import AuroraError

    output = ctx.home.reports_dir / f"daily-{ctx.slot.datestamp}.json"
    try:
        document, _ = write_slo_report(ctx, 86400, output)
    except AuroraError as exc:
        ctx.say(f"report failed: {exc}")
        return TaskOutcome(False, f"report failed: {exc}", detail={"error": str(exc)})
    return TaskOutcome(True, document["summary"], [output],
                       {"window": document["window"], "compliant": document["compliant"],
                        "status": document["status"]})


def tar_paths(home: Home, target: Path, paths: list[Path]) -> int:
    """A .tar.gz of ``paths`` (files or folders), names relative to the home. Files that
    vanish or grow while it runs are taken as they are (logs keep being written)."""
    count = 0
    with atomic_output(target) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for root in paths:
            files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
            for path in files:
                try:
                    tar.add(path, arcname=str(path.relative_to(home.root)), recursive=False)
                    count += 1
                except (FileNotFoundError, ValueError):
                    continue
    return count


def archive(ctx: TaskContext) -> TaskOutcome:
    """`tar czf metrics-$(date +%Y%m%d).tar.gz logs/ ops/backups/`."""
    target = ctx.home.root / f"metrics-{ctx.slot.datestamp}.tar.gz"
    count = tar_paths(ctx.home, target, [ctx.home.logs_dir, ctx.home.backups_dir])
    ctx.say(f"wrote {target}: {count} files from logs/ and ops/backups/")
    return TaskOutcome(True, f"{target.name}: {count} files", [target], {"files": count})


# --- 23:59 ---------------------------------------------------------------------------------


def health_check(ctx: TaskContext) -> TaskOutcome:
    """`./ops/bin/health-check`."""
    from aurora.slo.health import run_checks

    results = run_checks(ctx.home)
    for r in results:
        ctx.say(f"{'PASS' if r.ok else 'FAIL'}  {r.name:<20} {r.detail}")
    failed = [r.name for r in results if not r.ok]
    return TaskOutcome(not failed, f"{len(results) - len(failed)}/{len(results)} checks pass"
                       + (f"; failed: {', '.join(failed)}" if failed else ""),
                       detail={"checks": [r.to_json() for r in results]})


def verify_audit(ctx: TaskContext) -> TaskOutcome:
    """`./ops/bin/remembrancer verify-audit`, after signing a checkpoint of the tree as it is
    now: that checkpoint is this day's, the one the gate's consistency proof starts or ends at."""
    from aurora.ledger import LedgerError
    from aurora.ledger.audit import audit
    from aurora.ledger.files import load_verifier, origin
    from aurora.ledger.note import open_checkpoint

    note = ctx.evidence.ledger.checkpoint()
    verifier = load_verifier(ctx.home)
    checkpoint = open_checkpoint(note, [verifier], origin(ctx.home))
    try:
        report = audit(ctx.evidence.ledger.location, [verifier], origin=origin(ctx.home),
                       checkpoint_note=(note, "the day's checkpoint"))
    except LedgerError as exc:
        ctx.say(str(exc))
        return TaskOutcome(False, str(exc), detail={"error": str(exc)})
    ctx.say(f"verify-audit: OK, tree size {report.tree_size}, root {report.root.hex()}, "
            f"{report.checkpoints_verified} signed checkpoints")
    for warning in report.warnings:
        ctx.say(f"warning: {warning}")
    return TaskOutcome(True, f"tree size {report.tree_size}, root {report.root.hex()[:16]}…",
                       detail={"audit": report.to_json(),
                               "checkpoint": {"size": checkpoint.size,
                                              "root": checkpoint.root.hex(), "note": note}})

