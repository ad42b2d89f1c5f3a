"""Fixtures for the incident tests: an injected clock, a store, webhook payloads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aurora.home import Home
from aurora.incidents.service import IncidentStore

PAYLOADS = Path(__file__).parent / "payloads"
TREATY = "AURORA-AKASH-001"


class FakeClock:
    """A clock the test moves by hand (SLA math without waiting)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))  # a Wednesday


@pytest.fixture
def aurora_home(home: Path) -> Home:
    return Home(home)


@pytest.fixture
def receiver(home: Path) -> Iterator[str]:
    """A receiver process (``python -m aurora.incidents.server``) on a free port: its URL."""
    import sys

    from aurora import procs
    from aurora.config import load_stack

    where = Home(home)
    stack = load_stack(where)
    procs.spawn(where, "incidents", [sys.executable, "-m", "aurora.incidents.server",
                                     "--port", str(stack.incidents_port), "--check-every", "0"])
    try:
        procs.wait_http(f"{stack.incidents_url}/healthz", timeout=30,
                        pid_check=(where, "incidents"))
        yield stack.incidents_url
    finally:
        procs.stop(where, "incidents")


@pytest.fixture
def receiver_auth(aurora_home: Home) -> dict[str, str]:
    """The header the receiver process requires (``aurora init`` wrote its token)."""
    from aurora.tokens import INCIDENTS, bearer_header, read_token

    token = read_token(aurora_home, INCIDENTS)
    assert token, "aurora init writes secrets/incidents.token"
    return bearer_header(token)


@pytest.fixture
def store(aurora_home: Home, clock: FakeClock) -> Iterator[IncidentStore]:
    with IncidentStore.open(aurora_home, write=True, clock=clock) as opened:
        yield opened


def recorded(name: str) -> bytes:
    """A webhook body Alertmanager 0.25 really sent (see capture_payloads.py)."""
    return (PAYLOADS / name).read_bytes()


def notification(*alerts: dict[str, Any], group_key: str | None = None,
                 status: str | None = None) -> dict[str, Any]:
    """A version-4 notification around ``alerts`` (for cases not worth a recording)."""
    first = alerts[0]["labels"]
    key = group_key or ('{}/{severity=~"critical|page"}:'
                        f'{{alertname="{first["alertname"]}", '
                        f'treaty_id="{first.get("treaty_id", "")}"}}')
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "receiver": "aurora-incidents", "status": status or ("firing" if firing else "resolved"),
        "alerts": list(alerts), "groupLabels": {"alertname": first["alertname"]},
        "commonLabels": first, "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
        "version": "4", "groupKey": key, "truncatedAlerts": 0,
    }


def alert(alertname: str, *, status: str = "firing", fingerprint: str = "0123456789abcdef",
          starts_at: str = "2026-11-25T08:45:00Z", ends_at: str = "0001-01-01T00:00:00Z",
          **labels: str) -> dict[str, Any]:
    return {
        "status": status, "labels": {"alertname": alertname, "treaty_id": TREATY, **labels},
        "annotations": {"summary": f"{alertname} test alert"}, "startsAt": starts_at,
        "endsAt": ends_at, "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": fingerprint,
    }


def body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def ledger_incident_entries(home: Home) -> list[dict[str, Any]]:
    """The ``incident`` entries in the ledger, as their leaf payloads."""
    from aurora.ledger import Ledger

    ledger = Ledger.open(home, readonly=True)
    try:
        return [json.loads(row.payload) for row in ledger.scan(kinds=("incident",))]
    finally:
        ledger.close()
