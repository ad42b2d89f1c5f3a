"""Grafana alerting provisioning (``ops/grafana/aurora-alert-rules.yaml``): the threshold
alerts of :mod:`aurora.slo.catalog` as Grafana rules, the same signal and threshold as the
Prometheus rules (:mod:`aurora.slo.rules`)."""

from __future__ import annotations

from typing import Any

from aurora.durations import parse_duration
from aurora.slo import queries as q
from aurora.slo.catalog import DATASOURCE_UID, THRESHOLD_ALERTS, runbook_url

DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}

_GRAFANA_EVALUATOR = {"<": "lt", ">": "gt"}


def _grafana_text(text: str) -> str:
    # Grafana's templates know $value as a string; the query's number is $values.A.Value
    return text.replace("$value |", "$values.A.Value |")


def grafana_alert_rules() -> dict[str, Any]:
    rules = []
    for alert in THRESHOLD_ALERTS:
        window_s = int(max(parse_duration(alert.hold or "0s"), 600))
        rules.append({
            "uid": f"aurora-{alert.name.lower()}",
            "title": alert.name,
            "condition": "C",
            "data": [
                {"refId": "A", "relativeTimeRange": {"from": window_s, "to": 0},
                 "datasourceUid": DATASOURCE_UID,
                 "model": {"refId": "A", "datasource": DATASOURCE, "editorMode": "code",
                           "expr": q.ALERT_SIGNALS[alert.signal_key], "instant": True,
                           "range": False, "intervalMs": 15000, "maxDataPoints": 43200}},
                {"refId": "C", "datasourceUid": "__expr__",
                 "model": {"refId": "C", "type": "threshold", "expression": "A",
                           "datasource": {"type": "__expr__", "uid": "__expr__"},
                           "conditions": [{"evaluator": {
                               "type": _GRAFANA_EVALUATOR[alert.op],
                               "params": [alert.threshold]}}]}},
            ],
            # like the Prometheus rule: no series (no traffic) is not an alert
            "noDataState": "OK",
            "execErrState": "Error",
            "for": alert.hold or "0s",
            "annotations": {"summary": _grafana_text(alert.summary),
                            "description": _grafana_text(alert.description),
                            "runbook_url": runbook_url(alert.name)},
            "labels": {"severity": alert.severity, "slo": alert.slo},
            "isPaused": False,
        })
    return {"apiVersion": 1, "groups": [{
        "orgId": 1, "name": "aurora-alerts", "folder": "Aurora", "interval": "1m",
        "rules": rules,
    }]}


