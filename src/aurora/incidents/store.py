"""Persisted incidents: the ledger is the record, ``ops/data/incidents.db`` an index of it.

Every incident event is appended to the Remembrancer as an entry of kind ``incident``
(``subject`` = incident id, ``data`` = ``Event.to_data()``) *before* the SQLite index is
committed. The index (WAL) holds each applied event under its ledger sequence number, so
- a crash between the two leaves an event in the ledger the index lacks: every write
  transaction and every ``open`` first applies the ledger's ``incident`` entries the index
  has not seen ("catch-up"), so the next decision is made on the full history;
- deleting ``incidents.db`` rebuilds it from the ledger on the next open;
- concurrent writers (the receiver, several ``aurora incident ack`` runs) serialise on
  SQLite's write lock (``BEGIN IMMEDIATE``) held across decide → append → index, so two
  operators cannot both be "first" to acknowledge, and a resend racing its original
  cannot open a second incident.
Readers use the index only and never block writers.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurora.errors import AuroraError, UnreachableError
from aurora.home import Home
from aurora.incidents import drillwindow
from aurora.incidents.config import IncidentsConfig, load_incidents_config
from aurora.incidents.model import (
    ALERTMANAGER,
    AlertFacts,
    Event,
    Incident,
    IncidentNotFound,
    acknowledge_events,
    alert_resolved_event,
    apply,
    breach_events,
    check_incident_id,
    fold,
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

log = logging.getLogger("aurora.incidents")

LEDGER_KIND = "incident"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,          -- the entry's ledger leaf index
    incident_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    ledger_ts TEXT NOT NULL,
    data TEXT NOT NULL                -- the ledger entry's data (JSON)
);
CREATE INDEX IF NOT EXISTS events_incident ON events (incident_id, seq);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    sev TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    drill TEXT
);
CREATE INDEX IF NOT EXISTS incidents_key ON incidents (key);
CREATE INDEX IF NOT EXISTS incidents_opened ON incidents (opened_at);
"""


class StoreError(AuroraError):
    """The incident index or the ledger could not be read or written."""

    exit_code = 2


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


def db_path(home: Home) -> Path:
    return home.data_dir / "incidents.db"


def _treaty_id(labels: Mapping[str, str]) -> str | None:
    value = labels.get("treaty_id")
    return value if isinstance(value, str) and re.match(TREATY_ID_PATTERN, value) else None


