"""The incident receiver's HTTP API as the live tests read it (a running receiver's URL)."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from aurora.home import Home
from aurora.tokens import INCIDENTS, bearer_header, read_token


def list_incidents(home: Home, receiver: str, **params: str) -> list[dict[str, Any]]:
    """``GET /incidents`` (``open="1"``, ``alertname=...``, ``since=...``), every page,
    with the home's token."""
    found: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        response = httpx.get(f"{receiver}/incidents", params={**params, "offset": str(offset)},
                             headers=bearer_header(read_token(home, INCIDENTS)), timeout=10.0)
        response.raise_for_status()
        page = response.json()
        found += page["incidents"]
        offset = page["next_offset"]
    return found


def webhooks_accepted(receiver: str) -> float:
    """Notifications the receiver process accepted since it started (its /metrics)."""
    text = httpx.get(f"{receiver}/metrics", timeout=10.0).text
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == "aurora_incident_webhooks_total"
                and s.labels == {"outcome": "accepted"})
