"""Prometheus and Grafana files: promtool checks and rule tests, and consistency between the
seed, the rule files, the Grafana files, the dashboard, queries.py and the runbook."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aurora.home import Home
from aurora.slo import artifacts, queries
from aurora.slo.catalog import BUDGETS, DATASOURCE_UID, SEED_ALERTS, THRESHOLD_ALERTS
from aurora.slo.report import report_queries
from aurora.soak.collect import promtool_check

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "ops"
RULE_FILES = sorted((OPS / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((OPS / "prometheus" / "tests").glob("*.yml"))

# The seed's "Deploy Prometheus" configuration, verbatim.
SEED_PROMETHEUS_YML = """
global:
  scrape_interval: 15s
  evaluation_interval: 15s

scrape_configs:
  - job_name: 'aurora-metrics'
    static_configs:
      - targets: ['localhost:9109']
        labels:
          treaty_id: 'AURORA-AKASH-001'

  - job_name: 'simulator-metrics'
    static_configs:
      - targets: ['localhost:9110']
        labels:
          component: 'simulator'
"""


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def all_rules() -> Iterator[dict[str, Any]]:
    for path in RULE_FILES:
        for group in load(path)["groups"]:
            yield from group["rules"]


# --- promtool ---------------------------------------------------------------------------------

def test_promtool_check_config() -> None:
    result = promtool("check", "config", str(OPS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests() -> None:
    # as the Day-7 gate runs them: every file, side by side
    assert len(RULE_TESTS) >= 3
    assert promtool_check(Home(REPO)) == (True, f"{len(RULE_TESTS)} test file(s): SUCCESS")


def test_a_failing_rule_test_fails_the_check_and_names_its_file(tmp_path: Path) -> None:
    shutil.copytree(OPS / "prometheus", tmp_path / "ops" / "prometheus")
    tests = tmp_path / "ops" / "prometheus" / "tests"
    for other in tests.glob("*.yml"):  # one file that passes beside the one that fails
        if other.name not in ("burn-rate-policy.test.yml", "canary-alerts.test.yml"):
            other.unlink()
    policy = tests / "burn-rate-policy.test.yml"
    text = policy.read_text()
    silent = "{eval_time: 65m, alertname: PolicyLatencyBudgetBurn, exp_alerts: []}"
    assert silent in text  # 2 % slow decisions stay silent; expect a page instead
    policy.write_text(text.replace(silent, silent.replace(
        "exp_alerts: []", "exp_alerts: [{exp_labels: {severity: page}}]"), 1))
    ok, detail = promtool_check(Home(tmp_path))
    assert ok is False
    assert detail.startswith("1 of 2 test file(s) failed: burn-rate-policy.test.yml: "), detail


def test_every_alert_has_a_promtool_test_that_fires_it() -> None:
    tested = set()
    for path in RULE_TESTS:
        for case in load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    alerts = {r["alert"] for r in all_rules() if "alert" in r}
    assert alerts == tested


def test_generated_files_are_up_to_date() -> None:
    assert artifacts.stale(OPS) == [], "run: python -m aurora.slo.artifacts --write"


# --- ops/prometheus.yml -------------------------------------------------------------------------

def test_prometheus_yml_is_the_seeds_plus_rules_alerting_and_incidents() -> None:
    seed = yaml.safe_load(SEED_PROMETHEUS_YML)
    ours = load(OPS / "prometheus.yml")
    assert ours["global"] == seed["global"]
    assert ours["scrape_configs"][:2] == seed["scrape_configs"]
    assert [j["job_name"] for j in ours["scrape_configs"][2:]] == ["aurora-incidents",
                                                                   "aurora-canary"]
    assert ours["scrape_configs"][2]["static_configs"] == [{"targets": ["localhost:9111"]}]
    assert ours["scrape_configs"][3]["static_configs"] == [{"targets": ["localhost:9129"]}]
    assert ours["rule_files"] == ["prometheus/rules/*.yml"]
    assert ours["alerting"] == {"alertmanagers": [{"static_configs": [
        {"targets": ["localhost:9093"]}]}]}


# --- the seed's four alerts -----------------------------------------------------------------------

def test_the_seeds_alerts_literally() -> None:
    alerts = {r["alert"]: r for r in all_rules() if "alert" in r}
    expected = {  # the seed's "Alert if"
        "TreatyFillRateLow": ("treaty_fill_rate", "< 0.75", "15m"),
        "TreatyRttP95High": ("histogram_quantile(0.95, sum by (le, treaty_id) "
                             "(rate(treaty_rtt_ms_bucket[5m])))", "> 400", "15m"),
        "TreatyProvenanceLow": ("treaty_provenance_coverage", "< 0.9", "5m"),
        "PolicyLatencyP99High": ("histogram_quantile(0.99, sum by (le, treaty_id) "
                                 "(rate(policy_decision_ms_bucket[5m])))", "> 50", "5m"),
    }
    for name, (signal, condition, hold) in expected.items():
        rule = alerts[name]
        assert signal in rule["expr"] and rule["expr"].endswith(condition), rule["expr"]
        assert rule["for"] == hold


def test_every_alert_is_labelled_and_documented() -> None:
    runbook = (REPO / "docs" / "RUNBOOK.md").read_text()
    assert re.search(r"^## Alerts$", runbook, re.M)
    anchors = {h.strip().lower() for h in re.findall(r"^### (.+)$", runbook, re.M)}
    for rule in all_rules():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/RUNBOOK.md#{rule['alert'].lower()}"
        assert rule["alert"].lower() in anchors, f"no '### {rule['alert']}' in docs/RUNBOOK.md"
        # one alert per treaty: aggregated by / matched on treaty_id (target down: from up;
        # the SLA breach: per SEV of the breached incidents, which belong to no one treaty)
        expr = rule["expr"]
        assert (re.search(r"(by|on) \((le, )?treaty_id\)", expr) or expr.startswith("up{")
                or (rule["alert"] == "AuroraIncidentSlaBreached"
                    and expr.startswith("sum by (sev) ("))
                # a canary's alerts are per rollout (its orders span every treaty's track)
                or (rule["alert"].startswith("AuroraCanary")
                    and expr.startswith("max by (rollout) (")))


def test_sev1_and_sla_breach_alerts() -> None:
    alerts = {r["alert"]: r for r in all_rules() if "alert" in r}
    critical = alerts["TreatyProvenanceCritical"]
    assert critical["expr"] == "min by (treaty_id) (treaty_provenance_coverage) < 0.8"
    assert critical["for"] == "5m" and critical["labels"]["severity"] == "critical"
    tampering = alerts["AuroraLedgerTampering"]
    assert 'increase(treaty_provenance_checks_total{result="failed"}[10m])' in tampering["expr"]
    assert "increase(aurora_ledger_consistency_failures_total[10m])" in tampering["expr"]
    assert tampering["expr"].endswith(") > 0") and "for" not in tampering
    breach = alerts["AuroraIncidentSlaBreached"]
    assert breach["expr"] == ("sum by (sev) (increase(aurora_incidents_sla_breached_total[10m]))"
                              " > 0")
    assert "for" not in breach


def test_burn_rate_alerts_for_every_slo_with_traffic_guard() -> None:
    burns = [r for r in all_rules() if r.get("alert", "").endswith("BudgetBurn")]
    assert len(burns) == 3 * len(BUDGETS)
    for rule in burns:
        labels = rule["labels"]
        pair = (labels["long_window"], labels["short_window"], labels["severity"])
        assert pair in {("1h", "5m", "critical"), ("6h", "30m", "critical"),
                        ("1d", "2h", "warning")}
        guard = f"slo:{labels['slo']}_events:increase{labels['long_window']} >= 100"
        assert rule["expr"].endswith(guard), "traffic guard"
        assert f"ratio_rate{labels['long_window']}" in rule["expr"]
        assert f"ratio_rate{labels['short_window']}" in rule["expr"]


def test_quantile_recording_rules_use_rate_windows() -> None:
    records = {r["record"]: r["expr"] for r in all_rules() if "record" in r}
    for name in queries.QUANTILE_RECORDS:
        assert re.search(r"rate\(\w+_bucket\[\w+\]\)", records[name]), records[name]
    assert records["treaty:rtt_ms:p95_rate5m"] == (
        "histogram_quantile(0.95, sum by (le, treaty_id) (rate(treaty_rtt_ms_bucket[5m])))")


# --- Grafana --------------------------------------------------------------------------------------

def provisioned_datasource() -> dict[str, Any]:
    files = sorted((OPS / "grafana" / "provisioning" / "datasources").glob("*.yaml"))
    (source,) = [d for f in files for d in load(f)["datasources"]]
    return source  # type: ignore[no-any-return]


def test_datasource_uid_is_the_one_everything_uses() -> None:
    source = provisioned_datasource()
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"


def test_dashboard_is_an_import_envelope_with_the_required_panels() -> None:
    document = json.loads((OPS / "grafana" / "grafana-kpi-panels-patch.json").read_text())
    assert set(document) >= {"dashboard", "overwrite"} and document["overwrite"] is True
    dashboard = document["dashboard"]
    assert dashboard["id"] is None and dashboard["uid"] and dashboard["title"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID and target["expr"]
    exprs = " ".join(artifacts.iter_dashboard_exprs(dashboard))
    for needle in ("treaty_fill_rate", queries.RTT_P95_RECORD, "treaty_provenance_coverage",
                   queries.POLICY_P99_RECORD, "treaty_dropped_requests_total",
                   "treaty_failover_events_total", "provider_active", "provider_latency_ms",
                   "provider_capacity_gpu_hours", "provider_price_usd", "provider_reputation"):
        assert needle in exprs, needle
    provisioned = json.loads((OPS / "grafana" / "dashboards" / "aurora-kpi.json").read_text())
    assert provisioned == dashboard


def test_grafana_alert_rules_are_the_threshold_alerts() -> None:
    document = load(OPS / "grafana" / "aurora-alert-rules.yaml")
    assert document["apiVersion"] == 1
    rules = {r["title"]: r for g in document["groups"] for r in g["rules"]}
    prometheus = {r["alert"]: r for r in all_rules() if "alert" in r}
    assert set(rules) == {a.name for a in THRESHOLD_ALERTS}  # the seed's four and more
    ops = {"lt": "<", "gt": ">"}
    for title, rule in rules.items():
        query, condition = rule["data"]
        assert query["datasourceUid"] == DATASOURCE_UID
        assert query["model"]["datasource"]["uid"] == DATASOURCE_UID
        (check,) = condition["model"]["conditions"]
        evaluator = check["evaluator"]
        threshold = evaluator["params"][0]
        number = str(int(threshold)) if float(threshold).is_integer() else repr(threshold)
        assert (f"{query['model']['expr']} {ops[evaluator['type']]} {number}"
                == prometheus[title]["expr"])
        assert rule["for"] == prometheus[title].get("for", "0s")
        assert rule["labels"]["severity"] == prometheus[title]["labels"]["severity"]
        assert rule["condition"] == condition["refId"]


def test_docker_compose_mounts_files_that_exist() -> None:
    compose = load(OPS / "docker-compose.yml")
    assert set(compose["services"]) == {"prometheus", "alertmanager", "grafana"}
    for service in compose["services"].values():
        assert service["network_mode"] == "host"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                if source == "./alertmanager.yml":
                    continue  # issue 6's file
                assert (OPS / source).exists(), source


# --- every PromQL expression parses -------------------------------------------------------------

def every_expression() -> dict[str, str]:
    """Where each expression comes from → the expression."""
    found: dict[str, str] = {}
    for path in RULE_FILES:
        for i, rule in enumerate(r for g in load(path)["groups"] for r in g["rules"]):
            found[f"{path.name}#{i}"] = rule["expr"]
    grafana = load(OPS / "grafana" / "aurora-alert-rules.yaml")
    for group in grafana["groups"]:
        for rule in group["rules"]:
            for data in rule["data"]:
                if "expr" in data["model"]:
                    found[f"grafana {rule['title']} {data['refId']}"] = data["model"]["expr"]
    dashboard = json.loads((OPS / "grafana" / "grafana-kpi-panels-patch.json").read_text())
    for i, expr in enumerate(artifacts.iter_dashboard_exprs(dashboard["dashboard"])):
        found[f"dashboard #{i}"] = expr
    for name, value in vars(queries).items():
        if isinstance(value, str) and name.isupper() and name not in ("ADMITTED", "FILLED",
                                                                      "DROPPED") \
                and not name.endswith(("_WINDOW", "_RECORD")):
            found[f"queries.{name}"] = value
        elif isinstance(value, dict) and name.isupper():
            found.update({f"queries.{name}[{k}]": v for k, v in value.items()})
    for key in (b.key for b in BUDGETS):
        found[f"queries.error_ratio({key})"] = queries.error_ratio(key, "1h")
        found[f"queries.events_in({key})"] = queries.events_in(key, "1h")
    found.update({f"report {k}": v for k, v in report_queries("AURORA-AKASH-001", "72h").items()})
    return found


def test_every_promql_expression_parses(tmp_path: Path) -> None:
    expressions = every_expression()
    assert len(expressions) > 80
    rules = {"groups": [{"name": "parse-check", "rules": [
        {"record": f"parse_check:expr_{i}", "expr": expr}
        for i, expr in enumerate(expressions.values())]}]}
    path = tmp_path / "parse-check.yml"
    path.write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", str(path))
    if result.returncode != 0:
        where = dict(enumerate(expressions))
        failing = [where[int(n)] for n in re.findall(r"expr_(\d+)", result.stdout + result.stderr)]
        pytest.fail(f"unparsable PromQL in {failing}: {result.stdout}{result.stderr}")


def test_dashboard_is_built_by_grafanas_sdk_with_a_panel_per_seed_slo() -> None:
    from aurora.slo import dashboard as board

    generated = board.dashboard_import()
    assert generated == json.loads((OPS / "grafana" / "grafana-kpi-panels-patch.json").read_text())
    panels = [p for p in generated["dashboard"]["panels"] if p["type"] != "row"]
    by_title = {p["title"]: p for p in panels}
    for alert in SEED_ALERTS:
        signal = queries.ALERT_SIGNALS[alert.signal_key]
        record = {"rtt": queries.RTT_P95_RECORD, "policy": queries.POLICY_P99_RECORD}
        expr = record.get(alert.slo, signal)
        with_it = [p for p in panels if any(t["expr"] == expr for t in p["targets"])]
        assert {p["type"] for p in with_it} >= {"stat", "timeseries"}, alert.name
        for panel in with_it:
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert alert.threshold in [s["value"] for s in steps], (alert.name, panel["title"])
    burn = by_title["Error-budget burn rate (1h)"]
    assert len(burn["targets"]) == len(BUDGETS)
    incident_exprs = {t["expr"] for p in panels for t in p["targets"]
                      if "aurora_incidents" in t["expr"]}
    assert queries.SLA_BREACHES in incident_exprs and queries.INCIDENTS_OPEN in incident_exprs
