"""The treaty governs the SLOs: its RTT, fill and provenance targets become the catalog's
objectives and error budgets, the generated rule files, the report and the soak's anomaly
budget; the seed's alert thresholds stay as the seed wrote them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aurora.errors import ConfigError
from aurora.slo import catalog
from aurora.treaty import Treaty
from support import REPO, make_home


def _treaty(rtt_ms: float = 300, fill: float = 0.9, provenance: float = 0.97) -> Treaty:
    document = json.loads((REPO / "templates" / "aurora-treaty-akash.json").read_text())
    document["slo"]["bridge_rtt_ms"] = rtt_ms
    document["kpi_targets"].update(fill_rate=fill, provenance_coverage=provenance)
    return Treaty.model_validate(document)


def test_the_shipped_treaty_sets_the_catalog() -> None:
    treaty = catalog.TREATY
    assert catalog.OBJECTIVE["rtt_p95"].target == treaty.slo.bridge_rtt_ms == 350
    assert catalog.OBJECTIVE["fill_rate_p50"].target == treaty.kpi_targets.fill_rate == 0.85
    assert catalog.OBJECTIVE["provenance"].target == treaty.kpi_targets.provenance_coverage
    assert catalog.RTT_GOOD_MS == 350
    assert catalog.BUDGET["fill"].error_budget == 0.15


def test_changing_the_treaty_changes_objectives_budgets_and_alert_text() -> None:
    treaty = _treaty()
    objective = {o.key: o.target for o in catalog.objectives(treaty)}
    assert (objective["rtt_p95"], objective["fill_rate_p50"], objective["provenance"]) == \
        (300, 0.9, 0.97)
    # the seed's own numbers stay
    assert (objective["rtt_p50"], objective["fill_rate_p95"], objective["policy_p99"]) == \
        (280, 0.80, 25)
    budget = {b.key: b for b in catalog.budgets(treaty)}
    assert budget["fill"].error_budget == 0.1
    assert budget["provenance"].objective == 0.97
    assert budget["rtt"].good == "orders with RTT <= 300 ms"
    alerts = {a.name: a for a in catalog.seed_alerts(treaty)}
    # thresholds as the seed wrote them, the objectives in the text from the treaty
    assert [a.threshold for a in alerts.values()] == \
        [a.threshold for a in catalog.SEED_ALERTS] == [0.75, 400.0, 0.90, 50.0]
    assert "SLO <= 300 ms" in alerts["TreatyRttP95High"].description
    assert "SLO p50 >= 90 %" in alerts["TreatyFillRateLow"].description
    assert "SLO >= 97 %" in alerts["TreatyProvenanceLow"].description


def test_a_treaty_rtt_between_histogram_buckets_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="bridge_rtt_ms 333 is not a bucket bound"):
        catalog.objectives(_treaty(rtt_ms=333))


def test_the_generated_rules_and_the_report_follow_the_home_treaty(tmp_path: Path) -> None:
    root = make_home(tmp_path / "home")
    treaty_file = root / "templates" / "aurora-treaty-akash.json"
    document = json.loads(treaty_file.read_text())
    document["slo"]["bridge_rtt_ms"] = 300
    document["kpi_targets"].update(fill_rate=0.9, provenance_coverage=0.97)
    treaty_file.write_text(json.dumps(document))
    env = {**os.environ, "AURORA_HOME": str(root)}
    # the shipped files were generated from the shipped treaty: stale for this one
    check = subprocess.run([sys.executable, "-m", "aurora.slo.artifacts", "--check"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 1, check.stderr
    write = subprocess.run([sys.executable, "-m", "aurora.slo.artifacts", "--write"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert write.returncode == 0, write.stderr

    rules = root / "ops" / "prometheus" / "rules"
    burn = yaml.safe_load((rules / "aurora-burn-rate.yml").read_text())
    exprs = {r.get("record") or r.get("alert"): r["expr"]
             for g in burn["groups"] for r in g["rules"]}
    assert 'le=~"300(\\\\.0)?"' in exprs["slo:rtt_errors:ratio_rate1h"]
    fill_burn = [r for g in burn["groups"] for r in g["rules"]
                 if r.get("alert") == "TreatyFillBudgetBurn"]
    assert any("(5.6 * 0.1)" in r["expr"] for r in fill_burn)  # was 5.6 * 0.15
    alerts = (rules / "aurora-alerts.yml").read_text()
    assert "SLO <= 300 ms" in alerts and "SLO <= 350 ms" not in alerts
    assert "TreatyRttP95High" in alerts and "> 400" in alerts  # the seed's threshold stays

    probe = ("import json\n"
             "from aurora.slo.report import report_queries\n"
             "from aurora.slo.catalog import OBJECTIVE, BUDGET\n"
             "print(json.dumps({'rtt_good': report_queries('T', '1h')['rtt_good'],\n"
             "  'rtt_p95': OBJECTIVE['rtt_p95'].target,\n"
             "  'fill_budget': BUDGET['fill'].error_budget}))\n")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    answer = json.loads(out.stdout)
    assert answer["rtt_p95"] == 300 and answer["fill_budget"] == 0.1
    assert '300' in answer["rtt_good"] and '350' not in answer["rtt_good"]
