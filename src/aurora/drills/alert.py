"""Alert validation drill: fault in → incident with the right SEV → fault out → resolved.

``run_alert_drill`` is the logic behind ``aurora drill alert --alert NAME`` (the command
lives with the soak's drills). The caller supplies ``inject``/``clear`` callbacks; for the
real thing ``drill_plan(home, alert)`` builds them as ``aurora chaos`` calls against the
running provider network (``aurora.drills.faults`` says which fault drives which alert), and
``run_drill(home, plan, timeout=...)`` runs one. The drill watches the incident store,
which the receiver fills, so a pass proves the whole path rule → Prometheus →
Alertmanager → receiver → ledger.

Before injecting, the drill appends a ``drill`` entry ``started`` naming the alerts its
fault drives; the receiver tags incidents of those alerts that open while the drill is
active as drill incidents (``aurora.drills.window``), so they are drills from their first ledger
entry and reports and the Day-7 gate count them apart. The drill also acknowledges the
incident it caused (``by="drill"``). Whatever happens, ``clear`` is called once ``inject``
was; the round trip, pass or fail, is appended as the ``finished`` ``drill`` entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import yaml

from aurora.drills import window as drillwindow
from aurora.drills.faults import DRILLABLE, DrillPlanError, drill_region, fault_events
from aurora.errors import AuroraError, UnreachableError
from aurora.home import Home
from aurora.incidents.config import Sev, load_incidents_config
from aurora.incidents.model import ALERTMANAGER, Incident, IncidentError
from aurora.incidents.service import IncidentStore
from aurora.providers.chaos import ChaosClient
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
    alerts: Sequence[str] = (),
    poll: float = 0.5,
    clock: Callable[[], datetime] = utc_now,
) -> DrillResult:
    """Run one alert drill; ``timeout`` bounds each wait (for the incident, for its
    resolution). ``expected_sev`` defaults to what config/incidents.json maps the
    incident's labels to; ``alerts`` names further alerts the fault drives (their incidents
    opened during the drill are drill incidents too). Raises DrillError only when the drill
    cannot start."""
    with IncidentStore.open(home, write=True, clock=clock) as store:
        already = store.incidents(open_only=True, alertname=alert_name)
        if already:
            raise DrillError(f"{alert_name} already has open incident(s) "
                             f"{', '.join(i.id for i in already)}: resolve them before a drill")
        started_at = clock()
        drill_id = f"DRILL-{started_at:%Y%m%dT%H%M%SZ}"
        # two waits and some slack; the receiver stops tagging after this even if the drill
        # process dies before its finished entry
        expires = min(timedelta(seconds=2 * timeout + 120), drillwindow.MAX_DRILL)
        store.record(drillwindow.KIND, subject=drill_id, data=drillwindow.started_data(
            drill_id, alert_name, alerts, started_at=started_at,
            expires_at=started_at + expires))
        fired_at = clock()
        result = DrillResult(drill_id=drill_id, alert=alert_name,
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
        receipt = store.record(drillwindow.KIND, subject=result.drill_id,
                               data=drillwindow.finished_data(result.drill_id, result.to_json()))
        return replace(result, ledger_seq=receipt.leaf_index)


def _opened(store: IncidentStore, result: DrillResult, timeout: float, poll: float
            ) -> DrillResult:
    def probe() -> Incident | None:
        found = [i for i in store.incidents(open_only=True, alertname=result.alert)
                 if i.drill == result.drill_id or i.opened_at >= result.fired_at]
        # the one the receiver tagged with this drill, if any
        return next((i for i in found if i.drill == result.drill_id), found[0] if found else None)

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


# --- drill plans: the fault behind an alert, against the running provider network ----------

@dataclass(frozen=True)
class DrillPlan:
    """How to drill one alert: ``inject`` the fault, ``clear`` exactly what it injected."""

    inject: Callable[[], None]
    clear: Callable[[], None]
    expected_sev: Sev
    alert: str = ""
    alerts: tuple[str, ...] = ()  # every alert the fault drives, the drilled one first
    summary: str = ""


@dataclass
class ChaosFaults:
    """Fault events posted to the provider network (``POST /chaos``, what ``aurora chaos``
    does), remembered by id so that ``clear`` deletes those and no one else's."""

    client: ChaosClient
    bodies: list[dict[str, Any]]
    event_ids: list[str] = field(default_factory=list)

    def inject(self) -> None:
        for body in self.bodies:
            try:
                event = self.client.add(body)
            except UnreachableError:
                raise
            except AuroraError as exc:
                raise AuroraError(f"provider network refused {body['type']} on "
                                  f"{body['provider']}: {exc}") from None
            self.event_ids.append(str(event["id"]))

    def clear(self) -> None:
        """Delete every event ``inject`` created (one that already ended is fine)."""
        failed = []
        while self.event_ids:
            event_id = self.event_ids.pop()
            try:
                self.client.remove(event_id, missing_ok=True)
            except AuroraError as exc:
                failed.append(f"{event_id}: {exc}")
        if failed:
            raise AuroraError(f"could not clear fault event(s) {'; '.join(failed)}")


def _rule_labels(home: Home, alert: str) -> dict[str, str]:
    """The labels of alerting rule ``alert`` in ``ops/prometheus/rules/`` (with alertname)."""
    for path in sorted((home.ops / "prometheus" / "rules").glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in document.get("groups") or []:
            for rule in group.get("rules") or []:
                if rule.get("alert") == alert:
                    return {"alertname": alert, **{str(k): str(v) for k, v in
                                                   (rule.get("labels") or {}).items()}}
    raise DrillError(f"no alerting rule {alert!r} in {home.ops / 'prometheus' / 'rules'}")


def drill_plan(home: Home, alert_name: str, *, region: str | None = None,
               fault_for: str = "1h") -> DrillPlan:
    """The plan for drilling ``alert_name`` against the stack of ``home``.

    ``expected_sev`` is what config/incidents.json maps the alert rule's labels to, so the
    drill checks that the whole path delivers what the configuration says. ``region``
    (fill-rate drill) defaults to the treaty region served by the fewest providers;
    ``fault_for`` bounds the fault should the drill die before clearing it.
    """
    from aurora.config import load_providers
    from aurora.treaty import load_treaty

    spec = DRILLABLE.get(alert_name)
    if spec is None:
        raise DrillError(f"no drill for {alert_name!r}: drillable alerts are "
                         f"{', '.join(DRILLABLE)}")
    providers = load_providers(home).providers
    try:
        chosen = region or drill_region(providers, load_treaty(home).regions)
        bodies = fault_events(spec, providers, region=chosen, duration=fault_for)
    except DrillPlanError as exc:
        raise DrillError(f"{alert_name}: {exc}") from None
    faults = ChaosFaults(ChaosClient.for_home(home), bodies)
    sev = load_incidents_config(home).classify(_rule_labels(home, alert_name)).sev
    summary = spec.summary + (f" ({chosen})" if spec.fault == "region_outage" else "")
    return DrillPlan(inject=faults.inject, clear=faults.clear, expected_sev=sev,
                     alert=alert_name, alerts=(alert_name, *spec.companions), summary=summary)


def run_drill(home: Home, plan: DrillPlan, *, timeout: float, poll: float = 0.5,
              clock: Callable[[], datetime] = utc_now) -> DrillResult:
    """``run_alert_drill`` for a plan of ``drill_plan``."""
    return run_alert_drill(home, plan.alert, inject=plan.inject, clear=plan.clear,
                           timeout=timeout, expected_sev=plan.expected_sev,
                           alerts=plan.alerts, poll=poll, clock=clock)
