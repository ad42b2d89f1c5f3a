"""Parsing Prometheus HTTP API answers, and the client's errors."""

from __future__ import annotations

import pytest

from aurora.errors import UnreachableError
from aurora.slo.prometheus import (
    PrometheusClient,
    PrometheusError,
    parse_query,
    parse_query_range,
)
from slo.conftest import free_port
from slo.scenarios import load


def test_vector_answers_from_a_real_prometheus() -> None:
    responses = load("compliant")["responses"]
    (sample,) = parse_query(responses['sum by (treaty_id) (count_over_time('
                                      'up{treaty_id="AURORA-AKASH-001"}[72h]))'])
    assert sample.labels == {"treaty_id": "AURORA-AKASH-001"}
    assert sample.value == 865.0 and sample.timestamp == 1761350400.0


def test_nan_and_infinities_are_no_value() -> None:
    for text in ("NaN", "+Inf", "-Inf"):
        document = {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1.5, text]}]}}
        assert parse_query(document)[0].value is None


def test_scalar() -> None:
    document = {"status": "success", "data": {"resultType": "scalar", "result": [2.0, "7"]}}
    (sample,) = parse_query(document)
    assert sample.labels == {} and sample.value == 7.0


def test_errors() -> None:
    with pytest.raises(PrometheusError, match="bad_data: parse error"):
        parse_query({"status": "error", "errorType": "bad_data", "error": "parse error"})
    with pytest.raises(PrometheusError, match="not a Prometheus API response"):
        parse_query(["not", "prometheus"])
    with pytest.raises(PrometheusError, match="range query"):
        parse_query_range({"status": "success", "data": {"resultType": "vector", "result": []}})


def test_unreachable_is_exit_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with PrometheusClient(url, timeout=2) as client, pytest.raises(UnreachableError) as exc:
        client.query("up")
    assert exc.value.exit_code == 2 and url in str(exc.value)
