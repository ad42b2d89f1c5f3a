"""SLOs over one segment of a soak, judged from answers a real Prometheus gave (the recorded
report fixtures of tests/slo): with too few orders in it a segment gives no verdict."""

from __future__ import annotations

from datetime import timedelta

from aurora.slo.prometheus import Sample
from aurora.soak import slo
from slo.scenarios import AT, WINDOW, RecordedSource, load

SPAN = (AT - timedelta(hours=72), AT)


class Recorded(RecordedSource):
    """The fixture's answers; a 72 h segment asks for ``[3d]``, the fixture was recorded
    with ``[72h]`` (the same range)."""

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        return super().query(expr.replace("[3d]", f"[{WINDOW}]"), at)


def test_a_segment_with_traffic_is_judged() -> None:
    segment = slo.judge_segment(Recorded(load("compliant")), "AURORA-AKASH-001", SPAN)
    assert segment["insufficient"] is None and segment["orders"] >= slo.MIN_ORDERS
    assert set(segment["verdicts"].values()) == {True}
    assert segment["seconds"] == 72 * 3600 and slo.judged_seconds([segment]) == 72 * 3600


def test_a_segment_without_orders_is_insufficient_data_not_a_breach() -> None:
    segment = slo.judge_segment(Recorded(load("empty")), "AURORA-AKASH-001", SPAN)
    assert segment["insufficient"] == (
        f"insufficient data: 0 order(s) decided, fewer than {slo.MIN_ORDERS}")
    assert set(segment["verdicts"].values()) == {None}
    assert slo.judged_seconds([segment]) == 0
