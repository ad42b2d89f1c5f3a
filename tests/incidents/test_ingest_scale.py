"""One big webhook is ingested in linear work and starves nobody (issue 13, defect 3).

A 517 KB notification with 2,000 alerts in one group took ten minutes: every alert re-read
and re-folded the whole group from the index and was appended with an fsync of its own,
under the index's write lock, while a burst of other webhooks took every worker thread and
``/healthz`` timed out. Asserted here as behaviour, not time: the work an ingest does (events
re-read from the index) does not grow with the group; ``/healthz`` and reads answer while
ingests queue behind a held write lock; and every queued webhook is then recorded (no 503).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from aurora.home import Home
from aurora.incidents.index import db_path
from aurora.incidents.model import Event
from aurora.incidents.service import IncidentStore
from aurora.incidents.webhook import MAX_ALERTS, parse_webhook

from .conftest import alert, body, ledger_incident_entries, notification


def big_group(n: int, *, name: str = "TreatyFillRateLow") -> dict[str, Any]:
    alerts = [alert(name, fingerprint=f"{i:016x}", instance=f"node-{i}") for i in range(n)]
    return notification(*alerts)


@pytest.fixture
def reread(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many events were parsed back from the index (the rescans that made it quadratic)."""
    count = [0]
    original = Event.from_data.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Event], *args: Any, **kwargs: Any) -> Event:
        count[0] += 1
        return original(cls, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(Event, "from_data", classmethod(counting))
    return count


def test_ingest_work_does_not_grow_with_the_group(store: IncidentStore, aurora_home: Home,
                                                  reread: list[int]) -> None:
    n = 300
    result = store.ingest(parse_webhook(body(big_group(n))))
    assert len(result.opened) == 1 and len(result.joined) == n - 1
    assert len(ledger_incident_entries(aurora_home)) == n  # one entry per alert, no more
    assert reread[0] == 0  # decided in memory: nothing re-read from the index
    # the resend of the whole group: one read of the group, every alert a duplicate
    before = reread[0]
    again = store.ingest(parse_webhook(body(big_group(n))))
    assert len(again.duplicates) == n and not again.joined
    assert reread[0] - before == n  # the group's n events, read once
    assert len(ledger_incident_entries(aurora_home)) == n
    [incident] = store.incidents()
    assert len(incident.alerts) == n and len(incident.firing) == n


@pytest.mark.integration
def test_a_2000_alert_webhook_and_a_burst_do_not_starve_healthz(
        receiver: str, receiver_auth: dict[str, str], home: Path) -> None:
    big = body(big_group(MAX_ALERTS))
    assert len(big) > 500_000  # the size of the one that blocked the receiver
    small = [body(notification(alert(f"Burst{i}", fingerprint=f"{i:016x}")))
             for i in range(60)]  # more than the receiver's 40 worker threads
    answers: dict[str, httpx.Response] = {}

    def send(name: str, payload: bytes) -> None:
        answers[name] = httpx.post(f"{receiver}/alerts", content=payload, timeout=120.0,
                                   headers={"Content-Type": "application/json", **receiver_auth})

    # Hold the index's write lock, as a long ingest would: every webhook now has to wait.
    lock = sqlite3.connect(db_path(Home(home)), isolation_level=None, timeout=30)
    lock.execute("BEGIN IMMEDIATE")
    threads = [threading.Thread(target=send, args=("big", big))]
    threads += [threading.Thread(target=send, args=(f"small{i}", p)) for i, p in enumerate(small)]
    try:
        for thread in threads:
            thread.start()
        with httpx.Client(timeout=10.0, headers=receiver_auth) as client:
            # the webhooks are in (the receiver counts none done yet) ...
            for _ in range(5):
                health = client.get(f"{receiver}/healthz")
                assert health.status_code == 200 and health.json()["status"] == "ok"
                assert client.get(f"{receiver}/incidents").status_code == 200
            assert not answers  # ... and still waiting on the lock: healthz answered anyway
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    for thread in threads:
        thread.join(timeout=150)
    assert len(answers) == 61
    assert {name: r.status_code for name, r in answers.items() if r.status_code != 200} == {}
    done = answers["big"].json()
    assert len(done["opened"]) == 1 and len(done["joined"]) == MAX_ALERTS - 1
    assert len(ledger_incident_entries(Home(home))) == MAX_ALERTS + 60
    listed = httpx.get(f"{receiver}/incidents", timeout=10,
                       headers=receiver_auth).json()["incidents"]
    assert len(listed) == 61 and json.dumps(listed)  # every sender got its incident
