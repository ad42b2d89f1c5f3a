"""The observatory on a real Prometheus 2.42.

1. Scraping: Prometheus runs the configuration ``aurora.slo.promconfig`` renders (1 s scrapes,
   rule windows compressed 120x) against the synthetic feed served on the home's metrics and
   providers ports. The seed's queries return numbers, every expression of the rules, the
   dashboard, the Grafana rules and queries.py is accepted by the query API, the dashboard's
   and recording rules' return data, the rules evaluate without error, the fill-rate alert
   fires when the fill rate falls, the health check's Prometheus checks pass, and the seed's
   reporter command produces a compliant report.
2. The Hour-72 governance report: the seed's signed-report command over 72 h of backfilled
   history, verified with ``gpg --verify`` as the seed does.

The bridge, providers and traffic of the real stack: tests/integration/test_observatory_live.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from aurora.config import load_stack
from aurora.home import Home
from aurora.slo import artifacts, queries
from aurora.slo.health import run_checks
from aurora.slo.promconfig import write_runtime_config
from slo.conftest import Exporters, Prometheus, backfilled_prometheus, wait_until
from slo.scenarios import AT, SCENARIOS, START
from slo.synthetic import TREATY, backfill_text
from slo.test_rules import every_expression

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "canary-slo-reporter.py"
SYSTEM_PYTHON = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"
TIME_SCALE = 1 / 120  # 5m -> 2.5 s (floored at 4 s), 15m -> 7.5 s, 1h -> 30 s, 1d -> 12 min


@pytest.fixture(scope="module")
def incidents_exporter(live_home: Path) -> Iterator[None]:
    """Something on the incident receiver's port, so that every target can be up."""
    port = load_stack(Home(live_home)).incidents_port
    server, thread = start_http_server(port, "127.0.0.1", CollectorRegistry())
    yield
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def prometheus(live_home: Path, exporters: Exporters,
               incidents_exporter: None) -> Iterator[Prometheus]:
    home = Home(live_home)
    stack = load_stack(home)
    config = write_runtime_config(home, stack, scrape_interval="1s", evaluation_interval="1s",
                                  time_scale=TIME_SCALE)
    data = home.data_dir / "prometheus"
    data.mkdir(parents=True, exist_ok=True)
    prom = Prometheus.start(config, data, home.logs_dir / "prometheus.log",
                            port=stack.prometheus_port)
    yield prom
    prom.stop()


def query(prom: Prometheus, expr: str) -> dict[str, Any]:
    return prom.get("/api/v1/query", query=expr)


def numbers(prom: Prometheus, expr: str) -> list[float]:
    answer = query(prom, expr)
    assert answer["status"] == "success", (expr, answer)
    result = answer["data"]["result"]
    if answer["data"]["resultType"] == "scalar":
        return [float(result[1])]
    return [float(item["value"][1]) for item in result]


def test_targets_up_and_treaty_label_twice(prometheus: Prometheus) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        targets = prometheus.get("/api/v1/targets")["data"]["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    targets = wait_until(all_up, 30, "every target up")
    assert {t["labels"]["job"] for t in targets} == {"aurora-metrics", "simulator-metrics",
                                                     "aurora-incidents"}
    (series,) = wait_until(lambda: query(prometheus, "treaty_fill_rate")["data"]["result"], 30,
                           "treaty_fill_rate")
    assert series["metric"]["treaty_id"] == series["metric"]["exported_treaty_id"] == TREATY


def test_every_seed_query_returns_a_number(prometheus: Prometheus) -> None:
    for name, expr in queries.SEED_QUERIES.items():
        values = wait_until(lambda expr=expr: numbers(prometheus, expr), 30, f"seed {name}")
        assert all(v == v for v in values), (name, values)  # not NaN
    # the seed's "Check SLOs" command: curl ... | jq '.data.result[0].value[1]'
    answer = query(prometheus, 'treaty_fill_rate{treaty_id="AURORA-AKASH-001"}')
    assert float(answer["data"]["result"][0]["value"][1]) == pytest.approx(0.97)


def test_every_expression_is_accepted_and_the_dashboards_return_data(
        prometheus: Prometheus) -> None:
    for where, expr in every_expression().items():
        answer = query(prometheus, expr)
        assert answer["status"] == "success", (where, expr, answer)
    dashboard = json.loads((REPO / "ops/grafana/grafana-kpi-panels-patch.json").read_text())
    # the synthetic feed has no incident receiver: the incident panels must return data in
    # tests/integration/test_observatory_live.py, against the whole stack, the canary's in
    # tests/canary/test_canary_live.py, against a rollout (every one is accepted here, above)
    must_return = {e for e in artifacts.iter_dashboard_exprs(dashboard["dashboard"])
                   if "aurora_incidents" not in e and "aurora_canary_" not in e}
    must_return |= set(queries.QUANTILE_RECORDS.values())

    def silent() -> list[str]:
        return [e for e in sorted(must_return) if not numbers(prometheus, e)]

    # the 1h-window burn panel needs one rule evaluation with data
    wait_until(lambda: not silent(), 60, "every dashboard query to return data")


def test_rules_are_loaded_and_evaluate_cleanly(prometheus: Prometheus) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r["health"] != "unknown" for r in rules) else None

    rules = wait_until(evaluated, 30, "every rule evaluated once")
    assert [r for r in rules if r["health"] != "ok"] == []
    generated = [yaml.safe_load(text) for path, text in artifacts.rendered().items()
                 if path.parent == artifacts.RULES_DIR]
    assert len(rules) == sum(len(g["rules"]) for doc in generated for g in doc["groups"])
    firing = {r["name"] for r in rules if r.get("state") == "firing"}
    assert firing == set(), firing


