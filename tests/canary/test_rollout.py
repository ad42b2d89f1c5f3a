"""`aurora canary start --dry-run`, `status`, `report`: the gate check and the ledger's record."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aurora import gpg
from aurora.canary.evidence import DEPLOY
from aurora.canary.plan import bucket_of
from aurora.canary.rollout import CanaryRefused, verify_gate
from aurora.canonical import canonical_json
from aurora.cli import app
from aurora.command import run_app
from aurora.home import Home
from aurora.ledger import Ledger
from aurora.soak.verdict import GATE_KIND

from .test_measure import TENANTS, _order


@pytest.fixture(scope="module")
def keyring() -> Iterator[tuple[Path, str]]:
    with gpg.temporary_keyring() as where:
        yield where, gpg.make_throwaway_key(where, "Aurora canary test <canary@aurora.invalid>")


def _gate(path: Path, outcome: str, key: str | None, keyring: Path) -> Path:
    document = {"report": GATE_KIND, "version": 1, "soak_id": "soak-x", "outcome": outcome}
    gpg.publish(path, canonical_json(document), key, gnupghome=keyring)
    return path


def test_the_gate_must_have_passed_and_verify(tmp_path: Path,
                                              keyring: tuple[Path, str]) -> None:
    where, key = keyring
    path = tmp_path / "day7-gate.json"
    with pytest.raises(CanaryRefused, match="no Day-7 gate verdict"):
        verify_gate(path, gnupghome=where)
    _gate(path, "pass", None, where)
    with pytest.raises(CanaryRefused, match="does not verify"):
        verify_gate(path, gnupghome=where)  # unsigned
    _gate(path, "fail", key, where)
    with pytest.raises(CanaryRefused, match="did not pass"):
        verify_gate(path, gnupghome=where)
    _gate(path, "pass", key, where)
    verified = verify_gate(path, gnupghome=where)
    assert verified["outcome"] == "pass" and verified["fingerprint"]
    path.write_bytes(path.read_bytes().replace(b'"pass"', b'"pass" '))  # altered after signing
    with pytest.raises(CanaryRefused, match="does not verify"):
        verify_gate(path, gnupghome=where)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_app(app, ["canary", *args], prog="aurora")
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


@pytest.mark.parametrize("args, code, message", [
    (["--candidate", "."], 1, "no Day-7 gate verdict"),  # dry run or not: the gate comes first
    (["--candidate", ".", "--force"], 2, "--force needs --reason"),
    (["--candidate", ".", "--dry-run", "--steps", "10,50"], 2, "end at 100"),
    (["--candidate", "/nonexistent-dir", "--force", "--reason", "x", "--dry-run"], 1,
     "neither a directory nor a git ref"),
])
def test_start_refuses_in_one_line_and_records_nothing(
        home: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int,
        message: str) -> None:
    if "--dry-run" not in args and "--force" not in args:
        args = [*args, "--dry-run"]
    Ledger.open(Home(home)).close()
    got, _, err = _run(capsys, "start", *args)
    assert got == code and message in err and "Traceback" not in err
    with Ledger.open(Home(home), readonly=True) as ledger:
        assert list(ledger.scan(kinds=DEPLOY)) == []


def test_a_dry_run_aborts_a_bad_slice_and_status_and_report_tell_why_from_the_ledger(
        home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    Ledger.open(Home(home)).close()
    (tmp_path / "cand" / "config").mkdir(parents=True)
    shutil.copy(home / "config" / "tenants.json", tmp_path / "cand" / "config")
    run = subprocess.Popen(
        [sys.executable, "-m", "aurora", "canary", "start", "--candidate",
         str(tmp_path / "cand"),
         "--dry-run", "--force", "--reason", "test: no soak", "--hold", "0s", "--settle", "0s",
         "--steps",
         "10,100", "--interval", "2s", "--for", "60s", "--rate", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with Ledger.open(Home(home)) as ledger:
            for _ in range(300):  # the step's window opens with its start entry
                if list(ledger.scan(kinds=DEPLOY)) or run.poll() is not None:
                    break
                time.sleep(0.1)
            for future in [ledger.submit(_order(t, i, rtt=260.0, dropped=bucket_of(t) < 10))
                           for i in range(30) for t in TENANTS]:
                future.result()
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1, err  # aborted
    assert "pairs to pass" in out and "aborted at 0 %" in out
    code, out, err = _run(capsys, "status", "--json")
    assert code == 0, err
    status = json.loads(out)
    assert status["dry_run"] and status["state"]["phase"] == "aborted"
    assert "fill" in status["state"]["reason"]
    fill = next(m for m in status["measurements"] if m["comparison"] == "fill")
    assert fill["decision"] == "fail" and fill["sample_size"] > 0 and fill["query"]
    code, out, err = _run(capsys, "status")
    assert code == 0 and "aborted" in out and "fill" in out
    code, out, err = _run(capsys, "report")
    assert code == 0, err
    report_path = Path(out.split(" (")[0])
    report = json.loads(report_path.read_bytes())
    assert report["outcome"] == "aborted" and report["gate"] == {"forced": True,
                                                                 "reason": "test: no soak"}
    assert report["ledger"]["deploy_entries"] == status["deploy_entries"]
    assert gpg.verify_checksum(report_path)
    with Ledger.open(Home(home), readonly=True) as ledger:
        kinds = [json.loads(r.payload)["data"]["event"] for r in ledger.scan(kinds=DEPLOY)]
    assert kinds[0] == "start" and "verdict" in kinds and kinds[-1] == "weight"
