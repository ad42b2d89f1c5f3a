"""``aurora canary rehearse``: a whole rollout on a compressed clock, in an isolated home.

Real processes throughout: a throwaway PostgreSQL cluster (the replicated mode's shared
treaty state and log), the stack with two bridge replicas, Prometheus scraping every second,
HAProxy doing the split, the candidate's replica group and the controller. Traffic comes
from 100 rehearsal tenants, one per split bucket, so a weight of w % is exactly w % of the
tenants. Two scenarios:

- ``good``: the candidate is a configuration identical in behaviour to stable; it must be
  promoted through every step to 100 %;
- ``bad``: the candidate's provider timeout (60 ms) is below every provider's latency, so its
  orders fail over and drop; it must be aborted at the first step, the abort measured.

Either way the rehearsal then checks what the switches must not break: every order the
traffic got a 200 for is in the ledger (nothing acknowledged is lost), no nonce is
recorded twice, and the GPU-hours the ledger holds are what the tenants were told they got.
The rollout's evidence is the same ``deploy`` entries a real rollout writes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora.canary.plan import BUCKETS, Phase, bucket_of
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.traffic.run import TrafficStats

SCENARIOS = ("good", "bad")
EXPECTED = {"good": Phase.PROMOTED, "bad": Phase.ABORTED}
TENANT_PREFIX = "rehearsal"


class RehearsalError(AuroraError):
    """The rehearsal could not run (a process did not start, a step timed out)."""


def bucket_tenants() -> list[str]:
    """100 tenant ids, the i-th hashing into split bucket i."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < BUCKETS:
        name = f"{TENANT_PREFIX}-{n:04d}"
        found.setdefault(bucket_of(name), name)
        n += 1
    return [found[b] for b in range(BUCKETS)]


def add_tenants(home: Home, tenants: list[str]) -> None:
    """The rehearsal tenants in ``tenants.json`` and ``workloads.json`` (equal shares)."""
    tenants_file = home.config_dir / "tenants.json"
    document = json.loads(tenants_file.read_text())
    known = {t["id"] for t in document["tenants"]}
    document["tenants"] += [{"id": t, "name": f"Rehearsal tenant {t}", "reputation": 80,
                             "routing": {"max_latency_ms": 400}}
                            for t in tenants if t not in known]
    tenants_file.write_text(json.dumps(document, indent=2) + "\n")
    workloads_file = home.config_dir / "workloads.json"
    workloads = json.loads(workloads_file.read_text())
    known = {w["tenant"] for w in workloads["tenants"]}
    workloads["tenants"] += [{"tenant": t, "regions": ["eu-west-1", "us-west-2"], "share": 1.0,
                              "daily_budget_gpu_hours": 90, "mix": [
                                  {"name": "rehearsal", "weight": 1.0, "gpu_hours_min": 0.1,
                                   "gpu_hours_max": 0.15}]}
                             for t in tenants if t not in known]
    workloads_file.write_text(json.dumps(workloads, indent=2) + "\n")


def candidate_dir(home: Home, scenario: str, root: Path) -> Path:
    """The candidate configuration of a scenario (a directory with ``config/``)."""
    target = root / f"candidate-{scenario}"
    (target / "config").mkdir(parents=True, exist_ok=True)
    stack = json.loads((home.config_dir / "stack.json").read_text())
    if scenario == "bad":
        stack["provider_timeout_ms"] = 60  # below every provider's latency: all fail over
    else:
        stack["market_refresh_ms"] = stack.get("market_refresh_ms", 1000)  # same behaviour
        stack["fill_window"] = stack.get("fill_window", "5m")
    (target / "config" / "stack.json").write_text(json.dumps(stack, indent=2) + "\n")
    return target


