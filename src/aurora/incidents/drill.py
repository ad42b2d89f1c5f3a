"""Alert validation drill: fault in → incident with the right SEV → fault out → resolved.

``run_alert_drill`` is the logic behind ``aurora drill alert --alert NAME`` (the command
lives with the soak's drills). The caller supplies ``inject``/``clear`` callbacks (in the
soak: ``aurora chaos ...`` against the provider network; in tests: posting the alert to
Alertmanager). The drill watches the incident store, which the receiver fills, so a pass
proves the whole path rule → Prometheus → Alertmanager → receiver → ledger.

The drill acknowledges the incident it caused (``by="drill"``, with its drill id): that
marks it as a drill incident, which reports and the Day-7 gate count apart. Whatever
happens, ``clear`` is called once ``inject`` was; the round trip, pass or fail, is
appended to the ledger as a ``drill`` entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aurora.errors import AuroraError
from aurora.home import Home
from aurora.incidents.config import Sev
from aurora.incidents.model import ALERTMANAGER, Incident, IncidentError
from aurora.incidents.store import IncidentStore
from aurora.wire import format_rfc3339, utc_now

DRILL_BY = "drill"


class DrillError(AuroraError):
    """The drill could not start (e.g. the alert already has an open incident)."""


@dataclass(frozen=True)
class DrillResult:
    drill_id: str
    alert: str
    passed: bool
    failure: str | None
    expected_sev: Sev | None
    sev: Sev | None
    incident_id: str | None
    fired_at: datetime
    alert_starts_at: datetime | None = None
    opened_at: datetime | None = None
    cleared_at: datetime | None = None
    resolved_at: datetime | None = None
    ledger_seq: int | None = None

    @staticmethod
    def _between(start: datetime | None, end: datetime | None) -> float | None:
        return round((end - start).total_seconds(), 3) if start and end else None

    def to_json(self) -> dict[str, Any]:
        def t(value: datetime | None) -> str | None:
            return format_rfc3339(value) if value else None

        return {
            "drill": "alert", "drill_id": self.drill_id, "alert": self.alert,
            "passed": self.passed, "failure": self.failure, "expected_sev": self.expected_sev,
            "sev": self.sev, "incident_id": self.incident_id, "fired_at": t(self.fired_at),
            "alert_starts_at": t(self.alert_starts_at), "opened_at": t(self.opened_at),
            "cleared_at": t(self.cleared_at), "resolved_at": t(self.resolved_at),
            "durations_seconds": {
                "fire_to_open": self._between(self.fired_at, self.opened_at),
                "clear_to_resolve": self._between(self.cleared_at, self.resolved_at),
                "round_trip": self._between(self.fired_at, self.resolved_at),
            },
        }


def _wait_for(probe: Callable[[], Incident | None], timeout: float, poll: float
              ) -> Incident | None:
    deadline = time.monotonic() + timeout
    while True:
        if (found := probe()) is not None:
            return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll)


def run_alert_drill(
    home: Home,
    alert_name: str,
    *,
    inject: Callable[[], object],
    clear: Callable[[], object],
    timeout: float,
    expected_sev: Sev | None = None,
    poll: float = 0.5,
    clock: Callable[[], datetime] = utc_now,
) -> DrillResult:
    """Run one alert drill; ``timeout`` bounds each wait (for the incident, for its
    resolution). ``expected_sev`` defaults to what config/incidents.json maps the
    incident's labels to. Raises DrillError only when the drill cannot start."""
    with IncidentStore.open(home, write=True, clock=clock) as store:
        already = store.incidents(open_only=True, alertname=alert_name)
        if already:
            raise DrillError(f"{alert_name} already has open incident(s) "
                             f"{', '.join(i.id for i in already)}: resolve them before a drill")
        fired_at = clock()
        result = DrillResult(drill_id=f"DRILL-{fired_at:%Y%m%dT%H%M%SZ}", alert=alert_name,
                             passed=False, failure=None, expected_sev=expected_sev, sev=None,
                             incident_id=None, fired_at=fired_at)
        try:
            try:
                inject()
            except Exception as exc:
                result = replace(result, failure=f"inject failed: {exc}")
            else:
                result = _opened(store, result, timeout, poll)
        finally:  # never leave the fault injected
            result = replace(result, cleared_at=clock())
            try:
                clear()
            except Exception as exc:
                result = replace(result, failure=result.failure or f"clear failed: {exc}")
        if result.failure is None and result.incident_id is not None:
            result = _resolved(store, result, timeout, poll)
        if result.failure is None:
            result = replace(result, passed=True)
        receipt = store.record("drill", subject=result.drill_id, data=result.to_json())
        return replace(result, ledger_seq=receipt.leaf_index)


def _opened(store: IncidentStore, result: DrillResult, timeout: float, poll: float
            ) -> DrillResult:
    def probe() -> Incident | None:
        return next((i for i in store.incidents(open_only=True, alertname=result.alert)
                     if i.opened_at >= result.fired_at), None)

    incident = _wait_for(probe, timeout, poll)
    if incident is None:
        return replace(result, failure=f"no incident for {result.alert} within {timeout:g}s "
                       "(is the receiver up and Alertmanager delivering to it?)")
    expected = result.expected_sev or store.config.classify(incident.labels).sev
    result = replace(result, expected_sev=expected, sev=incident.sev, incident_id=incident.id,
                     opened_at=incident.opened_at, alert_starts_at=incident.starts_at)
    try:
        store.acknowledge(incident.id, by=DRILL_BY, note=f"alert drill {result.drill_id}",
                          drill=result.drill_id)
    except IncidentError as exc:  # e.g. it resolved before the drill could mark it
        return replace(result, failure=f"could not mark {incident.id} as a drill: {exc}")
    if incident.sev != expected:
        return replace(result, failure=f"{incident.id} opened as {incident.sev}, "
                       f"expected {expected}")
    return result


def _resolved(store: IncidentStore, result: DrillResult, timeout: float, poll: float
              ) -> DrillResult:
    assert result.incident_id is not None
    incident_id = result.incident_id

    def probe() -> Incident | None:
        incident = store.get(incident_id)
        return incident if not incident.is_open else None

    incident = _wait_for(probe, timeout, poll)
    if incident is None:
        return replace(result, failure=f"{incident_id} not resolved within {timeout:g}s "
                       "after the fault was cleared")
    result = replace(result, resolved_at=incident.resolved_at)
    if incident.resolved_by != ALERTMANAGER:
        return replace(result, failure=f"{incident_id} was resolved by "
                       f"{incident.resolved_by}, not by the alert clearing")
    return result
