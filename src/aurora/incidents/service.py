"""Incidents as a service: decisions on webhooks and operators' actions, ledger first.

Every incident event is appended to the Remembrancer as an entry of kind ``incident``
(``subject`` = incident id, ``data`` = ``Event.to_data()``) *before* the index
(``aurora.incidents.index``) is committed, so
- a crash between the two leaves an event in the ledger the index lacks: every write
  transaction first applies the ledger's entries the index has not seen, so the next
  decision is made on the full history;
- concurrent writers (the receiver, several ``aurora incident ack`` runs) serialise on the
  index's write lock held across decide → append → index, so two operators cannot both be
  "first" to acknowledge, and a resend racing its original cannot open a second incident.

One step (a webhook, an acknowledgement, a breach check) is decided in memory on the
incidents it touches, loaded once: its events are submitted to the ledger together (one
group commit) and indexed together. Work is linear in the number of alerts of a webhook.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aurora.drills import window as drillwindow
from aurora.errors import AuroraError, UnreachableError
from aurora.home import Home
from aurora.incidents.config import IncidentsConfig, load_incidents_config
from aurora.incidents.index import (
    LEDGER_KIND,
    IncidentIndex,
    Indexed,
    StoreError,
    db_path,
)
from aurora.incidents.model import (
    ALERTMANAGER,
    AlertFacts,
    Event,
    Incident,
    acknowledge_events,
    alert_resolved_event,
    apply,
    breach_events,
    check_incident_id,
    format_incident_id,
    join_event,
    open_event,
    resolve_events,
    route_alert,
)
from aurora.incidents.report import Report, build_report
from aurora.incidents.webhook import WebhookPayload
from aurora.wire import TREATY_ID_PATTERN, format_rfc3339, utc_now

if TYPE_CHECKING:
    from aurora.ledger import Ledger, Receipt

__all__ = ["LEDGER_KIND", "IncidentStore", "IngestResult", "StoreError", "db_path",
           "incident_report", "open_store"]

log = logging.getLogger("aurora.incidents")


@dataclass
class IngestResult:
    """What one notification did, per alert: incident ids (one per alert that changed it)."""

    opened: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)  # another alert of the group joined
    alerts_resolved: list[str] = field(default_factory=list)  # one alert of several cleared
    resolved: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    stale: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"opened": self.opened, "joined": self.joined,
                "alerts_resolved": self.alerts_resolved, "resolved": self.resolved,
                "duplicates": self.duplicates, "stale": self.stale}


def _treaty_id(labels: Mapping[str, str]) -> str | None:
    value = labels.get("treaty_id")
    return value if isinstance(value, str) and re.match(TREATY_ID_PATTERN, value) else None


class _Step:
    """The events of one decision step, applied in memory as they are decided."""

    def __init__(self, index: IncidentIndex, con: sqlite3.Connection) -> None:
        self._index = index
        self._con = con
        self._groups: dict[str, list[Incident]] = {}  # key → incidents, newest first
        self._by_id: dict[str, Incident] = {}
        self.events: list[tuple[Event, str | None]] = []  # (event, the ledger entry's treaty)

    def group(self, key: str) -> list[Incident]:
        if key not in self._groups:
            self._groups[key] = self._index.by_key(self._con, key)
            self._by_id.update((i.id, i) for i in self._groups[key])
        return self._groups[key]

    def incident(self, incident_id: str) -> Incident:
        if incident_id not in self._by_id:
            self._by_id[incident_id] = self._index.load(self._con, incident_id)
        return self._by_id[incident_id]

    def add(self, events: list[Event]) -> Incident | None:
        done = None
        for event in events:
            current = self._by_id.get(event.incident_id)
            treaty = current.treaty_id if current else event.data.get("treaty_id")
            done = apply(current, event)
            self._by_id[done.id] = done
            group = self._groups.get(done.key)
            if group is not None and current is None:
                group.insert(0, done)
            elif group is not None:
                group[:] = [done if i.id == done.id else i for i in group]
            self.events.append((event, treaty))
        return done


class IncidentStore:
    """Incident state for one home. Thread-safe: every call uses its own connection."""

    def __init__(self, home: Home, *, ledger: Ledger | None, config: IncidentsConfig,
                 clock: Callable[[], datetime] = utc_now, owns_ledger: bool = False) -> None:
        self.home = home
        self.index = IncidentIndex(db_path(home))
        self.path = self.index.path
        self.config = config
        self.clock = clock
        self._ledger = ledger
        self._owns_ledger = owns_ledger
        if ledger is not None:
            with self.index.transaction(ledger):
                pass  # the transaction catches up with the ledger

    @classmethod
    def open(cls, home: Home, *, write: bool = False, clock: Callable[[], datetime] = utc_now,
             config: IncidentsConfig | None = None) -> IncidentStore:
        """The store with the ledger opened for writing (``write``) or reading.

        A reader without a ledger yet (a fresh home) still reads the index.
        """
        from aurora.ledger import Ledger

        config = config or load_incidents_config(home)
        ledger: Ledger | None
        try:
            ledger = Ledger.open(home) if write else Ledger.open(home, readonly=True)
        except AuroraError:
            if write:
                raise
            ledger = None
        except (OSError, sqlite3.Error) as exc:
            if write:
                raise StoreError(f"cannot open the ledger: {exc}") from None
            ledger = None
        try:
            return cls(home, ledger=ledger, config=config, clock=clock, owns_ledger=True)
        except BaseException:
            if ledger is not None:
                ledger.close()
            raise

    def close(self) -> None:
        if self._owns_ledger and self._ledger is not None:
            self._ledger.close()
        self._ledger = None

    def __enter__(self) -> IncidentStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _writer(self) -> Ledger:
        if self._ledger is None or getattr(self._ledger, "readonly", False):
            raise StoreError("the incident store was opened read-only")
        return self._ledger

    def _commit(self, con: sqlite3.Connection, step: _Step) -> None:
        """Append the step's events to the ledger (one group commit), then index them."""
        from aurora.ledger import Entry

        if not step.events:
            return
        ledger = self._writer()
        futures: list[concurrent.futures.Future[Receipt]] = []
        try:
            for event, treaty in step.events:
                futures.append(ledger.submit(Entry(
                    kind=LEDGER_KIND, treaty_id=treaty, tenant_id=None,
                    subject=event.incident_id, data=event.to_data())))
            receipts = [f.result() for f in futures]
        except Exception as exc:
            # what did become durable is caught up by the next transaction
            concurrent.futures.wait(futures)
            if isinstance(exc, AuroraError):
                raise
            raise StoreError(f"the ledger did not record {len(step.events)} incident "
                             f"event(s): {exc}") from None
        fallback = format_rfc3339(self.clock())
        self.index.write(con, [
            Indexed(r.leaf_index, str(r.entry.get("ts") or fallback), event)
            for r, (event, _) in zip(receipts, step.events, strict=True)])

    # --- reading -------------------------------------------------------------------------

    def get(self, incident_id: str) -> Incident:
        check_incident_id(incident_id)
        with self.index.connect() as con:
            return self.index.load(con, incident_id)

    def timeline(self, incident_id: str) -> list[tuple[int, Event]]:
        """The incident's events with their ledger sequence numbers."""
        check_incident_id(incident_id)
        return self.index.timeline(incident_id)

    def incidents(self, *, open_only: bool = False, since: datetime | None = None,
                  until: datetime | None = None, alertname: str | None = None
                  ) -> list[Incident]:
        """Incidents opened in [since, until), oldest first."""
        found = self.index.select(open_only=open_only, since=since, until=until)
        return [i for i in found if alertname is None or i.alertname == alertname]

    def report(self, *, since: datetime | None = None, until: datetime | None = None) -> Report:
        now = self.clock()
        return build_report(self.incidents(since=since, until=until), since=since,
                            until=until or now, now=now)

    # --- writing -------------------------------------------------------------------------

    def ingest(self, payload: WebhookPayload) -> IngestResult:
        """Apply one Alertmanager notification: one incident per alert group."""
        result = IngestResult()
        with self.index.transaction(self._ledger) as con:
            now = self.clock()
            step = _Step(self.index, con)
            ids = _IdSource(self.index, con, now)
            drills = _Drills(self._ledger, now)
            # firing alerts first: one that joins must not find the incident resolved by
            # another alert of the same notification that cleared
            for alert in sorted(payload.facts(), key=lambda a: a.status != "firing"):
                route, incident = route_alert(alert, step.group(alert.key))
                if route == "duplicate":
                    assert incident is not None
                    result.duplicates.append(incident.id)
                elif route == "stale":
                    result.stale += 1
                elif route == "open":
                    result.opened.append(self._open(step, alert, ids.next(), drills, now))
                else:
                    assert incident is not None
                    self._change(step, route, incident, alert, now)
                    {"join": result.joined, "resolve_alert": result.alerts_resolved,
                     "resolve": result.resolved}[route].append(incident.id)
            self._commit(con, step)
        return result

    def _open(self, step: _Step, alert: AlertFacts, new_id: str, drills: _Drills,
              now: datetime) -> str:
        found = self.config.classify(alert.labels)
        step.add([open_event(
            new_id, alert, sev=found.sev, rule=found.rule,
            deadline=self.config.deadline(found.sev, now), treaty_id=_treaty_id(alert.labels),
            now=now, drill=drills.owning(alert.alertname))])
        return new_id

    def _change(self, step: _Step, route: str, incident: Incident, alert: AlertFacts,
                now: datetime) -> None:
        if route == "join":
            found = self.config.classify(alert.labels)
            step.add([join_event(incident, alert, sev=found.sev, rule=found.rule,
                                 deadline=self.config.deadline(found.sev, now), now=now)])
        elif route == "resolve_alert":
            step.add([alert_resolved_event(incident, alert, now=now)])
        else:
            step.add(resolve_events(incident, by=ALERTMANAGER, note=None, now=now,
                                    alert_ends_at=alert.ends_at))

    def acknowledge(self, incident_id: str, *, by: str, note: str | None = None,
                    drill: str | None = None) -> Incident:
        check_incident_id(incident_id)
        with self.index.transaction(self._ledger) as con:
            step = _Step(self.index, con)
            done = step.add(acknowledge_events(step.incident(incident_id), by=by, note=note,
                                               now=self.clock(), drill=drill))
            self._commit(con, step)
        assert done is not None
        return done

    def resolve(self, incident_id: str, *, by: str, note: str) -> Incident:
        check_incident_id(incident_id)
        with self.index.transaction(self._ledger) as con:
            step = _Step(self.index, con)
            done = step.add(resolve_events(step.incident(incident_id), by=by, note=note,
                                           now=self.clock()))
            self._commit(con, step)
        assert done is not None
        return done

    def record(self, kind: str, *, subject: str, data: Mapping[str, Any],
               treaty_id: str | None = None) -> Receipt:
        """Append an entry of another kind (a drill's evidence) to this store's ledger."""
        from aurora.ledger import Entry

        return self._writer().append(Entry(kind=kind, treaty_id=treaty_id, tenant_id=None,
                                           subject=subject, data=dict(data)))

    def check_breaches(self) -> list[Incident]:
        """Record each SLA breach that is due now, once (an ``escalated`` event)."""
        now = self.clock()
        due = [i for i in self.incidents(open_only=True) if breach_events(i, now)]
        if not due:
            return []  # the common case takes no write lock
        escalated = []
        with self.index.transaction(self._ledger) as con:
            step = _Step(self.index, con)
            for candidate in due:
                # again, under the lock: another writer may have won
                events = breach_events(step.incident(candidate.id), now)
                if events and (done := step.add(events)) is not None:
                    escalated.append(done)
            self._commit(con, step)
        return escalated


