"""Issue 4 on the live stack: the seed's Observatory checks against the real bridge.

One stack for the module (``live.running_stack``): providers, bridge, incident receiver,
Alertmanager, Prometheus (1 s scrapes, rules compressed 240x) and traffic at 5 orders/s.
In order: the seed's targets are up; every query in the seed's text returns a number; after
about a minute of traffic the seed's reporter (system python3) writes a compliant report over
that minute whose signature ``gpg --verify`` accepts; ``aurora health-check`` is green once a
backup exists; a fault injected with ``aurora chaos`` (an outage of every provider of
eu-west-1 and a latency spike on every provider) drives the fill rate down and the RTT up and
fires their alerts; and every PromQL expression of the dashboard, the rules and queries.py
then returns data (alert conditions: are accepted, and the two faulted ones fire).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from aurora.slo import artifacts, queries
from aurora.slo.catalog import DEFAULT_TREATY_ID
from aurora.slo.report import report_queries
from integration.live import LiveStack, running_stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "canary-slo-reporter.py"
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
TRAFFIC_MINUTE = 60.0  # the seed's integration check: "run traffic for about a minute"
EU_WEST_1 = ("akash", "render", "flux", "aethir", "vastai")  # config/providers.json
# mean round trip of the orders filled in the last 20 s
RTT_MEAN = ("sum by (treaty_id) (rate(treaty_rtt_ms_sum[20s]))\n/\n"
            "sum by (treaty_id) (rate(treaty_rtt_ms_count[20s]))")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with running_stack(tmp_path_factory.mktemp("observatory") / "home") as stack:
        yield stack


def test_the_seeds_targets_are_up(live: LiveStack) -> None:
    def up() -> dict[str, str] | None:
        targets = live.get("/api/v1/targets")["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        return health if health and set(health.values()) == {"up"} else None

    health = wait_until("every scrape target up", up)
    assert {"aurora-metrics", "simulator-metrics"} <= set(health)  # the seed's two jobs


def test_every_query_in_the_seed_returns_a_number(live: LiveStack) -> None:
    # "Verify Data Flow", "Check SLOs", "Check for anomalies" and the SLO table's queries
    for name, expr in queries.SEED_QUERIES.items():
        wait_until(f"the seed's {name} query ({expr})", lambda expr=expr: live.values(expr))
    # the morning check, as the seed pipes it: jq '.data.result[0].value[1]'
    answer = live.query('treaty_fill_rate{treaty_id="AURORA-AKASH-001"}')
    assert 0.95 <= float(answer["data"]["result"][0]["value"][1]) <= 1.0


def test_the_seeds_signed_report_over_the_traffic_minute(live: LiveStack,
                                                         gnupghome: tuple[Path, str]) -> None:
    # let the traffic run for its minute (a wait for data, not an assertion on time)
    time.sleep(max(0.0, live.started + TRAFFIC_MINUTE - time.monotonic()))
    window = f"{int(time.monotonic() - live.started)}s"  # the run so far: >= the report's 1m
    gnupg, key_id = gnupghome
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env.update(AURORA_HOME=str(live.home.root), GNUPGHOME=str(gnupg))
    # the seed's "Hour 72 Governance Report" command, with the system's python3, over the
    # window this stack has run
    done = subprocess.run(
        [SYSTEM_PYTHON, str(SCRIPT), "--prometheus", live.prometheus,
         "--output", "reports/canary-live.json", "--key", key_id, "--window", window],
        cwd=live.home.root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((live.home.root / "reports" / "canary-live.json").read_text())
    values = {name: slo["value"] for name, slo in report["slos"].items()}
    assert report["compliant"] is True, (values, done.stdout)
    assert report["window"] == window and report["treaty_id"] == DEFAULT_TREATY_ID
    assert report["samples"]["admitted_orders"] > 100 and report["drop_rate"]["value"] == 0
    verify = subprocess.run(["gpg", "--verify", "reports/canary-live.json.asc",
                             "reports/canary-live.json"], cwd=live.home.root, env=env,
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and "Good signature" in verify.stderr, verify.stderr


def test_health_check_is_green_once_a_backup_exists(live: LiveStack) -> None:
    live.aurora("ledger", "backup")
    done = subprocess.run([sys.executable, "-m", "aurora", "health-check", "--json"],
                          cwd=live.home.root,
                          env={**os.environ, "AURORA_HOME": str(live.home.root)},
                          capture_output=True, text=True, timeout=120)
    checks = json.loads(done.stdout)
    failing = {c["name"]: c["detail"] for c in checks["checks"] if not c["ok"]}
    assert done.returncode == 0 and checks["ok"] and not failing, failing or done.stderr
    assert len(checks["checks"]) >= 10


def test_a_provider_outage_drives_fill_rate_down_and_rtt_up(live: LiveStack) -> None:
    fill_before = wait_until("the fill rate", lambda: live.value(queries.SEED_FILL_RATE_TREATY))
    rtt_before = wait_until("the mean RTT", lambda: live.value(RTT_MEAN))
    assert fill_before >= 0.95
    # eu-west-1 loses every provider (503 at once: its orders drop); the rest get slow
    for provider in EU_WEST_1:
        live.aurora("chaos", "outage", "--provider", provider, "--for", "2m", "--mode", "refuse")
    for provider in ("ionet", "salad"):
        live.aurora("chaos", "latency-spike", "--provider", provider, "--for", "2m",
                    "--factor", "3")

    def fallen() -> float | None:
        fill = live.value(queries.SEED_FILL_RATE_TREATY)
        return fill if fill is not None and fill < 0.75 else None

    def risen() -> float | None:
        rtt = live.value(RTT_MEAN)
        return rtt if rtt is not None and rtt > 1.5 * rtt_before else None

    wait_until(f"the fill rate to fall below 0.75 (from {fill_before:.2f})", fallen)
    wait_until(f"the mean RTT to rise 50 % (from {rtt_before:.0f} ms)", risen)
    # and the seed's alerts on those series fire (rules compressed: 15 m -> 4 s)
    wait_until("TreatyFillRateLow and TreatyRttP95High to fire", lambda: {
        "TreatyFillRateLow", "TreatyRttP95High"} <= {
        name for name, state in live.alert_states().items() if state == "firing"})
    drops = live.values('sum(increase(treaty_dropped_requests_total{reason="no_provider"}[1m]))')
    assert drops and drops[0] > 0


def _alert_expressions() -> dict[str, str]:
    out = {}
    for path, text in artifacts.rendered().items():
        if path.parent == artifacts.RULES_DIR:
            for group in yaml.safe_load(text.split("\n", 2)[2])["groups"]:
                for rule in group["rules"]:
                    if "alert" in rule:
                        out[f"{path.name} {rule['alert']} {rule['labels']}"] = rule["expr"]
    return out


CANARY_METRIC_PREFIX = "aurora_canary_"


def _data_expressions(window: str) -> dict[str, str]:
    """Every expression that must return data while the stack runs: the dashboard's, the
    recording rules' (by their recorded names and their own expressions), every alert's
    signal, and queries.py's and the reporter's (alert conditions excepted)."""
    found: dict[str, str] = {}
    dashboard = json.loads((REPO / "ops/grafana/grafana-kpi-panels-patch.json").read_text())
    found.update({f"dashboard #{i}": e for i, e in
                  enumerate(artifacts.iter_dashboard_exprs(dashboard["dashboard"]))})
    for document in (artifacts.recording_rules(), artifacts.burn_rate_rules()):
        for group in document["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    found[f"record {rule['record']}"] = rule["record"]
                    found[f"record expr {rule['record']}"] = rule["expr"]
    found.update({f"signal {k}": v for k, v in queries.ALERT_SIGNALS.items()})
    skip = {"NO_TRAFFIC", "TARGET_DOWN",  # conditions: empty while traffic flows and all is up
            "ADMITTED", "FILLED", "DROPPED"}  # label matchers, not queries
    for name, value in vars(queries).items():
        if not name.isupper() or name in skip or name.endswith(("_WINDOW", "_RECORD")):
            continue
        if isinstance(value, str):
            found[f"queries.{name}"] = value
        elif isinstance(value, dict):
            found.update({f"queries.{name}[{k}]": v for k, v in value.items()})
    found.update({f"report {k}": v for k, v in report_queries(DEFAULT_TREATY_ID, window).items()})
    # a canary controller's series exist only during a rollout: tests/canary/
    # test_canary_live.py checks that those queries return data, against a rollout
    return {where: e for where, e in found.items() if CANARY_METRIC_PREFIX not in e}


def test_every_expression_returns_data_after_the_fault(live: LiveStack) -> None:
    window = f"{int(time.monotonic() - live.started)}s"
    expressions = _data_expressions(window)
    assert len(expressions) > 100

    def silent() -> list[str] | None:
        missing = [f"{where}: {expr}" for where, expr in expressions.items()
                   if not live.values(expr)]
        return missing or None

    # one rule evaluation after the fault is enough; poll for it rather than assume it
    deadline = time.monotonic() + 60
    while (missing := silent()) and time.monotonic() < deadline:
        time.sleep(1)
    assert not missing, "\n".join(missing)
    for expr in _alert_expressions().values():
        live.query(expr)  # accepted by the live Prometheus (query() asserts success)
    rules = [r for g in live.get("/api/v1/rules")["data"]["groups"] for r in g["rules"]]
    assert [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] == "err"] == []