@dataclass
class Invariants:
    acked: int
    ledger_orders: int
    lost: list[str]  # acknowledged nonces the ledger lacks
    duplicated: list[str]  # nonces with more than one order row
    acked_gpu_hours: float
    ledger_gpu_hours_acked: float

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated and \
            abs(self.acked_gpu_hours - self.ledger_gpu_hours_acked) < 1e-6

    def to_json(self) -> dict[str, Any]:
        return {"acked": self.acked, "ledger_orders": self.ledger_orders,
                "lost": self.lost[:10], "duplicated": self.duplicated[:10],
                "acked_gpu_hours": round(self.acked_gpu_hours, 6),
                "ledger_gpu_hours_of_acked": round(self.ledger_gpu_hours_acked, 6),
                "ok": self.ok}


def check_invariants(home: Home, acked: dict[str, float]) -> Invariants:
    from aurora.ledger.ledger import Ledger

    seen: dict[str, int] = {}
    hours: dict[str, float] = {}
    with Ledger.open(home, readonly=True) as ledger:
        for row in ledger.scan(kinds="order"):
            nonce = str(row.subject)
            seen[nonce] = seen.get(nonce, 0) + 1
            order = (row.data or {}).get("order") or {}
            hours[nonce] = float(order.get("gpu_hours", 0.0))
    return Invariants(
        acked=len(acked), ledger_orders=sum(seen.values()),
        lost=sorted(n for n in acked if n not in seen),
        duplicated=sorted(n for n, c in seen.items() if c > 1),
        acked_gpu_hours=sum(acked.values()),
        ledger_gpu_hours_acked=sum(hours.get(n, 0.0) for n in acked))


@dataclass
class ScenarioResult:
    scenario: str
    rollout: str
    phase: str
    reason: str
    expected: str
    steps_reached: list[int]
    deploy_entries: int
    traffic: dict[str, Any]
    invariants: Invariants
    report: str
    seconds: float
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.phase == self.expected and self.invariants.ok

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "rollout": self.rollout, "phase": self.phase,
                "expected": self.expected, "ok": self.ok, "reason": self.reason,
                "steps_reached": self.steps_reached, "deploy_entries": self.deploy_entries,
                "traffic": self.traffic, "invariants": self.invariants.to_json(),
                "report": self.report, "seconds": round(self.seconds, 1)}


@dataclass(frozen=True)
class RehearsalOptions:
    rate: float = 25.0  # orders per second from the rehearsal tenants
    warmup_s: float = 30.0  # traffic before the start: the latency baseline
    hold_s: float = 15.0
    # the compressed clock's "first minute" after a weight change: it must cover the
    # controller's start-up, which slows both tracks for about 6 s on a 2-core machine
    settle_s: float = 10.0
    interval_s: float = 2.0
    timeout_s: float = 600.0
    replicas: int = 2


def _traffic(home: Home, rate: float, stop: threading.Event, stats: TrafficStats,
             tenants: list[str], failed: list[BaseException]) -> None:
    from aurora.traffic.run import run_traffic

    try:
        asyncio.run(run_traffic(home, rate=rate, tenants=tenants, pace=False, seed=7,
                                stats=stats, stop=stop.is_set))
    except BaseException as exc:  # reported by the rehearsal, which then fails
        failed.append(exc)


def _set_database(home: Home, url: str) -> None:
    path = home.config_dir / "stack.json"
    stack = json.loads(path.read_text())
    stack["database_url"] = url
    path.write_text(json.dumps(stack, indent=2) + "\n")


