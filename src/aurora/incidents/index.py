"""``ops/data/incidents.db``: the SQLite index of the ledger's ``incident`` entries.

The ledger is the record (see ``aurora.incidents.service``); this module only keeps a
queryable copy of it: every applied event under its ledger sequence number, and one row per
incident with what lists filter on. It knows SQL and the fold, nothing about decisions.

- ``transaction(ledger)`` takes SQLite's write lock (``BEGIN IMMEDIATE``) and first applies
  the ledger's ``incident`` entries the index has not seen ("catch-up"), so a decision made
  inside it sees the full history; deleting the file rebuilds it on the next open.
- Writes are batched: ``write`` takes every event of one decision step and stores them
  with one ``executemany`` per table, the incidents' new states folded in memory, so work
  grows with the number of events, never with the size of the incidents they touch.
Readers use the index only (WAL) and never block writers.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aurora.errors import AuroraError
from aurora.home import Home
from aurora.incidents.model import Event, Incident, IncidentNotFound, apply, fold
from aurora.wire import format_rfc3339

if TYPE_CHECKING:
    from aurora.ledger import Ledger

log = logging.getLogger("aurora.incidents")

LEDGER_KIND = "incident"
_PARAMS = 500  # SQLite's bound-parameter limit, with room

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


def db_path(home: Home) -> Path:
    return home.data_dir / "incidents.db"


@dataclass(frozen=True)
class Indexed:
    """One event as recorded: its ledger seq and timestamp."""

    seq: int
    ledger_ts: str
    event: Event


class IncidentIndex:
    """The index file of one home. Thread-safe: every call uses its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
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
    def transaction(self, ledger: Ledger | None) -> Iterator[sqlite3.Connection]:
        """The write lock, with the index caught up with ``ledger`` first."""
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                if ledger is not None:
                    self._catch_up(con, ledger)
                yield con
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # --- catch-up ------------------------------------------------------------------------

    def _catch_up(self, con: sqlite3.Connection, ledger: Ledger) -> int:
        try:
            start = self._resume_point(con, ledger)
            # Incident entries are appended only under this index's write lock, after a
            # catch-up, so every entry the index lacks lies past the newest one it has.
            rows = list(ledger.scan(kinds=(LEDGER_KIND,), start_seq=start))
        except Exception as exc:  # the ledger's own errors: the index cannot be trusted now
            raise StoreError(f"cannot read incident entries from the ledger: {exc}") from None
        found: list[Indexed] = []
        for entry in rows:
            try:
                document = json.loads(entry.payload)
                event = Event.from_data(str(entry.subject), document["data"])
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("ledger entry %s is not a valid incident event: %s", entry.seq, exc)
                continue
            found.append(Indexed(entry.seq, entry.ts, event))
        applied = self.write(con, found, skip_invalid=True)
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

    # --- writing -------------------------------------------------------------------------

    def write(self, con: sqlite3.Connection, recorded: Sequence[Indexed], *,
              skip_invalid: bool = False) -> int:
        """Index ``recorded`` (in seq order) inside the write transaction; how many applied.

        Each touched incident is loaded once, folded forward in memory and stored once.
        ``skip_invalid`` drops an event that cannot follow (catch-up: never brick the
        receiver on one bad ledger entry; verify-audit is where integrity is judged).
        """
        states: dict[str, Incident | None] = {}
        ids = list(dict.fromkeys(r.event.incident_id for r in recorded))
        states.update(dict.fromkeys(ids))
        states.update(self.load_many(con, ids))
        rows = []
        for item in recorded:
            event = item.event
            try:
                states[event.incident_id] = apply(states[event.incident_id], event)
            except ValueError as exc:
                if not skip_invalid:
                    raise
                log.warning("ledger entry %s is not a valid incident event: %s", item.seq, exc)
                continue
            rows.append((item.seq, event.incident_id, event.kind, format_rfc3339(event.at),
                         item.ledger_ts, json.dumps(event.to_data(), sort_keys=True)))
        con.executemany("INSERT INTO events (seq, incident_id, kind, at, ledger_ts, data) "
                        "VALUES (?, ?, ?, ?, ?, ?)", rows)
        # key too: an index written before incidents were keyed by group gets the new key
        con.executemany("INSERT INTO incidents (id, key, status, sev, opened_at, drill) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                        "key = excluded.key, status = excluded.status, sev = excluded.sev, "
                        "drill = excluded.drill",
                        [(i.id, i.key, i.status, i.sev, format_rfc3339(i.opened_at), i.drill)
                         for i in states.values() if i is not None])
        return len(rows)

    # --- reading -------------------------------------------------------------------------

    def events(self, con: sqlite3.Connection, ids: Sequence[str]) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {}
        for start in range(0, len(ids), _PARAMS):
            part = list(ids[start:start + _PARAMS])
            for incident_id, data in con.execute(
                    f"SELECT incident_id, data FROM events WHERE incident_id IN "
                    f"({','.join('?' * len(part))}) ORDER BY seq", part):
                out.setdefault(incident_id, []).append(
                    Event.from_data(incident_id, json.loads(data)))
        return out

    def load_many(self, con: sqlite3.Connection, ids: Sequence[str]) -> dict[str, Incident]:
        return {i: fold(events) for i, events in self.events(con, ids).items()}

    def load(self, con: sqlite3.Connection, incident_id: str) -> Incident:
        found = self.load_many(con, [incident_id]).get(incident_id)
        if found is None:
            raise IncidentNotFound(f"no incident {incident_id}")
        return found

    def by_key(self, con: sqlite3.Connection, key: str) -> list[Incident]:
        """The incidents of one alert group, newest first."""
        ids = [r[0] for r in con.execute(
            "SELECT id FROM incidents WHERE key = ? ORDER BY opened_at DESC, id DESC", (key,))]
        found = self.load_many(con, ids)
        return [found[i] for i in ids]

    def last_number(self, con: sqlite3.Connection, prefix: str) -> int:
        """The highest ``NNNN`` of the incident ids ``<prefix>NNNN`` (0 if none)."""
        row = con.execute("SELECT max(CAST(substr(id, ?) AS INTEGER)) FROM incidents "
                          "WHERE id LIKE ?", (len(prefix) + 1, prefix + "%")).fetchone()
        return int(row[0] or 0)

    def timeline(self, incident_id: str) -> list[tuple[int, Event]]:
        with self.connect() as con:
            rows = con.execute("SELECT seq, data FROM events WHERE incident_id = ? ORDER BY seq",
                               (incident_id,)).fetchall()
        if not rows:
            raise IncidentNotFound(f"no incident {incident_id}")
        return [(seq, Event.from_data(incident_id, json.loads(data))) for seq, data in rows]

    def select(self, *, open_only: bool = False, since: datetime | None = None,
               until: datetime | None = None) -> list[Incident]:
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
        with self.connect() as con:
            ids = [r[0] for r in con.execute(
                f"SELECT id FROM incidents WHERE {' AND '.join(where)} ORDER BY opened_at, id",
                args)]
            found = self.load_many(con, ids) if ids else {}
        return [found[i] for i in ids]