class _IdSource:
    """Fresh incident ids for one step: the index is asked once, then counted on."""

    def __init__(self, index: IncidentIndex, con: sqlite3.Connection, now: datetime) -> None:
        self._day = now.date()
        self._prefix = format_incident_id(self._day, 0)[:-4]
        self._index, self._con = index, con
        self._last: int | None = None

    def next(self) -> str:
        if self._last is None:
            self._last = self._index.last_number(self._con, self._prefix)
        self._last += 1
        return format_incident_id(self._day, self._last)


class _Drills:
    """The running alert drills (see drillwindow), read from the ledger once per step."""

    def __init__(self, ledger: Ledger | None, now: datetime) -> None:
        self._ledger, self._now = ledger, now
        self._active: list[drillwindow.ActiveDrill] | None = None

    def owning(self, alertname: str) -> str | None:
        """The running drill whose fault drives ``alertname``."""
        if self._ledger is None:
            return None
        if self._active is None:
            try:
                rows = self._ledger.scan(kinds=(drillwindow.KIND,),
                                         since_ts=self._now - drillwindow.MAX_DRILL)
                entries = [(str(row.subject), row.data or {}) for row in rows]
            except Exception as exc:  # the ledger's own errors: the incident opens anyway
                log.warning("cannot read drill entries (incident not checked for a drill): "
                            "%s", exc)
                return None
            self._active = drillwindow.active_drills(entries, self._now)
        return drillwindow.owning_drill(alertname, self._active)


def open_store(home: Home | None = None, *, write: bool = False) -> IncidentStore:
    """``IncidentStore.open`` for the discovered home; a missing ledger key is one line."""
    home = home or Home.discover()
    try:
        return IncidentStore.open(home, write=write)
    except (OSError, sqlite3.Error) as exc:
        raise UnreachableError(f"cannot open the incident store: {exc}") from None


def incident_report(home: Home | None = None, *, since: datetime | None = None,
                    until: datetime | None = None) -> Report:
    """The report the Day-7 gate reads: SEV counts (drills apart) and SLA compliance."""
    with open_store(home) as store:
        return store.report(since=since, until=until)
