"""``aurora soak rehearse``: the whole protocol on a compressed clock, against a real stack.

One soak day lasts ``day_seconds`` real seconds. The rehearsal brings up the home's stack
itself (``aurora.stack.up``) with its observatory scaled to that clock:

* Prometheus scrapes and evaluates every second; every rule window and ``for:`` is scaled
  by ``time_scale = day_seconds / 86400`` and floored at four intervals
  (``aurora.slo.promconfig``); Alertmanager groups and waits 1 s;
* the bridge's fill-rate window (5m), fill-bucket period (1m) and provenance window (1h)
  are scaled the same way with floors (5 s, 1 s, 10 s) through ``AURORA_*`` overrides;
* traffic runs unpaced at a constant rate the SLOs can meet;
* the stack's 15-minute backup loop is off: the orchestrator takes a verified backup every
  15 minutes of soak clock itself (the RPO the gate measures), which a real loop cannot do
  at a few hundred milliseconds per interval; old periodic files are pruned, their
  evidence stays in the ledger;
* with no ``--key``, a throwaway GnuPG key in a temporary keyring signs the hour-72 report
  (and the gate); the keyring is removed at the end, the public key stays in ``reports/``.

Faults are the schedule's alert drills (a region outage firing the fill-rate alert, a
latency spike firing the RTT alert); restore and rollback drills run on scratch copies.
At the end, with Prometheus still up, the gate runs and is printed; then the stack stops.

Killed, the rehearsal leaves its stack running (its PIDs in ``ops/run/rehearsal.json``);
run the same command with ``--soak-id`` to resume the soak on that stack.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from aurora import procs
from aurora.config import load_stack, load_workloads
from aurora.errors import AuroraError, UnreachableError
from aurora.gpg import make_throwaway_key, temporary_keyring
from aurora.home import Home
from aurora.slo import queries as q
from aurora.slo.queries import prom_duration
from aurora.soak.evidence import SoakNotFound, load_state, open_readonly
from aurora.soak.runner import Hooks, Runner
from aurora.soak.schedule import DRILLS, RPO_SECONDS, SoakPlan
from aurora.soak.spans import FILL_WINDOW_FLOOR_S, SCRAPE_S, Timing
from aurora.soak.state import SoakState
from aurora.soak.verdict import Verdict, run_gate
from aurora.traffic.plan import sustainable_rate
from aurora.wire import utc_now

DEFAULT_DAY_SECONDS = 60.0  # 7 days in 7 minutes, plus drills and overruns: within 10 minutes
# With the ledger in PostgreSQL each of a day's 96 verified backups (RPO 15 min) is a pg_dump
# restored into a scratch database and audited, about 0.7-1 s on 2 cores against 0.1-0.4 s
# for a SQLite copy: a 60-s day would run them back to back beside the stack it measures.
POSTGRES_DAY_SECONDS = 150.0
DEFAULT_TRAFFIC_RATE = 3.0  # orders/s: enough for every SLI window, well inside capacity
# A rehearsal runs longer than its days: backups and drills hold its clock (x1.05 in
# PostgreSQL mode at 150-s days, x2.4 at 12-s days, where the rate is capped anyway).
CLOCK_HOLD_ALLOWANCE = 1.5
MIN_DAY_SECONDS = 5.0
MARKER = "rehearsal.json"
WARMUP_TIMEOUT_S = 90.0
WARMUP_SERIES = (q.RTT_P95_RECORD, q.FILL_P50_RECORD, q.PROVENANCE_SERIES, q.POLICY_P99_RECORD)


def default_day_seconds(home: Home) -> float:
    """How long a compressed soak day lasts unless asked: longer with the ledger in
    PostgreSQL, where the day's backups cost several times more."""
    return POSTGRES_DAY_SECONDS if load_stack(home).database_url else DEFAULT_DAY_SECONDS


def lasting_traffic_rate(orders_per_day: float, days: int, day_seconds: float) -> float:
    """Orders/s that the tenants' daily budgets carry through the whole rehearsal.

    The bridge's caps and the generator's budgets count real UTC days, and one real day
    holds every compressed soak day: at a fixed 3 orders/s a rehearsal of 60-s or 150-s
    days spends them by day 4 or 5 and its last days see only smoke-test orders.
    """
    return min(DEFAULT_TRAFFIC_RATE,
               orders_per_day / (days * day_seconds * CLOCK_HOLD_ALLOWANCE))


@dataclass
class RehearsalOptions:
    days: int = 7
    day_seconds: float = DEFAULT_DAY_SECONDS
    key: str | None = None
    drills: tuple[str, ...] = tuple(DRILLS)
    traffic_rate: float | None = None  # None: lasting_traffic_rate for the home's workloads
    soak_id: str | None = None
    start_date: date | None = None
    gate: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class RehearsalResult:
    state: SoakState
    verdict: Verdict | None


def stack_options(day_seconds: float, traffic_rate: float,
                  extra_env: dict[str, str] | None = None) -> object:
    """The stack's ``UpOptions`` for one soak day in ``day_seconds``."""
    from aurora.stack import UpOptions

    timing = Timing(day_seconds / 86400.0)
    env = {
        "AURORA_FILL_WINDOW": prom_duration(timing.real(300, FILL_WINDOW_FLOOR_S)),
        "AURORA_FILL_BUCKET_EVERY": prom_duration(timing.real(60, SCRAPE_S)),
        "AURORA_PROVENANCE_WINDOW": prom_duration(timing.real(3600, 10.0)),
        # the loop is off (the orchestrator backs up); set for anything that reads it
        "AURORA_BACKUP_EVERY": prom_duration(timing.real(RPO_SECONDS, SCRAPE_S)),
        **(extra_env or {}),
    }
    interval = prom_duration(SCRAPE_S)
    return UpOptions(traffic=True, traffic_rate=traffic_rate, pace=False, observatory=True,
                     backups=False, extra_env=env, scrape_interval=interval,
                     evaluation_interval=interval, time_scale=min(1.0, timing.scale),
                     alert_group_wait="1s", alert_group_interval="1s",
                     alert_repeat_interval=prom_duration(timing.real(4 * 3600, 10.0)))


