"""Fuzzing the incident receiver's webhook like the bridge's order endpoint: whatever
arrives — times at the ends of the calendar and offsets at ±23:59, numbers at any size,
any text — the answer is 200 or a 4xx with ``{"error", "detail"}``, never a 5xx, and
a refused notification changes nothing (issue 13: "the fuzzing extends to the receiver")."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from aurora.home import Home
from aurora.incidents.app import create_app
from aurora.incidents.service import IncidentStore

from .conftest import alert, ledger_incident_entries, notification

ANSWERS = {400: ("bad_json",), 413: ("too_large",), 422: ("schema", "unsupported_version")}
FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture
def client(aurora_home: Home, store: IncidentStore) -> Iterator[TestClient]:
    with TestClient(create_app(aurora_home, store=store, check_every=0),
                    raise_server_exceptions=False) as test_client:
        yield test_client


offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(
    minutes=m)))


def _rfc3339(moment: datetime) -> str:
    off = moment.utcoffset() or timedelta()
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond:06d}"
            f"{sign}{minutes // 60:02d}:{minutes % 60:02d}")


# the calendar's ends and everything between, in every offset
times = st.one_of(
    st.builds(lambda d, tz: _rfc3339(d.replace(tzinfo=tz)),
              st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
              offsets),
    st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                     "0001-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-25T24:00:00Z",
                     "2026-11-25T08:45:60Z", "2026-11-25T08:45:00.1234567891Z"]),
    st.text(max_size=30))
numbers = st.one_of(st.integers(), st.integers(min_value=2**62), st.integers(max_value=-2**62),
                    st.floats(), st.sampled_from([10**400, -(10**400)]))
labels = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=4)


def _post(client: TestClient, raw: bytes) -> tuple[int, dict[str, Any]]:
    response = client.post("/alerts", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 or response.status_code in ANSWERS, response.text
    answer = response.json()
    if response.status_code != 200:
        assert answer["error"] in ANSWERS[response.status_code] and answer["detail"]
    return response.status_code, answer


@FUZZ
@given(starts=times, ends=times, extra=labels, truncated=numbers,
       fingerprint=st.from_regex(r"[0-9a-f]{1,16}", fullmatch=True) | st.text(max_size=8))
def test_webhooks_at_the_extremes_never_get_a_5xx(client: TestClient, aurora_home: Home,
                                                  starts: str, ends: str,
                                                  extra: dict[str, str], truncated: Any,
                                                  fingerprint: str) -> None:
    hostile = alert("TreatyFillRateLow", fingerprint=fingerprint, starts_at=starts,
                    ends_at=ends)
    hostile["labels"].update({k: v for k, v in extra.items() if k != "alertname"})
    document = notification(hostile)
    document["truncatedAlerts"] = truncated
    raw = json.dumps(document).encode()  # 10**400 is valid JSON, NaN is not (400)
    before = len(ledger_incident_entries(aurora_home))
    status, _ = _post(client, raw)
    if status != 200:
        assert len(ledger_incident_entries(aurora_home)) == before


@FUZZ
@given(field=st.sampled_from(["version", "groupKey", "status", "receiver", "alerts",
                              "groupLabels", "truncatedAlerts"]),
       value=st.recursive(st.none() | st.booleans() | numbers | st.text() | times,
                          lambda kids: st.lists(kids, max_size=3)
                          | st.dictionaries(st.text(max_size=8), kids, max_size=3),
                          max_leaves=8))
def test_any_value_in_any_field_gets_200_or_its_4xx(client: TestClient, field: str,
                                                    value: Any) -> None:
    document = notification(alert("TreatyFillRateLow"))
    document[field] = value
    try:
        raw = json.dumps(document).encode()
    except ValueError:
        return
    _post(client, raw)


@FUZZ
@given(raw=st.binary(max_size=512))
def test_random_bytes_get_a_4xx(client: TestClient, raw: bytes) -> None:
    status, _ = _post(client, raw)
    assert status in (400, 422)


def test_the_calendar_is_covered(client: TestClient) -> None:
    """The strategy reaches the ends: year 1 and year 9999 with extreme offsets."""
    late = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59)))
    assert _rfc3339(late) == "9999-12-31T23:59:59.000000-23:59"
    assert _rfc3339(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000000+00:00"


@pytest.mark.integration
def test_schemathesis_against_the_receivers_openapi_document(
        receiver: str, receiver_auth: dict[str, str], tmp_path: Path) -> None:
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert binary, "schemathesis is a dev dependency"
    [(name, value)] = receiver_auth.items()
    result = subprocess.run(
        [binary, "run", f"{receiver}/openapi.json", "--header", f"{name}: {value}",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
         "response_schema_conformance",
         "--max-examples", "60", "--seed", "1", "--workers", "1",
         "--report-dir", str(tmp_path), "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
