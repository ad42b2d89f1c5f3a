"""Alertmanager webhook (version 4) parsing on recorded payloads and malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aurora.incidents.webhook import MAX_BODY_BYTES, WebhookError, parse_webhook

from .conftest import alert, body, notification, recorded


def test_recorded_firing_notification() -> None:
    payload = parse_webhook(recorded("fill-rate-firing.json"))
    assert payload.version == "4" and payload.status == "firing"
    assert payload.group_key.endswith(
        ':{alertname="AuroraFillRateLow", treaty_id="AURORA-AKASH-001"}')
    [facts] = payload.facts()
    assert facts.status == "firing" and facts.alertname == "AuroraFillRateLow"
    assert facts.labels["severity"] == "critical" and facts.ends_at is None  # Go zero time
    assert facts.starts_at.tzinfo is not None and len(facts.fingerprint) == 16


def test_recorded_resend_is_the_same_alert() -> None:
    first = parse_webhook(recorded("fill-rate-firing.json")).facts()[0]
    again = parse_webhook(recorded("fill-rate-resend.json")).facts()[0]
    assert again.key == first.key and again.starts_at == first.starts_at


def test_recorded_resolution() -> None:
    payload = parse_webhook(recorded("fill-rate-resolved.json"))
    [facts] = payload.facts()
    assert payload.status == "resolved" and facts.status == "resolved"
    assert facts.ends_at is not None and facts.ends_at >= facts.starts_at
    assert facts.key == parse_webhook(recorded("fill-rate-firing.json")).facts()[0].key


def test_recorded_group_with_two_alerts() -> None:
    alerts = parse_webhook(recorded("rtt-two-alerts.json")).facts()
    # two alerts, one group: one incident key, two fingerprints
    assert len(alerts) == 2 and len({a.key for a in alerts}) == 1
    assert len({a.fingerprint for a in alerts}) == 2
    assert {a.labels["instance"] for a in alerts} == {"bridge-1", "bridge-2"}


def test_unknown_fields_are_ignored() -> None:
    document = json.loads(recorded("fill-rate-firing.json"))
    document["newField"] = {"from": "a future Alertmanager"}
    document["alerts"][0]["silencedBy"] = []
    assert parse_webhook(body(document)).status == "firing"


def _firing() -> dict[str, Any]:
    return json.loads(recorded("fill-rate-firing.json"))


def _set(path: str, value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = document
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return change


_DELETE = object()

SCHEMA_CASES = [
    ("no alerts", _set("alerts", []), "alerts"),
    ("alerts not a list", _set("alerts", {"a": 1}), "alerts"),
    ("no groupKey", _set("groupKey", _DELETE), "groupKey"),
    ("empty groupKey", _set("groupKey", ""), "groupKey"),
    ("bad status", _set("status", "burning"), "status"),
    ("alert status", _set("alerts.0.status", "pending"), "alerts.0.status"),
    ("no alertname", _set("alerts.0.labels", {"severity": "critical"}), "alertname"),
    ("label not a string", _set("alerts.0.labels.severity", 3), "alerts.0.labels.severity"),
    ("empty label name", _set("alerts.0.labels", {"alertname": "A", "": "x"}),
     "alerts.0.labels"),
    ("bad startsAt", _set("alerts.0.startsAt", "yesterday"), "startsAt"),
    ("zero startsAt", _set("alerts.0.startsAt", "0001-01-01T00:00:00Z"), "zero time"),
    ("no time zone", _set("alerts.0.endsAt", "2026-11-27T10:00:00"), "endsAt"),
    ("no fingerprint", _set("alerts.0.fingerprint", _DELETE), "fingerprint"),
    ("bad fingerprint", _set("alerts.0.fingerprint", "../../etc"), "fingerprint"),
    ("truncatedAlerts < 0", _set("truncatedAlerts", -1), "truncatedAlerts"),
]


@pytest.mark.parametrize(("change", "where"), [c[1:] for c in SCHEMA_CASES],
                         ids=[c[0] for c in SCHEMA_CASES])
def test_schema_violations_are_422_with_the_field(change, where: str) -> None:
    document = _firing()
    change(document)
    with pytest.raises(WebhookError) as caught:
        parse_webhook(body(document))
    assert caught.value.status == 422 and caught.value.error == "schema"
    assert where in caught.value.detail


@pytest.mark.parametrize("version", ["3", 4, None])
def test_other_versions_are_refused(version: Any) -> None:
    document = _firing()
    document["version"] = version
    with pytest.raises(WebhookError) as caught:
        parse_webhook(body(document))
    assert (caught.value.status, caught.value.error) == (422, "unsupported_version")


@pytest.mark.parametrize("raw", [
    b"", b"not json", b"[1, 2]", b'"firing"', b'{"version": "4",', b"\xff\xfe",
    b'{"version": "4", "version": "4"}', b'{"version": NaN}',
], ids=["empty", "text", "array", "string", "truncated", "not-utf8", "duplicate-key", "nan"])
def test_not_a_json_object_is_400(raw: bytes) -> None:
    with pytest.raises(WebhookError) as caught:
        parse_webhook(raw)
    assert (caught.value.status, caught.value.error) == (400, "bad_json")
    assert caught.value.detail


def test_oversized_body_is_413() -> None:
    with pytest.raises(WebhookError) as caught:
        parse_webhook(b" " * (MAX_BODY_BYTES + 1))
    assert caught.value.status == 413


def test_synthetic_helper_matches_the_recorded_shape() -> None:
    # the helper used by the other tests builds what Alertmanager sends
    payload = parse_webhook(body(notification(alert("AuroraFillRateLow", severity="critical"))))
    assert payload.facts()[0].labels["treaty_id"] == "AURORA-AKASH-001"
