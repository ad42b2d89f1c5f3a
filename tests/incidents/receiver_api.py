"""The incident receiver's HTTP API as the live tests read it (a running receiver's URL)."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families


def list_incidents(receiver: str, **params: str) -> list[dict[str, Any]]:
    """``GET /incidents`` (``open="1"``, ``alertname=...``, ``since=...``)."""
    response = httpx.get(f"{receiver}/incidents", params=params, timeout=10.0)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["incidents"]
    return found


def webhooks_accepted(receiver: str) -> float:
    """Notifications the receiver process accepted since it started (its /metrics)."""
    text = httpx.get(f"{receiver}/metrics", timeout=10.0).text
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == "aurora_incident_webhooks_total"
                and s.labels == {"outcome": "accepted"})
