"""Durability: acknowledged appends survive SIGKILL; processes share one gap-free order."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ledger_support import both

from aurora.home import Home
from aurora.ledger import Ledger
from aurora.ledger.audit import audit
from aurora.ledger.entry import Entry
from aurora.ledger.note import Verifier
from aurora.ledger.storage import ledger_location

CHILD = Path(__file__).with_name("appender_child.py")
KILLS = {"sqlite": 22, "postgresql": 10}  # a PostgreSQL round costs more (connections)


def start_child(home: Path, tag: str, count: int, threads: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(CHILD), str(home), tag, str(count), str(threads)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "AURORA_HOME": str(home)})


def read_acks(proc: subprocess.Popen[str], until: threading.Event,
              acks: list[tuple[int, str]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if not line.endswith("\n"):
            break  # a torn last line was never a complete acknowledgement
        seq, name = line.split()
        acks.append((int(seq), name))
        until.set()


def check_log(home: Path, acked: dict[int, str]) -> int:
    verifier = Verifier.from_vkey(Home(home).ledger_vkey.read_text())
    report = audit(ledger_location(Home(home)), [verifier], origin=verifier.name)
    with Ledger.open(home, readonly=True) as reader:
        rows = {row.seq: row.subject for row in reader.scan()}
    assert sorted(rows) == list(range(len(rows)))  # no gaps
    for seq, name in acked.items():
        assert rows.get(seq) == name, f"acknowledged append {name} (seq {seq}) lost"
    return report.tree_size


@both
def test_acknowledged_appends_survive_sigkill(home: Path, backend: str) -> None:
    rng = random.Random(20251022)
    acked: dict[int, str] = {}
    size = 0
    for round_ in range(KILLS[backend]):
        proc = start_child(home, f"r{round_}", 0, 4)
        acks: list[tuple[int, str]] = []
        first = threading.Event()
        reader = threading.Thread(target=read_acks, args=(proc, first, acks))
        reader.start()
        try:
            assert first.wait(30), proc.stderr.read() if proc.stderr else ""
            time.sleep(rng.uniform(0.0, 0.15))  # kill at a random moment mid-stream
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            reader.join(30)
        assert proc.returncode == -signal.SIGKILL
        acked.update(acks)
        new_size = check_log(home, acked)  # after every kill, before the next start
        assert new_size >= size + len(acks)
        size = new_size
    assert len(acked) > KILLS[backend]


@both
def test_concurrent_processes_share_one_order(home: Path) -> None:
    procs = [start_child(home, f"p{n}", 60, 3) for n in range(4)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    acked = {}
    for out, _ in outputs:
        for line in out.splitlines():
            seq, name = line.split()
            acked[int(seq)] = name
    assert len(acked) == 240  # every seq given out once
    assert check_log(home, acked) == 240
    assert sorted(acked) == list(range(240))


@pytest.mark.sqlite_mode
def test_a_closed_ledger_is_one_self_contained_file(home: Path, tmp_path: Path) -> None:
    """Closing a writer folds the WAL into the database, even while another process's reader
    (the bridge's provenance auditor, the incident receiver) still has the file open: a copy
    of remembrancer.db alone, the way operators copy it, holds every entry."""
    h = Home(home)
    writer = Ledger.open(h)
    writer.append(Entry(kind="note", data={"first": True}))
    reader = Ledger.open(h, readonly=True)
    assert reader.size() == 1  # its connection is open, as a service's would be
    writer.extend(Entry(kind="note", data={"i": i}) for i in range(299))
    writer.append(Entry(kind="note", data={"last": True}))
    writer.close()
    try:
        wal = h.ledger_db.with_name(h.ledger_db.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        copy = tmp_path / "remembrancer.db"
        shutil.copyfile(h.ledger_db, copy)
        db = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        try:
            assert db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 301
        finally:
            db.close()
        assert reader.size() == 301
    finally:
        reader.close()
