"""`aurora health-check`: one line per check, each pass or fail with a reason.

Something unreachable or missing is a failed check, never a crash: every check runs even
when earlier ones failed, and an unexpected exception inside a check fails that check only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.table import Table

from aurora import metricnames as names
from aurora.config import StackConfig, load_stack
from aurora.durations import format_duration
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.slo import queries as q
from aurora.slo.catalog import RPO_SECONDS, THRESHOLD_ALERTS

if TYPE_CHECKING:
    from aurora.slo.prometheus import PrometheusClient

HTTP_TIMEOUT_S = 3.0
BACKUP_MAX_AGE_IDLE_S = 24 * 3600  # no backup loop running: one backup a day (the seed's)
MIN_FREE_BYTES = 1 << 30
MIN_FREE_SHARE = 0.05
MAX_CLOCK_SKEW_S = 5.0
EARLIEST_SANE_TIME = datetime(2025, 1, 1, tzinfo=UTC)  # before the project existed
VERIFY_AUDIT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


class CheckFailed(AuroraError):
    """Raised inside a check: the check fails with this message."""


@dataclass
class Context:
    home: Home
    stack: StackConfig
    http: httpx.Client
    now: float


def _get(ctx: Context, url: str) -> httpx.Response:
    try:
        response = ctx.http.get(url)
    except httpx.HTTPError as exc:
        raise CheckFailed(f"{url} unreachable ({type(exc).__name__})") from None
    if not response.is_success:
        raise CheckFailed(f"{url} answered HTTP {response.status_code}")
    return response


def check_bridge_healthz(ctx: Context) -> str:
    _get(ctx, f"{ctx.stack.bridge_url}/healthz")
    return f"{ctx.stack.bridge_url}/healthz ok"


def check_bridge_readyz(ctx: Context) -> str:
    response = _get(ctx, f"{ctx.stack.bridge_url}/readyz")
    return f"ready: {response.text.strip()[:80]}"


def _metrics(ctx: Context, url: str, prefix: str) -> str:
    body = _get(ctx, url).text
    series = [line for line in body.splitlines() if line.startswith(prefix)]
    families = {line.split()[2] for line in body.splitlines()
                if line.startswith(f"# TYPE {prefix}")}
    if not families:
        raise CheckFailed(f"{url} exposes no {prefix}* metric")
    return f"{len(families)} {prefix}* families, {len(series)} samples"


def check_treaty_metrics(ctx: Context) -> str:
    return _metrics(ctx, ctx.stack.metrics_url, names.TREATY_PREFIX)


def check_provider_metrics(ctx: Context) -> str:
    return _metrics(ctx, f"{ctx.stack.providers_url}/metrics", names.PROVIDER_PREFIX)


def _prometheus(ctx: Context) -> PrometheusClient:
    from aurora.slo.prometheus import PrometheusClient

    return PrometheusClient(ctx.stack.prometheus_url, timeout=HTTP_TIMEOUT_S)


REQUIRED_JOBS = ("aurora-metrics", "simulator-metrics")


def check_prometheus_targets(ctx: Context) -> str:
    with _prometheus(ctx) as prom:
        targets = prom.targets()
    jobs = {t.job for t in targets}
    missing = [job for job in REQUIRED_JOBS if job not in jobs]
    if missing:
        raise CheckFailed(f"Prometheus does not scrape {', '.join(missing)}")
    down = [f"{t.job} {t.health}{': ' + t.last_error if t.last_error else ''}"
            for t in targets if t.health != "up"]
    if down:
        raise CheckFailed("not up: " + "; ".join(down))
    return f"{len(targets)} targets up"


def check_prometheus_rules(ctx: Context) -> str:
    with _prometheus(ctx) as prom:
        rules = prom.rules()
    names = {r.name for r in rules}
    missing = [a.name for a in THRESHOLD_ALERTS if a.name not in names]
    if missing:
        raise CheckFailed(f"{len(rules)} rules loaded, missing alerts: {', '.join(missing)}")
    broken = [f"{r.name}: {r.last_error}" for r in rules if r.health == "err"]
    if broken:
        raise CheckFailed(f"{len(broken)} rules fail to evaluate, first {broken[0]}")
    firing = sorted({r.name for r in rules if r.state == "firing"})
    return f"{len(rules)} rules loaded" + (f"; firing: {', '.join(firing)}" if firing else "")


def check_ledger_integrity(ctx: Context) -> str:
    from aurora.ledger.backup import integrity_check
    from aurora.ledger.storage import describe, exists, ledger_location

    location = ledger_location(ctx.home)
    if not exists(location):
        raise CheckFailed(f"no ledger at {describe(location)} (make up creates it)")
    try:
        what = integrity_check(location)
    except AuroraError as exc:
        raise CheckFailed(str(exc)) from None
    return f"{describe(location)}: {what} ok"


def check_verify_audit(ctx: Context) -> str:
    """``aurora ledger verify-audit --json`` of this installation, as a subprocess."""
    argv = [sys.executable, "-m", "aurora", "ledger", "verify-audit", "--json"]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, cwd=ctx.home.root,
                                timeout=VERIFY_AUDIT_TIMEOUT_S,
                                env=_env(AURORA_HOME=str(ctx.home.root)))
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"verify-audit did not finish in {VERIFY_AUDIT_TIMEOUT_S:.0f} s"
                          ) from None
    try:
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        outcome = None
    if isinstance(outcome, dict) and outcome.get("tampered"):
        raise CheckFailed(f"AUDIT LOG TAMPERED at leaf {outcome.get('first_bad_index')}: "
                          f"{outcome.get('problem')}")
    if result.returncode != 0:
        output = result.stderr + result.stdout
        if "No such command" in output:
            raise CheckFailed("`aurora ledger verify-audit` is not available in this installation")
        lines = [line.strip("│ ").strip() for line in output.strip().splitlines()]
        raise CheckFailed(next((line for line in reversed(lines) if line),
                               f"exit {result.returncode}"))
    if isinstance(outcome, dict) and "tree_size" in outcome:
        return (f"verified, tree size {outcome['tree_size']}, "
                f"{outcome.get('checkpoints_verified', 0)} signed checkpoints")
    return "verified"


def _env(**extra: str) -> dict[str, str]:
    import os

    return {**os.environ, **extra}


# a copy of the newest backup whose mtime is the copy's, not the backup's
LATEST_COPIES = ("ledger-latest.db.gz", "ledger-latest.sql.gz")


def newest_backup(backups: Path) -> Path | None:
    """The most recently written ledger backup (``ledger-*.db``, ``ledger-*.db.gz``, or a
    PostgreSQL ledger's ``ledger-*.sql.gz``)."""
    candidates = [p for pattern in ("ledger-*.db", "ledger-*.db.gz", "ledger-*.sql.gz")
                  for p in backups.glob(pattern)
                  if p.is_file() and p.name not in LATEST_COPIES]
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def backup_loop_running(home: Home) -> bool:
    from aurora.procs import running

    return running(home, "backup") is not None


def check_backup_age(ctx: Context) -> str:
    loop = backup_loop_running(ctx.home)
    limit = RPO_SECONDS if loop else BACKUP_MAX_AGE_IDLE_S
    newest = newest_backup(ctx.home.backups_dir)
    if newest is None:
        raise CheckFailed(f"no ledger backup in {ctx.home.backups_dir}")
    age = max(ctx.now - newest.stat().st_mtime, 0.0)
    why = "backup loop running" if loop else "no backup loop"
    if age > limit:
        raise CheckFailed(f"{newest.name} is {format_duration(age)} old, over "
                          f"{format_duration(limit)} ({why})")
    return f"{newest.name}, {format_duration(age)} old (limit {format_duration(limit)}, {why})"


def check_disk(ctx: Context) -> str:
    where = ctx.home.data_dir if ctx.home.data_dir.exists() else ctx.home.root
    usage = shutil.disk_usage(where)
    share = usage.free / usage.total if usage.total else 0.0
    text = f"{usage.free / (1 << 30):.1f} GiB free ({share:.0%}) on {where}"
    if usage.free < MIN_FREE_BYTES or share < MIN_FREE_SHARE:
        raise CheckFailed(f"{text}; need {MIN_FREE_BYTES >> 30} GiB and {MIN_FREE_SHARE:.0%}")
    return text


def check_keys(ctx: Context) -> str:
    from aurora.config import load_providers, load_tenants
    from aurora.keys import load_private_key, load_public_key
    from aurora.ledger.files import load_signer

    home = ctx.home
    try:
        load_signer(home)  # the private key, checked against the published verifier key
        tenants = load_tenants(home)
        providers = load_providers(home).providers
        for tenant in tenants:
            load_private_key(home.tenant_key(tenant.id))
            load_public_key(tenant.public_key_path(home))
        for provider in providers:
            load_private_key(home.provider_key(provider.id))
            load_public_key(home.provider_pub(provider.id))
    except (AuroraError, OSError) as exc:
        raise CheckFailed(str(exc)) from None
    return (f"ledger key + verifier key, {len(tenants)} tenant and {len(providers)} provider "
            "key pairs readable")


def _newest_ledger_time(home: Home) -> datetime | None:
    from aurora.ledger.storage import exists, ledger_location, open_store
    from aurora.wire import parse_rfc3339

    location = ledger_location(home)
    if not exists(location):
        return None
    try:
        store = open_store(location, readonly=True)
        try:
            last = store.last_ts()
        finally:
            store.close()
    except AuroraError:
        return None
    return parse_rfc3339(last) if last else None


def check_clock(ctx: Context) -> str:
    # the time now, not ctx.now: the checks before this one can take seconds on a loaded
    # machine, while traffic keeps appending entries stamped with the real time
    now = datetime.fromtimestamp(time.time(), UTC)
    if now < EARLIEST_SANE_TIME:
        raise CheckFailed(f"system clock says {now:%Y-%m-%d}, before {EARLIEST_SANE_TIME:%Y}")
    notes = []
    newest = _newest_ledger_time(ctx.home)
    if newest is not None:
        # against the clock now, not ctx.now: the checks before this one take seconds on a
        # busy machine, while the running bridge keeps appending
        if (newest - datetime.now(UTC)).total_seconds() > MAX_CLOCK_SKEW_S:
            raise CheckFailed(f"the ledger's newest entry ({newest:%Y-%m-%dT%H:%M:%SZ}) is in "
                              "the future: the clock went back")
        notes.append("after the ledger's newest entry")
    try:
        with _prometheus(ctx) as prom:
            samples = prom.query(q.PROMETHEUS_TIME)
    except AuroraError:
        notes.append("Prometheus unreachable for comparison")
    else:
        # outside the try: CheckFailed is an AuroraError too, and must not read as unreachable
        skew = abs((samples[0].value or 0.0) - time.time())
        if skew > MAX_CLOCK_SKEW_S:
            raise CheckFailed(f"{skew:.1f} s apart from Prometheus' clock")
        notes.append(f"{skew:.1f} s from Prometheus")
    return f"{now:%Y-%m-%dT%H:%M:%SZ} UTC; " + ", ".join(notes)


CHECKS: tuple[tuple[str, Callable[[Context], str]], ...] = (
    ("bridge /healthz", check_bridge_healthz),
    ("bridge /readyz", check_bridge_readyz),
    ("treaty metrics", check_treaty_metrics),
    ("provider metrics", check_provider_metrics),
    ("prometheus targets", check_prometheus_targets),
    ("prometheus rules", check_prometheus_rules),
    ("ledger integrity", check_ledger_integrity),
    ("ledger verify-audit", check_verify_audit),
    ("backup age", check_backup_age),
    ("disk space", check_disk),
    ("keys", check_keys),
    ("clock", check_clock),
)


def run_check(name: str, check: Callable[[Context], str], ctx: Context) -> CheckResult:
    try:
        return CheckResult(name, True, check(ctx))
    except CheckFailed as exc:
        return CheckResult(name, False, str(exc))
    except AuroraError as exc:
        return CheckResult(name, False, str(exc))
    except Exception as exc:  # a check must not take the others down
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}")


def run_checks(home: Home, *, only: tuple[str, ...] | None = None) -> list[CheckResult]:
    """Every check (or those named in ``only``), in order."""
    try:
        stack = load_stack(home)
    except AuroraError as exc:
        return [CheckResult("configuration", False, str(exc))]
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as http:
        ctx = Context(home, stack, http, time.time())
        return [run_check(name, check, ctx) for name, check in CHECKS
                if only is None or name in only]


def health_table(results: list[CheckResult]) -> Table:
    passed = sum(r.ok for r in results)
    table = Table(title=f"Aurora health: {passed}/{len(results)} checks pass",
                  title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for r in results:
        table.add_row(r.name, "[green]PASS[/]" if r.ok else "[red]FAIL[/]", r.detail)
    return table
