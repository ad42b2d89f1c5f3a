"""What the PostgreSQL backend adds: its own append-only rules, one root per size, NUL
in text, and an outage of the server (the error the bridge answers 503 with, recovery; an audit
stream cut off)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from ledger_support import ORIGIN, fill

from aurora.db import schema
from aurora.db.postgres import connect
from aurora.home import Home
from aurora.ledger import Entry, EntryError, Ledger, LedgerUnavailableError
from aurora.ledger.audit import audit
from aurora.ledger.note import Verifier
from aurora.ledger.storage import ledger_location
from support import PgCluster


@pytest.fixture
def backend() -> str:
    return "postgresql"


def test_append_only_in_the_database(ledger: Ledger, db: str) -> None:
    fill(ledger, 3)
    ledger.checkpoint()
    with connect(db) as conn:
        for statement in ("UPDATE audit_log SET kind = 'x'", "DELETE FROM merkle_hashes",
                          "DELETE FROM checkpoints", "TRUNCATE audit_log",
                          "UPDATE ledger_tree SET size = 1", "DELETE FROM ledger_tree"):
            with pytest.raises(psycopg.Error, match="append-only|only grows"):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (3,)


def test_two_checkpoints_of_one_size_never_carry_different_roots(ledger: Ledger,
                                                                 db: str) -> None:
    fill(ledger, 4)
    ledger.checkpoint()
    with connect(db) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO checkpoints VALUES (4, %s, 'now', 'forged')", (b"\1" * 32,))


def test_nul_in_a_text_column_is_refused_before_it_is_queued(ledger: Ledger, db: str,
                                                             verifier: Verifier) -> None:
    with pytest.raises(EntryError, match="NUL"):
        ledger.append(Entry(kind="note", subject="a\x00b"))
    # NUL inside the data is escaped in the payload (\u0000, which jsonb refuses):
    # stored, and verified by the row-by-row column check
    ledger.append(Entry(kind="note", subject="ok", data={"text": "a\x00b"}))
    assert ledger.size() == 1
    assert audit(db, [verifier], origin=ORIGIN).tree_size == 1


@pytest.fixture
def own_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()  # its own: this test stops the server
    yield cluster
    cluster.stop()


def test_an_outage_is_ledger_unavailable_and_the_writer_recovers(
        home: Path, own_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch,
        verifier: Verifier) -> None:
    url = own_cluster.database()
    schema.init(url)
    monkeypatch.setenv("AURORA_DATABASE_URL", url)
    with Ledger.open(home) as ledger:
        first = ledger.append(Entry(kind="note", data={"i": 0}))
        own_cluster.stop_server()
        for _ in range(3):
            with pytest.raises(LedgerUnavailableError, match="unavailable"):
                ledger.append(Entry(kind="note", data={"lost": True}))
        with pytest.raises(LedgerUnavailableError, match="unavailable"):
            ledger.size()  # a read: the pool's connection is gone too
        own_cluster.start_server()
        after = ledger.append(Entry(kind="note", data={"i": 1}))  # reconnects by itself
        assert (first.leaf_index, after.leaf_index) == (0, 1)
        after.verify([verifier])
        assert [r.data for r in ledger.scan()] == [{"i": 0}, {"i": 1}]
    report = audit(ledger_location(Home(home)), [verifier], origin=ORIGIN)
    assert report.tree_size == 2 and report.unsigned_tail == 0


def test_a_writer_opens_while_another_appends(home: Path, ledger: Ledger) -> None:
    """Opening checks stored hashes against the size: in one snapshot, or a replica that
    starts while another appends sees a torn count and refuses to open."""
    import threading

    stop = threading.Event()

    def append_until_stopped() -> None:
        while not stop.is_set():
            fill(ledger, 32)

    appender = threading.Thread(target=append_until_stopped)
    appender.start()
    try:
        for _ in range(25):
            Ledger.open(home).close()
    finally:
        stop.set()
        appender.join()
    assert ledger.size() >= 32


def test_many_reading_threads_share_a_few_server_connections(home: Path, ledger: Ledger,
                                                             db: str) -> None:
    """A replica serves reads from many request threads; one connection each would
    exhaust the server's max_connections with a handful of replicas."""
    from concurrent.futures import ThreadPoolExecutor

    from aurora.ledger.pgstore import READ_POOL_SIZE

    fill(ledger, 16)
    ledger.close()  # from here on, every connection of ours is a reader's
    with Ledger.open(home, readonly=True) as reader, ThreadPoolExecutor(32) as threads:
        sizes = list(threads.map(lambda i: reader.inclusion_proof(i % 16).tree_size, range(320)))
        assert set(sizes) == {16}
        with connect(db) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'aurora' AND pid <> pg_backend_pid()").fetchone()
        assert row is not None and 1 <= row[0] <= READ_POOL_SIZE


def test_a_tree_state_row_that_disagrees_with_the_log_stops_the_writer(
        home: Path, ledger: Ledger, db: str) -> None:
    """A write turn takes the log's size from the locked tree-state row; a row moved ahead
    of the log (by hand: it may only grow) is refused, not trusted into a gap."""
    from aurora.ledger import LedgerDatabaseError

    fill(ledger, 3)
    ledger.close()
    with connect(db) as conn:
        conn.execute("UPDATE ledger_tree SET size = size + 5")
    with Ledger.open(home) as writer, pytest.raises(
            LedgerDatabaseError, match="ledger_tree says 8 entries, audit_log holds 3"):
        writer.append(Entry(kind="note", data={"after": "forged size"}))
    with connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (3,)


def test_an_audit_stream_that_loses_its_server_raises_and_stops(
        ledger: Ledger, db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's rows are fetched ahead by a thread: a connection cut mid-stream reaches
    the reader as the ledger-unavailable error, and a stream left unread closes at once."""
    from aurora.ledger import pgstore

    fill(ledger, 200)
    monkeypatch.setattr(pgstore, "AUDIT_FETCH", 10)  # many fetches, two of them ahead
    store = pgstore.PgStore(db, readonly=True)
    cut = False
    try:
        with store.transaction(write=False):
            store.hash_rows()  # left unread, two fetches ahead: closing must not wait on it
            rows = store.leaf_rows()
            assert [r[0] for r in rows.fetchmany(15)] == list(range(15))
            backend = store.conn.execute("SELECT pg_backend_pid()").fetchone()
            assert backend is not None
            with connect(db) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", backend)
            with pytest.raises(LedgerUnavailableError, match="unavailable"):
                while rows.fetchmany(15):
                    pass
            cut = True
    except LedgerUnavailableError:
        assert cut  # only the transaction's end, on the dead connection, may fail now
    finally:
        store.close()
    assert cut