def test_health_checks_against_the_feed_and_prometheus(prometheus: Prometheus,
                                                       live_home: Path) -> None:
    names = ("treaty metrics", "provider metrics", "prometheus targets", "prometheus rules",
             "clock")
    results = run_checks(Home(live_home), only=names)
    assert [(r.name, r.ok) for r in results] == [(n, True) for n in names], results


def test_the_seeds_daily_report_command(prometheus: Prometheus, live_home: Path) -> None:
    day = datetime.now(UTC).strftime("%Y%m%d")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env["AURORA_HOME"] = str(live_home)
    # the seed's command, verbatim but for the URL of this test's Prometheus
    result = subprocess.run(
        [SYSTEM_PYTHON, str(SCRIPT), "--prometheus", prometheus.url,
         "--output", f"reports/daily-{day}.json", "--no-sign"],
        cwd=live_home, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads((live_home / "reports" / f"daily-{day}.json").read_text())
    assert report["window"] == "72h" and report["treaty_id"] == TREATY
    assert report["compliant"] is True, {k: v["value"] for k, v in report["slos"].items()}
    assert "compliant (6/6 SLOs met)" in result.stdout


def test_falling_fill_rate_fires_the_seeds_alert(prometheus: Prometheus,
                                                 exporters: Exporters) -> None:
    exporters.feed.set(fill_rate=0.5)
    try:
        def firing() -> list[dict[str, Any]]:
            alerts = prometheus.get("/api/v1/alerts")["data"]["alerts"]
            return [a for a in alerts
                    if a["labels"]["alertname"] == "TreatyFillRateLow" and a["state"] == "firing"]

        (alert,) = wait_until(firing, 60, "TreatyFillRateLow to fire")
        assert alert["labels"]["treaty_id"] == TREATY
        assert alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["runbook_url"] == "docs/RUNBOOK.md#treatyfillratelow"
    finally:
        exporters.feed.set(fill_rate=0.97)


def test_hour_72_signed_governance_report(tmp_path: Path, gnupghome: tuple[Path, str],
                                          home: Path) -> None:
    """The seed's "Hour 72 Governance Report": sign with --key, check with gpg --verify."""
    scenario = SCENARIOS["compliant"]
    assert scenario.phases is not None
    prom = backfilled_prometheus(tmp_path / "prom",
                                 backfill_text(list(scenario.phases), int(START.timestamp())))
    gnupg, key_id = gnupghome
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env.update(AURORA_HOME=str(home), GNUPGHOME=str(gnupg))
    try:
        result = subprocess.run(
            [SYSTEM_PYTHON, str(SCRIPT), "--prometheus", prom.url,
             "--output", "reports/canary-72h.json", "--key", key_id, "--format", "pdf",
             "--at", AT.strftime("%Y-%m-%dT%H:%M:%SZ")],
            cwd=home, env=env, capture_output=True, text=True, timeout=120)
    finally:
        prom.stop()
    assert result.returncode == 0, result.stderr
    report_path = home / "reports" / "canary-72h.json"
    for name in ("canary-72h.json", "canary-72h.pdf"):
        verify = subprocess.run(["gpg", "--verify", f"reports/{name}.asc", f"reports/{name}"],
                                cwd=home, env=env, capture_output=True, text=True)
        assert verify.returncode == 0, verify.stderr
        assert "Good signature" in verify.stderr
    subprocess.run(["sha256sum", "-c", "canary-72h.json.sha256", "canary-72h.pdf.sha256"],
                   cwd=report_path.parent, check=True, capture_output=True)
    report = json.loads(report_path.read_text())
    assert report["compliant"] is True and report["generated_at"].startswith("2025-10-25T00:00")
    assert "signed" in result.stdout
    # the PDF is the rendering of the signed JSON: the same numbers
    text = subprocess.run(["pdftotext", "-f", "1", "-l", "1", "-layout",
                           str(report_path.with_suffix(".pdf")), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert "COMPLIANT" in text
    for entry in report["slos"].values():
        value = entry["value"]
        assert (str(int(value)) if float(value).is_integer() else repr(value)) in text


def test_client_reads_targets_rules_and_ranges(prometheus: Prometheus, exporters: Exporters,
                                               ) -> None:
    from aurora.slo.prometheus import PrometheusClient, PrometheusError

    with PrometheusClient(prometheus.url) as client:
        assert {t.job: t.health for t in client.targets()} == {
            "aurora-metrics": "up", "simulator-metrics": "up", "aurora-incidents": "up"}
        rules = client.rules()
        assert {a.name for a in rules} >= {"TreatyFillRateLow", "TreatyRttP95High",
                                           "TreatyProvenanceLow", "PolicyLatencyP99High"}
        now = datetime.now(UTC).timestamp()
        (series,) = client.query_range("treaty_fill_rate", now - 5, now, 1)
        assert series.labels["treaty_id"] == TREATY and series.points
        with pytest.raises(PrometheusError, match="bad_data"):
            client.query("rate(treaty_fill_rate[5m]")
    # an HTTP server that is not Prometheus
    with PrometheusClient(f"http://127.0.0.1:{exporters.treaty_port}") as client, \
            pytest.raises(PrometheusError, match="is this Prometheus"):
        client.query("up")
