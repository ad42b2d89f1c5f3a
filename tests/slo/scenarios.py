"""Report scenarios: 72 h of synthetic history, the answers a real Prometheus gave for them.

``tests/slo/fixtures/report-<name>.json`` holds, for one scenario, every report query and
the JSON answer of Prometheus 2.42's ``/api/v1/query`` at the report's time. They are
recorded from a real Prometheus over backfilled data (``record``); ``test_live.py`` checks
they still match, and rewrites them with ``AURORA_RECORD_FIXTURES=1``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aurora.slo.prometheus import (
    PrometheusClient,
    RangeSeries,
    Sample,
    parse_query,
    parse_query_range,
)
from aurora.slo.report import SeriesPlan, Window, report_queries, series_queries
from slo.synthetic import TREATY, Phase, Shape

FIXTURES = Path(__file__).resolve().parent / "fixtures"
START = datetime(2025, 10, 22, tzinfo=UTC)  # the seed's soak start
AT = datetime(2025, 10, 25, tzinfo=UTC)  # hour 72
WINDOW = "72h"

OUTAGE = Shape(drop_share=0.6, rtt_slow_share=0.5, fill_rate=0.4, provenance=0.85)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    phases: tuple[Phase, ...] | None  # None: Prometheus without any data

    @property
    def fixture(self) -> Path:
        return FIXTURES / f"report-{self.name}.json"


SCENARIOS = {
    s.name: s for s in (
        Scenario("compliant", "72 h of healthy traffic", (Phase(72, Shape()),)),
        Scenario("outage", "a 6 h provider outage on day 2: 60 % drops, slow ACKs, fill 0.4",
                 (Phase(30, Shape()), Phase(6, OUTAGE), Phase(36, Shape()))),
        Scenario("empty", "Prometheus has no treaty data at all", None),
    )
}


def record(client: PrometheusClient, scenario: Scenario) -> dict[str, Any]:
    window = Window.parse(WINDOW)
    exprs = report_queries(TREATY, window.promql)
    plan = SeriesPlan.of(window, AT)
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "treaty_id": TREATY,
        "window": WINDOW,
        "at": AT.isoformat(),
        "responses": {expr: client.raw_query(expr, AT) for expr in exprs.values()},
        "range": {"start": plan.start, "end": plan.end, "step": plan.step},
        "range_responses": {
            expr: client.raw_query_range(expr, plan.start, plan.end, plan.step)
            for expr in series_queries(TREATY, plan.range).values()},
    }


def load(scenario: str) -> dict[str, Any]:
    return json.loads(SCENARIOS[scenario].fixture.read_text())  # type: ignore[no-any-return]


class RecordedSource:
    """Answers report queries from a recorded fixture (a QuerySource)."""

    def __init__(self, recording: dict[str, Any]) -> None:
        self.recording = recording
        self.asked: list[str] = []

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        assert at == datetime.fromisoformat(self.recording["at"]).timestamp()
        self.asked.append(expr)
        try:
            return parse_query(self.recording["responses"][expr])
        except KeyError:
            raise AssertionError(
                f"no recorded answer for {expr!r}: the report's queries changed; re-record with "
                "AURORA_RECORD_FIXTURES=1 python -m pytest tests/slo/test_fixtures_live.py"
            ) from None

    def query_range(self, expr: str, start: float, end: float, step: float
                    ) -> list[RangeSeries]:
        assert [start, end, step] == [self.recording["range"][k]
                                      for k in ("start", "end", "step")]
        self.asked.append(expr)
        try:
            return parse_query_range(self.recording["range_responses"][expr])
        except KeyError:
            raise AssertionError(
                f"no recorded range answer for {expr!r}: re-record with "
                "AURORA_RECORD_FIXTURES=1 python -m pytest tests/slo/test_fixtures_live.py"
            ) from None
