"""The receiver over HTTP (in-process): POST /alerts, GET /incidents, /metrics, /healthz."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

with warnings.catch_warnings():  # starlette would like httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from aurora.home import Home
from aurora.incidents.app import create_app
from aurora.incidents.service import IncidentStore
from aurora.incidents.webhook import MAX_ALERTS

from .conftest import FakeClock, body, ledger_incident_entries, recorded


@pytest.fixture
def client(aurora_home: Home, store: IncidentStore) -> Iterator[TestClient]:
    with TestClient(create_app(aurora_home, store=store, check_every=0)) as test_client:
        yield test_client


def post(client: TestClient, raw: bytes, **headers: str):
    return client.post("/alerts", content=raw,
                       headers={"Content-Type": "application/json", **headers})


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_firing_then_resends_then_resolution(client: TestClient, clock: FakeClock) -> None:
    first = post(client, recorded("fill-rate-firing.json"))
    assert first.status_code == 200
    assert first.json() == {"status": "ok", "opened": ["INC-20261125-0001"], "joined": [],
                            "alerts_resolved": [], "resolved": [], "duplicates": [], "stale": 0}
    for name in ("fill-rate-resend.json", "fill-rate-firing.json"):
        again = post(client, recorded(name))
        assert again.status_code == 200 and again.json()["duplicates"] == ["INC-20261125-0001"]
    clock.advance(minutes=5)
    done = post(client, recorded("fill-rate-resolved.json"))
    assert done.status_code == 200 and done.json()["resolved"] == ["INC-20261125-0001"]
    listed = client.get("/incidents").json()["incidents"]
    assert [(i["id"], i["status"], i["sev"]) for i in listed] == [
        ("INC-20261125-0001", "resolved", "SEV2")]
    assert client.get("/incidents?open=1").json()["incidents"] == []


def _with_alert(**fields: object) -> bytes:
    document = json.loads(recorded("fill-rate-firing.json"))
    document["alerts"][0].update(fields)
    return body(document)


def _many_alerts(n: int) -> bytes:
    document = json.loads(recorded("fill-rate-firing.json"))
    first = document["alerts"][0]
    document["alerts"] = [{**first, "fingerprint": f"{i:016x}"} for i in range(n)]
    return body(document)


# issue 13, defect 2: a startsAt whose offset overflows date arithmetic once in UTC
EXTREME_TIMES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:01+23:59",
                 "9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z"]

MALFORMED = [
    *((_with_alert(startsAt=t), 422, "schema") for t in EXTREME_TIMES),
    *((_with_alert(endsAt=t), 422, "schema") for t in EXTREME_TIMES),
    (body({**json.loads(recorded("fill-rate-firing.json")), "truncatedAlerts": 10**30}), 422,
     "schema"),
    (_many_alerts(MAX_ALERTS + 1), 422, "schema"),
    (b"{not json", 400, "bad_json"),
    (b"[]", 400, "bad_json"),
    (json.dumps({"version": "3"}).encode(), 422, "unsupported_version"),
    (body({**json.loads(recorded("fill-rate-firing.json")), "alerts": []}), 422, "schema"),
    (body({**json.loads(recorded("fill-rate-firing.json")), "status": "???"}), 422, "schema"),
]


@pytest.mark.parametrize(("raw", "status", "error"), MALFORMED,
                         ids=[*(f"startsAt {t}" for t in EXTREME_TIMES),
                              *(f"endsAt {t}" for t in EXTREME_TIMES), "huge-count",
                              "too-many-alerts", "not-json", "array", "version", "no-alerts",
                              "bad-status"])
def test_malformed_input_is_4xx_and_changes_nothing(client: TestClient, aurora_home: Home,
                                                     raw: bytes, status: int, error: str) -> None:
    post(client, recorded("fill-rate-firing.json"))
    before_db = client.get("/incidents").json()
    before_ledger = ledger_incident_entries(aurora_home)
    response = post(client, raw)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["detail"]
    assert client.get("/incidents").json() == before_db
    assert ledger_incident_entries(aurora_home) == before_ledger


def test_oversized_body_is_413(client: TestClient, aurora_home: Home) -> None:
    response = post(client, b"{" + b" " * (4 * 1024 * 1024 + 10) + b"}")
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert ledger_incident_entries(aurora_home) == []


def test_ledger_failure_is_503_so_alertmanager_retries(client: TestClient, store: IncidentStore,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store._writer(), "submit", broken)
    response = post(client, recorded("fill-rate-firing.json"))
    assert response.status_code == 503 and response.json()["error"] == "unavailable"
    assert client.get("/incidents").json()["incidents"] == []
    monkeypatch.undo()
    # the retry goes through, once
    assert post(client, recorded("fill-rate-firing.json")).json()["opened"] == [
        "INC-20261125-0001"]


def test_show_incident(client: TestClient, store: IncidentStore) -> None:
    post(client, recorded("fill-rate-firing.json"))
    store.acknowledge("INC-20261125-0001", by="alice", note="looking")
    shown = client.get("/incidents/INC-20261125-0001").json()
    assert shown["acknowledged_by"] == "alice" and shown["sla"] == "met"
    assert [e["event"] for e in shown["events"]] == ["opened", "acknowledged"]
    assert all(isinstance(e["ledger_seq"], int) for e in shown["events"])
    assert client.get("/incidents/INC-20261125-0009").status_code == 404
    assert client.get("/incidents/nope").status_code == 404
    assert client.get("/incidents?since=yesterday").status_code == 400


def test_metrics_are_computed_from_stored_state(client: TestClient, store: IncidentStore,
                                                clock: FakeClock) -> None:
    post(client, recorded("fill-rate-firing.json"))      # SEV2, 1 h
    post(client, recorded("rtt-two-alerts.json"))        # SEV3, 4 h: one group, two alerts
    m = samples(client)
    assert m[("aurora_incidents_open", (("sev", "SEV2"),))] == 1
    assert m[("aurora_incidents_open", (("sev", "SEV3"),))] == 1
    assert m[("aurora_incidents_open", (("sev", "SEV1"),))] == 0
    clock.advance(minutes=3)
    store.acknowledge("INC-20261125-0002", by="alice")  # 180 s
    m = samples(client)
    assert m[("aurora_incident_response_seconds_count", (("sev", "SEV3"),))] == 1
    assert m[("aurora_incident_response_seconds_sum", (("sev", "SEV3"),))] == 180
    assert m[("aurora_incident_response_seconds_bucket", (("le", "60.0"), ("sev", "SEV3")))] == 0
    assert m[("aurora_incident_response_seconds_bucket", (("le", "300.0"), ("sev", "SEV3")))] == 1
    assert m[("aurora_incidents_sla_breached_total", (("sev", "SEV2"),))] == 0
    # the scrape itself detects the breach (no background loop in this test) — once
    clock.advance(hours=1)
    for _ in range(3):
        m = samples(client)
        assert m[("aurora_incidents_sla_breached_total", (("sev", "SEV2"),))] == 1
    assert [e["data"]["event"] for e in ledger_incident_entries(store.home)
            if e["subject"] == "INC-20261125-0001"] == ["opened", "escalated"]
    clock.advance(hours=4)
    m = samples(client)
    assert m[("aurora_incidents_sla_breached_total", (("sev", "SEV3"),))] == 0  # acked in time
    post(client, recorded("fill-rate-resolved.json"))
    m = samples(client)
    assert m[("aurora_incidents_open", (("sev", "SEV2"),))] == 0
    assert m[("aurora_incident_webhooks_total", (("outcome", "accepted"),))] == 3


def test_background_loop_records_breaches(aurora_home: Home, store: IncidentStore,
                                          clock: FakeClock) -> None:
    import time

    with TestClient(create_app(aurora_home, store=store, check_every=0.05)) as client:
        post(client, recorded("fill-rate-firing.json"))
        clock.advance(hours=2)
        deadline = time.monotonic() + 10
        while store.get("INC-20261125-0001").escalated_at is None:
            assert time.monotonic() < deadline, "the breach loop never ran"
            time.sleep(0.05)
    assert store.get("INC-20261125-0001").status == "escalated"


def test_healthz_and_unknown_routes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "open": 0}
    wrong = client.get("/alerts")
    assert wrong.status_code == 405 and wrong.json()["error"] == "http"
    assert client.get("/nope").status_code == 404


def firing(n: int) -> bytes:
    """The recorded firing notification as a group of its own (alert name ``Drill<n>``)."""
    doc = json.loads(recorded("fill-rate-firing.json"))
    doc["groupKey"] = f'{{}}:{{alertname="Drill{n}"}}'
    for alert in doc["alerts"]:
        alert["labels"]["alertname"] = f"Drill{n}"
        alert["fingerprint"] = f"{n:016x}"
    doc["groupLabels"]["alertname"] = doc["commonLabels"]["alertname"] = f"Drill{n}"
    return body(doc)


def test_a_token_guards_everything_but_health_and_metrics(aurora_home: Home,
                                                          store: IncidentStore) -> None:
    """Issue 13 #10: anything that reached :9111 could open or resolve incidents."""
    token = "t" * 43
    with TestClient(create_app(aurora_home, store=store, check_every=0,
                               token=token)) as guarded:
        for headers in ({}, {"Authorization": "Bearer " + "u" * 43},
                        {"Authorization": token}):
            refused = post(guarded, firing(1), **headers)
            assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
            assert guarded.get("/incidents", headers=headers).status_code == 401
            assert guarded.get("/incidents/INC-20261125-0001",
                               headers=headers).status_code == 401
        assert store.incidents() == []  # nothing was opened by the refused webhooks
        assert guarded.get("/healthz").status_code == 200  # Prometheus scrapes these
        assert guarded.get("/metrics").status_code == 200
        good = {"Authorization": f"Bearer {token}"}
        assert post(guarded, firing(1), **good).json()["opened"] == ["INC-20261125-0001"]
        assert len(guarded.get("/incidents", headers=good).json()["incidents"]) == 1


