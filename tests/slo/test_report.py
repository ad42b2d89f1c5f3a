"""Report assembly on answers recorded from a real Prometheus (tests/slo/fixtures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aurora.canonical import canonical_json
from aurora.errors import AuroraError
from aurora.slo import queries as q
from aurora.slo.report import (
    INSUFFICIENT,
    Window,
    build_report,
    report_queries,
    summary_table,
    write_report,
)
from slo.scenarios import AT, WINDOW, RecordedSource, load
from slo.synthetic import TREATY, Shape


def report_for(scenario: str) -> dict[str, Any]:
    source = RecordedSource(load(scenario))
    report = build_report(source, treaty_id=TREATY, window=WINDOW, at=AT,
                          prometheus_url="http://127.0.0.1:9090")
    # every recorded query was asked, and only those
    recording = load(scenario)
    assert sorted(set(source.asked)) == sorted({*recording["responses"],
                                                *recording["range_responses"]})
    return report


def test_healthy_72h_is_compliant_with_every_field_the_issue_asks_for() -> None:
    report = report_for("compliant")
    assert report["treaty_id"] == TREATY
    assert report["window"] == "72h"
    assert report["generated_at"] == "2025-10-25T00:00:00.000000Z"
    assert report["prometheus"] == "http://127.0.0.1:9090"
    assert report["compliant"] is True and report["status"] == "compliant"
    assert set(report["slos"]) == {"fill_rate_p50", "fill_rate_p95", "rtt_p50", "rtt_p95",
                                   "provenance", "policy_p99"}
    for entry in report["slos"].values():
        assert entry["compliant"] is True and entry["status"] == "met"
        assert {"objective", "query", "value", "samples"} <= set(entry)
        assert "[72h]" in entry["query"] and 'treaty_id="AURORA-AKASH-001"' in entry["query"]
    healthy = Shape()
    slos = report["slos"]
    assert slos["fill_rate_p50"]["value"] == pytest.approx(healthy.fill_rate, abs=0.01)
    assert slos["provenance"]["value"] == pytest.approx(healthy.provenance)
    assert slos["rtt_p95"]["value"] <= 350 and slos["rtt_p50"]["value"] <= 280
    assert slos["policy_p99"]["value"] <= 25
    assert report["drop_rate"]["value"] == pytest.approx(healthy.drop_share)
    # 72 h at one fill-rate observation per minute
    assert slos["fill_rate_p95"]["samples"] == pytest.approx(72 * 60)


def test_both_readings_of_fill_p95_and_the_seeds_literal_query_are_reported() -> None:
    entry = report_for("compliant")["slos"]["fill_rate_p95"]
    assert entry["query"] == q.fill_p95_strict("72h", TREATY)
    assert entry["query"].startswith("histogram_quantile(0.05,")
    assert entry["seed"]["query"] == "histogram_quantile(0.95, treaty_fill_rate_bucket)"
    assert entry["literal"]["query"].startswith("histogram_quantile(0.95,")
    # the literal reading is the optimistic tail of a higher-is-better metric
    assert entry["literal"]["value"] > entry["value"]
    assert entry["seed"]["value"] is not None


def test_a_six_hour_outage_fails_the_strict_fill_reading_only() -> None:
    report = report_for("outage")
    assert report["compliant"] is False and report["status"] == "not compliant"
    slos = report["slos"]
    # 6 of 72 hours of windows at 0.4: more than 5 % of windows under 0.80
    assert slos["fill_rate_p95"]["compliant"] is False
    assert slos["fill_rate_p95"]["value"] < 0.8
    # ...while the seed's literal reading would have passed it
    assert slos["fill_rate_p95"]["literal"]["value"] >= 0.8
    assert slos["fill_rate_p50"]["compliant"] is True
    assert slos["provenance"]["minimum"]["value"] == pytest.approx(0.85)
    budgets = report["error_budgets"]
    # more drops than the healthy run, budget partly spent but not exhausted
    healthy = report_for("compliant")["error_budgets"]
    assert budgets["fill"]["burn_rate"] > healthy["fill"]["burn_rate"]
    assert 0 < budgets["fill"]["remaining"] < healthy["fill"]["remaining"]
    assert budgets["rtt"]["remaining"] < 1.0
    assert report["drop_rate"]["by_reason"] == {"no_provider": report["drop_rate"]["dropped"]}


def test_no_data_is_insufficient_not_compliant() -> None:
    report = report_for("empty")
    assert report["compliant"] is False
    assert report["status"] == INSUFFICIENT
    for entry in report["slos"].values():
        assert entry["value"] is None and entry["compliant"] is None
        assert entry["status"] == INSUFFICIENT
    assert all(b["remaining"] is None for b in report["error_budgets"].values())
    assert report["drop_rate"]["value"] is None


def test_report_file_is_canonical_json(tmp_path: Path) -> None:
    report = report_for("compliant")
    path = write_report(report, tmp_path / "nested" / "daily.json").path
    data = path.read_bytes()
    assert data == canonical_json(json.loads(data))
    assert json.loads(data) == report


def test_summary_table_names_every_slo() -> None:
    from rich.console import Console

    console = Console(record=True, width=140)
    console.print(summary_table(report_for("outage")))
    text = console.export_text()
    assert "not compliant (5/6 SLOs met)" in text
    assert "NOT MET" in text and "Fill rate p50" in text and "budget left" in text


def test_every_report_query_is_windowed_except_the_seeds_literal_ones() -> None:
    seed = set(q.SEED_QUERIES.values())
    for expr in report_queries(TREATY, "72h").values():
        assert expr in seed or "[72h]" in expr, expr


@pytest.mark.parametrize("text,promql", [("72h", "72h"), ("7d", "7d"), ("P3D", "3d"),
                                         ("1h30m", "1h30m"), ("90m", "90m")])
def test_window(text: str, promql: str) -> None:
    assert Window.parse(text).promql == promql


@pytest.mark.parametrize("text", ["", "72", "30s", "soon"])
def test_bad_window_is_an_operator_error(text: str) -> None:
    with pytest.raises(AuroraError) as exc:
        Window.parse(text)
    assert exc.value.exit_code == 2