def _marker(home: Home) -> Path:
    return home.run_dir / MARKER


def _running(home: Home) -> dict[str, int]:
    from aurora.stack import ALL_SERVICES

    return {name: pid for name in ALL_SERVICES if (pid := procs.running(home, name))}


def _own_stack(home: Home, soak_id: str) -> bool:
    """Whether the services running are the ones an earlier run of this rehearsal started."""
    try:
        marker = json.loads(_marker(home).read_text())
    except (OSError, ValueError):
        return False
    return bool(marker.get("soak_id") == soak_id and marker.get("pids") == _running(home))


@contextlib.contextmanager
def rehearsal_stack(home: Home, soak_id: str, options: object,
                    say: Hooks) -> Iterator[None]:
    """The stack for the rehearsal: started here (or reused after a kill), stopped at the end
    by its PID files."""
    from aurora.stack import UpOptions, down, up

    assert isinstance(options, UpOptions)
    running = _running(home)
    if running and not _own_stack(home, soak_id):
        raise AuroraError(f"this home's stack is running ({', '.join(running)}): a rehearsal "
                          "needs its own, time-scaled stack — `aurora down` first, or rehearse "
                          "in an isolated home with --home DIR", exit_code=2)
    try:
        if running:
            say.info(f"reusing the stack this rehearsal started ({', '.join(running)})")
        else:
            say.info("starting a time-scaled stack")
            up(home, options)
            _marker(home).write_text(json.dumps({"soak_id": soak_id, "pids": _running(home)}))
        yield
    finally:
        stopped = [name for name, was in down(home) if was]
        _marker(home).unlink(missing_ok=True)
        say.info(f"stopped {', '.join(stopped) or 'nothing'}")


def warm_up(home: Home, timeout: float = WARMUP_TIMEOUT_S) -> None:
    """Wait until Prometheus holds every SLI series, so that day 1 starts measured."""
    from aurora.slo.prometheus import PrometheusClient

    url = load_stack(home).prometheus_url
    deadline = time.monotonic() + timeout
    missing: list[str] = list(WARMUP_SERIES)
    with PrometheusClient(url) as prom:
        while time.monotonic() < deadline:
            with contextlib.suppress(AuroraError):
                missing = [s for s in WARMUP_SERIES if not prom.query(s)]
                if not missing:
                    return
            time.sleep(0.5)
    raise UnreachableError(f"Prometheus at {url} has no {', '.join(missing)} after "
                           f"{timeout:.0f}s: is traffic flowing? (see logs/)")


def _existing(home: Home, soak_id: str) -> SoakState | None:
    from aurora.ledger.storage import home_ledger_exists

    if not home_ledger_exists(home):
        return None
    try:
        with open_readonly(home) as ledger:
            return load_state(ledger, soak_id)
    except SoakNotFound:
        return None


def rehearse(home: Home, options: RehearsalOptions, hooks: Hooks,
             stop: threading.Event | None = None) -> RehearsalResult:
    if options.day_seconds < MIN_DAY_SECONDS:
        raise AuroraError(f"--day-seconds must be at least {MIN_DAY_SECONDS:g}", exit_code=2)
    soak_id = options.soak_id or f"rehearsal-{utc_now():%Y%m%dT%H%M%SZ}"
    existing = _existing(home, soak_id)
    if existing is not None and existing.plan.mode != "compressed":
        raise AuroraError(f"soak {soak_id} is a wall-clock soak: resume it with "
                          "`aurora soak start`", exit_code=2)
    day_seconds = existing.plan.day_seconds if existing else options.day_seconds
    assert day_seconds is not None
    recorded = existing.plan.extra.get("traffic_rate") if existing else None
    traffic_rate = options.traffic_rate or recorded or lasting_traffic_rate(
        sustainable_rate(load_workloads(home)) * 86400.0, options.days, day_seconds)
    stop = stop or threading.Event()
    with contextlib.ExitStack() as stack:
        key, gnupghome = options.key, None
        if key is None:
            gnupghome = stack.enter_context(temporary_keyring())
            key = make_throwaway_key(gnupghome, f"Aurora soak rehearsal <{soak_id}@aurora.invalid>")
            hooks.info(f"throwaway GnuPG key {key} (temporary keyring)")
        plan = existing.plan if existing else SoakPlan(
            soak_id=soak_id, start_date=options.start_date or utc_now().date(),
            days=options.days, mode="compressed", day_seconds=day_seconds,
            rpo_every_s=float(RPO_SECONDS), drills=options.drills, key_id=key,
            extra={"traffic_rate": round(traffic_rate, 3),
                   "throwaway_key": options.key is None})
        stack.enter_context(rehearsal_stack(
            home, soak_id, stack_options(day_seconds, traffic_rate, options.extra_env),
            hooks))
        if existing is None:
            hooks.info("waiting for Prometheus to hold every SLI series")
            warm_up(home)
        state = Runner(home, plan, hooks, stop, gnupghome, key_id=key).run()
        verdict = None
        if options.gate and state.ended is not None:
            verdict = run_gate(home, soak_id, key=key, gnupghome=gnupghome)
        return RehearsalResult(state, verdict)
    raise AssertionError("unreachable")  # pragma: no cover (ExitStack does not swallow)