class IncidentStore:
    """Incident state for one home. Thread-safe: every call uses its own connection."""

    def __init__(self, home: Home, *, ledger: Ledger | None, config: IncidentsConfig,
                 clock: Callable[[], datetime] = utc_now, owns_ledger: bool = False) -> None:
        self.home = home
        self.path = db_path(home)
        self.config = config
        self.clock = clock
        self._ledger = ledger
        self._owns_ledger = owns_ledger
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
        if ledger is not None:
            with self._transaction():
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

    # --- connections and transactions ----------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        try:
            con.execute("PRAGMA busy_timeout=30000")
            con.execute("PRAGMA synchronous=NORMAL")  # the ledger is the durable record
            yield con
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The write lock, with the index caught up with the ledger first."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                self._catch_up(con)
                yield con
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _writer(self) -> Ledger:
        if self._ledger is None or getattr(self._ledger, "readonly", False):
            raise StoreError("the incident store was opened read-only")
        return self._ledger

    # --- applying events -----------------------------------------------------------------

    def _catch_up(self, con: sqlite3.Connection) -> int:
        if self._ledger is None:
            return 0
        try:
            start = self._resume_point(con, self._ledger)
            # Incident entries are appended only under this index's write lock, after a
            # catch-up, so every entry the index lacks lies past the newest one it has.
            rows = list(self._ledger.scan(kinds=(LEDGER_KIND,), start_seq=start))
        except Exception as exc:  # the ledger's own errors: the index cannot be trusted now
            raise StoreError(f"cannot read incident entries from the ledger: {exc}") from None
        applied = 0
        for entry in rows:
            try:
                document = json.loads(entry.payload)
                event = Event.from_data(str(entry.subject), document["data"])
                self._index(con, event, seq=entry.seq, ledger_ts=entry.ts)
            except (ValueError, KeyError, TypeError) as exc:
                # never brick the receiver on one bad entry; verify-audit is where the
                # ledger's integrity is judged
                log.warning("ledger entry %s is not a valid incident event: %s", entry.seq, exc)
                continue
            applied += 1
        if applied:
            log.info("applied %d incident event(s) from the ledger", applied)
        return applied

    @staticmethod
    def _resume_point(con: sqlite3.Connection, ledger: Ledger) -> int:
        """The first ledger seq the index has not seen; 0 after clearing a stale index.

        The newest indexed event must still be that entry in the ledger. It is not after
        the ledger was restored from an older backup (the emergency procedure) or replaced:
        then the index describes a history the record no longer holds, so it is rebuilt
        from the ledger rather than trusted.
        """
        last = con.execute("SELECT seq, incident_id, data FROM events "
                           "ORDER BY seq DESC LIMIT 1").fetchone()
        if last is None:
            return 0
        seq, incident_id, data = last
        found = list(ledger.scan(kinds=(LEDGER_KIND,), start_seq=seq, stop_seq=seq + 1))
        if (found and found[0].subject == incident_id
                and json.loads(found[0].payload).get("data") == json.loads(data)):
            return int(seq) + 1
        log.warning("%s no longer matches the ledger at entry %d (ledger restored or "
                    "replaced?): rebuilding the incident index from the ledger",
                    "incidents.db", seq)
        con.execute("DELETE FROM events")
        con.execute("DELETE FROM incidents")
        return 0

    def _index(self, con: sqlite3.Connection, event: Event, *, seq: int, ledger_ts: str
               ) -> Incident:
        current = self._load(con, event.incident_id, missing_ok=True)
        incident = apply(current, event)
        con.execute("INSERT INTO events (seq, incident_id, kind, at, ledger_ts, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (seq, event.incident_id, event.kind, format_rfc3339(event.at), ledger_ts,
                     json.dumps(event.to_data(), sort_keys=True)))
        # key too: an index written before incidents were keyed by group gets the new key
        con.execute("INSERT INTO incidents (id, key, status, sev, opened_at, drill) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "key = excluded.key, status = excluded.status, sev = excluded.sev, "
                    "drill = excluded.drill",
                    (incident.id, incident.key, incident.status, incident.sev,
                     format_rfc3339(incident.opened_at), incident.drill))
        return incident

    def _commit(self, con: sqlite3.Connection, events: Sequence[Event]) -> Incident | None:
        """Append ``events`` to the ledger, then index them (inside the write transaction)."""
        from aurora.ledger import Entry

        incident = None
        for event in events:
            current = self._load(con, event.incident_id, missing_ok=True)
            treaty = current.treaty_id if current else event.data.get("treaty_id")
            try:
                receipt = self._writer().append(Entry(
                    kind=LEDGER_KIND, treaty_id=treaty, tenant_id=None,
                    subject=event.incident_id, data=event.to_data()))
            except AuroraError:
                raise
            except Exception as exc:
                raise StoreError(f"the ledger did not record {event.kind} of "
                                 f"{event.incident_id}: {exc}") from None
            ts = str(receipt.entry.get("ts") or format_rfc3339(self.clock()))
            incident = self._index(con, event, seq=receipt.leaf_index, ledger_ts=ts)
        return incident

    # --- reading -------------------------------------------------------------------------

    def _events(self, con: sqlite3.Connection, ids: Sequence[str]) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            part = list(ids[start:start + 500])
            for incident_id, data in con.execute(
                    f"SELECT incident_id, data FROM events WHERE incident_id IN "
                    f"({','.join('?' * len(part))}) ORDER BY seq", part):
                out.setdefault(incident_id, []).append(
                    Event.from_data(incident_id, json.loads(data)))
        return out

    def _load(self, con: sqlite3.Connection, incident_id: str, *, missing_ok: bool = False
              ) -> Incident | None:
        events = self._events(con, [incident_id]).get(incident_id)
        if not events:
            if missing_ok:
                return None
            raise IncidentNotFound(f"no incident {incident_id}")
        return fold(events)

    def _by_key(self, con: sqlite3.Connection, key: str) -> list[Incident]:
        ids = [r[0] for r in con.execute(
            "SELECT id FROM incidents WHERE key = ? ORDER BY opened_at DESC, id DESC", (key,))]
        events = self._events(con, ids)
        return [fold(events[i]) for i in ids]

    def get(self, incident_id: str) -> Incident:
        check_incident_id(incident_id)
        with self._connect() as con:
            incident = self._load(con, incident_id)
        assert incident is not None
        return incident

    def timeline(self, incident_id: str) -> list[tuple[int, Event]]:
        """The incident's events with their ledger sequence numbers."""
        check_incident_id(incident_id)
        with self._connect() as con:
            rows = con.execute("SELECT seq, data FROM events WHERE incident_id = ? ORDER BY seq",
                               (incident_id,)).fetchall()
        if not rows:
            raise IncidentNotFound(f"no incident {incident_id}")
        return [(seq, Event.from_data(incident_id, json.loads(data))) for seq, data in rows]

    def incidents(self, *, open_only: bool = False, since: datetime | None = None,
                  until: datetime | None = None, alertname: str | None = None
                  ) -> list[Incident]:
        """Incidents opened in [since, until), oldest first."""
        where, args = ["1 = 1"], []
        if open_only:
            where.append("status != 'resolved'")
        if since is not None:
            where.append("opened_at >= ?")
            args.append(format_rfc3339(since))
        if until is not None:
            where.append("opened_at < ?")
            args.append(format_rfc3339(until))
        with self._connect() as con:
            ids = [r[0] for r in con.execute(
                f"SELECT id FROM incidents WHERE {' AND '.join(where)} ORDER BY opened_at, id",
                args)]
            events = self._events(con, ids) if ids else {}
        found = [fold(events[i]) for i in ids]
        return [i for i in found if alertname is None or i.alertname == alertname]

    def report(self, *, since: datetime | None = None, until: datetime | None = None) -> Report:
        now = self.clock()
        return build_report(self.incidents(since=since, until=until), since=since,
                            until=until or now, now=now)

    # --- writing -------------------------------------------------------------------------

    def ingest(self, payload: WebhookPayload) -> IngestResult:
        """Apply one Alertmanager notification: one incident per alert group."""
        result = IngestResult()
        with self._transaction() as con:
            now = self.clock()
            # firing alerts first: one that joins must not find the incident resolved by
            # another alert of the same notification that cleared
            for alert in sorted(payload.facts(), key=lambda a: a.status != "firing"):
                route, incident = route_alert(alert, self._by_key(con, alert.key))
                if route in ("duplicate", "stale"):
                    if route == "duplicate":
                        assert incident is not None
                        result.duplicates.append(incident.id)
                    else:
                        result.stale += 1
                    continue
                if route == "open":
                    result.opened.append(self._open(con, alert, now))
                    continue
                assert incident is not None
                if route == "join":
                    found = self.config.classify(alert.labels)
                    self._commit(con, [join_event(
                        incident, alert, sev=found.sev, rule=found.rule,
                        deadline=self.config.deadline(found.sev, now), now=now)])
                    result.joined.append(incident.id)
                elif route == "resolve_alert":
                    self._commit(con, [alert_resolved_event(incident, alert, now=now)])
                    result.alerts_resolved.append(incident.id)
                else:
                    self._commit(con, resolve_events(incident, by=ALERTMANAGER, note=None,
                                                     now=now, alert_ends_at=alert.ends_at))
                    result.resolved.append(incident.id)
        return result

    def _open(self, con: sqlite3.Connection, alert: AlertFacts, now: datetime) -> str:
        found = self.config.classify(alert.labels)
        new_id = self._next_id(con, now)
        self._commit(con, [open_event(
            new_id, alert, sev=found.sev, rule=found.rule,
            deadline=self.config.deadline(found.sev, now), treaty_id=_treaty_id(alert.labels),
            now=now, drill=self._drill_for(alert.alertname, now))])
        return new_id

    def _drill_for(self, alertname: str, now: datetime) -> str | None:
        """The running alert drill whose fault drives ``alertname`` (see drillwindow)."""
        if self._ledger is None:
            return None
        try:
            rows = self._ledger.scan(kinds=(drillwindow.KIND,),
                                     since_ts=now - drillwindow.MAX_DRILL)
            entries = [(str(row.subject), row.data or {})
                       for row in rows]
        except Exception as exc:  # the ledger's own errors: the incident must open anyway
            log.warning("cannot read drill entries (incident not checked for a drill): %s",
                        exc)
            return None
        return drillwindow.owning_drill(alertname, drillwindow.active_drills(entries, now))

    def _next_id(self, con: sqlite3.Connection, now: datetime) -> str:
        prefix = format_incident_id(now.date(), 0)[:-4]
        row = con.execute("SELECT max(CAST(substr(id, ?) AS INTEGER)) FROM incidents "
                          "WHERE id LIKE ?", (len(prefix) + 1, prefix + "%")).fetchone()
        return format_incident_id(now.date(), (row[0] or 0) + 1)

    def acknowledge(self, incident_id: str, *, by: str, note: str | None = None,
                    drill: str | None = None) -> Incident:
        check_incident_id(incident_id)
        with self._transaction() as con:
            incident = self._load(con, incident_id)
            assert incident is not None
            done = self._commit(con, acknowledge_events(incident, by=by, note=note,
                                                        now=self.clock(), drill=drill))
        assert done is not None
        return done

    def resolve(self, incident_id: str, *, by: str, note: str) -> Incident:
        check_incident_id(incident_id)
        with self._transaction() as con:
            incident = self._load(con, incident_id)
            assert incident is not None
            done = self._commit(con, resolve_events(incident, by=by, note=note,
                                                    now=self.clock()))
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
        with self._transaction() as con:
            for candidate in due:
                incident = self._load(con, candidate.id)
                assert incident is not None
                events = breach_events(incident, now)  # again: another writer may have won
                if events and (done := self._commit(con, events)) is not None:
                    escalated.append(done)
        return escalated


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
