"""A soak killed with SIGKILL mid-task resumes without repeating or losing a task; then its
gate, with Prometheus gone and too few recorded checks, is inconclusive (exit 3)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from aurora.home import Home
from aurora.ledger import Ledger
from aurora.soak.evidence import load_state
from aurora.stack import down

from .conftest import NEEDS, make_home

pytestmark = [pytest.mark.integration, pytest.mark.slow, *NEEDS]

SOAK = "resume-test"
KILL_DURING = "d1/0900/smoke"  # takes seconds: easy to catch in flight


@pytest.fixture
def soak_home(tmp_path: Path, signing_key: tuple[Path, str]
              ) -> Iterator[tuple[Home, dict[str, str]]]:
    root = make_home(tmp_path / "home", database_url="")  # in_flight() reads the SQLite file
    # This test is about the soak's bookkeeping, not the providers' latency: the shipped
    # networks' slowest put the 2-day RTT p95 near its objective, and one CI run under
    # load measured 383 ms over an 8-s day and failed the gate where it is inconclusive.
    # Halved base latencies keep that real measurement well inside the objective.
    providers = root / "config" / "providers.json"
    catalog = json.loads(providers.read_text())
    for network in catalog["providers"]:
        network["base_latency_ms"] /= 2
    providers.write_text(json.dumps(catalog))
    keyring, key = signing_key
    env = {**os.environ, "AURORA_HOME": str(root), "GNUPGHOME": str(keyring),
           "AURORA_GPG_KEY": key}
    try:
        yield Home(root), env
    finally:
        down(Home(root))  # the killed run's stack, if the test failed before resuming


def soak_entries(db: Path) -> list[dict[str, object]]:
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            rows = con.execute("SELECT payload FROM audit_log WHERE kind = 'soak_task' "
                               "ORDER BY seq").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []
    return [json.loads(payload)["data"] for (payload,) in rows]


def in_flight(db: Path, key: str) -> bool:
    events = [e["event"] for e in soak_entries(db) if e.get("key") == key]
    return events == ["started"]


def rehearse(env: dict[str, str]) -> list[str]:
    return [sys.executable, "-m", "aurora", "soak", "rehearse", "--days", "2",
            "--day-seconds", "6", "--drills", "none", "--soak-id", SOAK]


def test_killed_soak_resumes_without_repeating_or_losing_a_task(
        soak_home: tuple[Home, dict[str, str]]) -> None:
    home, env = soak_home
    first = subprocess.Popen(rehearse(env), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not in_flight(home.ledger_db, KILL_DURING):
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            assert time.monotonic() < deadline, "the smoke test never started"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL

    # the same command picks the soak up again, on the stack the killed run left behind
    second = subprocess.run(rehearse(env), env=env, capture_output=True, text=True,
                            timeout=240)
    assert "resuming soak resume-test" in second.stdout, second.stdout + second.stderr
    assert f"interrupted, to be rerun: {KILL_DURING}" in second.stdout
    assert "reusing the stack this rehearsal started" in second.stdout
    assert second.returncode == 3, second.stdout[-3000:] + second.stderr  # 2 days: inconclusive

    with Ledger.open(home, readonly=True) as ledger:
        state = load_state(ledger, SOAK)
    assert state.ended is not None and state.pending() == []
    assert state.duplicates == []  # no task has two outcomes
    assert set(state.finished) == {slot.key for slot in state.schedule()}  # none lost
    starts = Counter(e["key"] for e in soak_entries(home.ledger_db) if e["event"] == "started")
    assert starts[KILL_DURING] == 2  # the interrupted one ran again, explicitly ...
    assert {k for k, n in starts.items() if n > 1} == {KILL_DURING}  # ... and nothing else did
    rerun = state.finished[KILL_DURING]
    assert rerun.attempt == 2 and rerun.passed
    resumes = [e for e in soak_entries(home.ledger_db) if e["event"] == "resume"]
    assert [r["interrupted"] for r in resumes] == [[KILL_DURING]]

    # its gate: it reads the recorded daily SLO checks only (the same verdict whether or not
    # Prometheus still runs); two days cannot speak for seven, nothing failed: inconclusive
    gate = subprocess.run([sys.executable, "-m", "aurora", "soak", "gate", "--json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert gate.returncode == 3, gate.stderr
    verdict = json.loads(gate.stdout)
    assert verdict["outcome"] == "inconclusive"
    slo = next(i for i in verdict["items"] if i["key"] == "slo")
    assert slo["outcome"] == "inconclusive" and slo["evidence"]["source"] == "recorded"
    assert slo["reason"].startswith("from the recorded daily SLO checks")
    assert "the soak planned 2 day(s); the checklist needs 7" in slo["reason"]
    assert not [i for i in verdict["items"] if i["outcome"] == "fail"]
    assert (home.reports_dir / "day7-gate.json.asc").is_file()  # signed with AURORA_GPG_KEY