def rehearse_scenario(scenario: str, root: Path, options: RehearsalOptions,
                      on_step: Callable[[str], None] = lambda _: None) -> ScenarioResult:
    """One scenario in its own home under ``root`` and its own PostgreSQL cluster."""
    from aurora.canary.analysis import Thresholds, sizes_record, step_sizes
    from aurora.canary.candidate import resolve
    from aurora.canary.live import CONTROLLER, launch
    from aurora.canary.plan import Plan
    from aurora.canary.rollout import load, write_report
    from aurora.db import cluster, schema
    from aurora.ledger.ledger import Ledger
    from aurora.ports import free_port
    from aurora.procs import running
    from aurora.provision import init_home
    from aurora.soak.isolate import isolated_home
    from aurora.stack import UpOptions, down, up
    from aurora.treaty import load_treaty

    if scenario not in SCENARIOS:
        raise RehearsalError(f"unknown scenario {scenario!r} (one of {', '.join(SCENARIOS)})")
    began = time.time()
    home = isolated_home(root / scenario)
    tenants = bucket_tenants()
    add_tenants(home, tenants)
    init_home(home)  # keys for the rehearsal tenants
    # PostgreSQL runs as its own user when we are root: its directory must be reachable
    pg_root = Path(tempfile.mkdtemp(prefix="aurora-canary-pg-"))
    pg_root.chmod(0o755)
    pg_home = Home(pg_root)
    stop = threading.Event()
    stats = TrafficStats()
    failed: list[BaseException] = []
    traffic = threading.Thread(target=_traffic, daemon=True,
                               args=(home, options.rate, stop, stats, tenants, failed))
    try:
        on_step(f"{scenario}: starting PostgreSQL")
        # while the split takes over, stable's old replicas, its new group and the
        # candidate's each hold their (at most 13) connections: the default 200 suffices
        pg = cluster.start(pg_home, pg_root / "data", free_port(), fast=True)
        schema.init(pg.url())
        _set_database(home, pg.url())
        on_step(f"{scenario}: starting the stack ({options.replicas} replicas)")
        up(home, UpOptions(traffic=False, backups=False, replicas=options.replicas,
                           scrape_interval="1s", evaluation_interval="1s"),
           on_step=lambda text: on_step(f"{scenario}: {text}"))
        traffic.start()
        on_step(f"{scenario}: {options.warmup_s:g} s of traffic before the start (the "
                "latency baseline)")
        time.sleep(options.warmup_s)
        if failed:
            raise RehearsalError(f"{scenario}: the traffic did not start: {failed[0]}")
        candidate = resolve(home, str(candidate_dir(home, scenario, root / scenario)))
        plan = Plan(steps=(10, 50, 100), hold_s=options.hold_s,
                    decide_within_s=max(options.hold_s, options.timeout_s / 2),
                    inconclusive_for_s=60.0, settle_s=options.settle_s)
        per_min = options.rate * 60
        sizes = sizes_record(step_sizes(per_min, plan.steps[0], Thresholds.of()), per_min,
                             plan.steps[0])
        rollout = launch(home, candidate, plan=plan,
                         gate={"forced": True, "reason": "rehearsal: an isolated home has "
                               "no soak, so no Day-7 gate"},
                         sizes=sizes,
                         thresholds=Thresholds.of(), baseline_s=options.warmup_s,
                         interval_s=options.interval_s, linger_s=2.0,
                         treaty_id=load_treaty(home).treaty_id,
                         on_step=lambda text: on_step(f"{scenario}: {text}"))
        deadline = time.monotonic() + options.timeout_s
        weights: list[int] = []
        with Ledger.open(home, readonly=True) as ledger:
            while True:
                told = load(ledger, rollout.rollout)
                if told.state.weight not in weights and told.state.weight:
                    weights.append(told.state.weight)
                    on_step(f"{scenario}: weight {told.state.weight} %")
                if told.state.done and running(home, CONTROLLER) is None:
                    break
                if failed:
                    raise RehearsalError(f"{scenario}: the traffic stopped: {failed[0]}")
                if time.monotonic() > deadline:
                    raise RehearsalError(f"{scenario}: the rollout did not end within "
                                         f"{options.timeout_s:g} s ({told.state.reason})")
                time.sleep(1.0)
        stop.set()
        traffic.join(timeout=60)
        on_step(f"{scenario}: checking the ledger against every acknowledgement")
        invariants = check_invariants(home, dict(stats.acked))
        with Ledger.open(home, readonly=True) as ledger:
            told = load(ledger, rollout.rollout)
            published = write_report(home, told, ledger, key=None)
        return ScenarioResult(scenario, told.rollout, told.state.phase.value, told.state.reason,
                              EXPECTED[scenario].value, weights, len(told.seqs),
                              stats.to_json(), invariants, str(published.path),
                              time.time() - began)
    finally:
        stop.set()
        if traffic.is_alive():
            traffic.join(timeout=60)
        down(home)
        cluster.stop(pg_home)
        shutil.rmtree(pg_root, ignore_errors=True)
