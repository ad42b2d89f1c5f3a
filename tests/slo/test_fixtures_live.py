"""The recorded Prometheus answers the report tests use are what a real Prometheus answers.

For each scenario: write its 72 h history as OpenMetrics, backfill it with promtool, start
Prometheus 2.42 on those blocks and run every report query at hour 72. The answers must
equal the recorded fixtures (``AURORA_RECORD_FIXTURES=1`` rewrites them instead).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aurora.slo.prometheus import PrometheusClient
from slo.conftest import backfilled_prometheus
from slo.scenarios import SCENARIOS, START, record
from slo.synthetic import backfill_text

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fixtures_are_real_prometheus_answers(name: str, tmp_path: Path) -> None:
    scenario = SCENARIOS[name]
    text = (backfill_text(list(scenario.phases), int(START.timestamp()))
            if scenario.phases is not None else None)
    prometheus = backfilled_prometheus(tmp_path, text)
    try:
        with PrometheusClient(prometheus.url) as client:
            recording = record(client, scenario)
    finally:
        prometheus.stop()
    if os.environ.get("AURORA_RECORD_FIXTURES"):
        scenario.fixture.parent.mkdir(parents=True, exist_ok=True)
        scenario.fixture.write_text(json.dumps(recording, indent=1, sort_keys=True) + "\n")
    stored = json.loads(scenario.fixture.read_text())
    assert stored == recording, (f"{scenario.fixture} no longer matches Prometheus' answers; "
                                 "re-record with AURORA_RECORD_FIXTURES=1")