def test_incidents_come_in_pages(client: TestClient) -> None:
    for n in range(5):
        assert post(client, firing(n)).status_code == 200
    first = client.get("/incidents?limit=2").json()
    assert (len(first["incidents"]), first["total"], first["next_offset"]) == (2, 5, 2)
    seen = [i["id"] for i in first["incidents"]]
    offset = first["next_offset"]
    while offset is not None:
        page = client.get(f"/incidents?limit=2&offset={offset}").json()
        seen += [i["id"] for i in page["incidents"]]
        offset = page["next_offset"]
    assert sorted(seen) == [f"INC-20261125-{n:04d}" for n in range(1, 6)]
    assert client.get("/incidents").json()["limit"] == 100
    for bad in ("limit=0", "limit=1001", "limit=-1", "offset=x", "limit=99999999999999999999",
                "offset=1e3"):
        answer = client.get(f"/incidents?{bad}")
        assert answer.status_code == 400 and answer.json()["error"] == "bad_query", bad


def test_the_receiver_will_not_listen_beyond_loopback_without_a_token(home: Path) -> None:
    (home / "secrets" / "incidents.token").unlink()
    # a documentation address (RFC 5737): the refusal comes before any bind
    done = subprocess.run([sys.executable, "-m", "aurora.incidents.server"],
                          env={**os.environ, "AURORA_BIND": "192.0.2.1"}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: refusing to serve the incident receiver on "
                                  "192.0.2.1 without a token")
