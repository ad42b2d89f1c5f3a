"""Backups (online, verified, recorded), restore, and the seed's raw sqlite3 commands."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_support import CliResult, fill

from aurora.errors import AuroraError
from aurora.home import Home
from aurora.ledger import BackupError, Entry, Ledger
from aurora.ledger.backup import LATEST, backup, restore, verify_database_copy

Cli = Callable[..., CliResult]
REPO = Path(__file__).resolve().parents[2]

# the SQLite file's backups (PostgreSQL's: test_ledger_pgbackup.py)
pytestmark = pytest.mark.sqlite_mode


@pytest.fixture
def filled(home: Path) -> Home:
    with Ledger.open(home) as ledger:
        fill(ledger, 30)
    return Home(home)


def unpack(path: Path, target: Path) -> Path:
    target.write_bytes(gzip.decompress(path.read_bytes()))
    return target


def test_backup_is_verified_recorded_and_appended(filled: Home, tmp_path: Path) -> None:
    info = backup(filled)
    out = filled.backups_dir
    packed = out / info.file
    assert info.file.startswith("ledger-") and info.file.endswith(".db.gz")
    assert info.tree_size == 30 and info.checkpoint_size == 30
    sidecar = json.loads((out / f"{info.file}.json").read_text())
    manifest = [json.loads(line) for line in (out / "MANIFEST.jsonl").read_text().splitlines()]
    assert sidecar == info.to_json() and manifest == [info.to_json()]
    latest = out / LATEST
    assert latest.read_bytes() == packed.read_bytes()
    assert os.stat(latest).st_nlink == 1 and not latest.is_symlink()  # gunzip-able copy
    copy = unpack(packed, tmp_path / "copy.db")
    report = verify_database_copy(copy, filled, require_full_signature=True)
    assert report.root.hex() == info.root_hash
    with Ledger.open(filled.root, readonly=True) as reader:
        row = reader.get(30)
    assert row.kind == "backup"
    assert row.data == {"file": info.file, "sha256": info.sha256, "bytes": info.bytes,
                        "tree_size": 30, "root_hash": info.root_hash}


def test_backup_while_writers_run(filled: Home, tmp_path: Path) -> None:
    stop = threading.Event()

    def writer() -> None:
        with Ledger.open(filled.root) as ledger:
            while not stop.is_set():
                ledger.append(Entry(kind="note", data={"busy": True}))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        info = backup(filled, name="ledger-20251022.db.gz")
    finally:
        stop.set()
        thread.join()
    assert info.file == "ledger-20251022.db.gz" and info.tree_size >= 30
    copy = unpack(filled.backups_dir / info.file, tmp_path / "copy.db")
    assert verify_database_copy(copy, filled, require_full_signature=True).tree_size == \
        info.tree_size
    again = backup(filled, name="ledger-20251022.db.gz")  # the same day's name twice
    assert again.tree_size > info.tree_size
    kept = list(filled.backups_dir.glob("ledger-20251022.db.gz.previous-*"))
    assert len(kept) == 1  # the earlier file is kept, never deleted


def test_restore_sets_the_current_database_aside(filled: Home, cli: Cli) -> None:
    info = backup(filled)
    with Ledger.open(filled.root) as ledger:
        fill(ledger, 7)
    result = restore(filled, filled.backups_dir / info.file)
    assert result.tree_size == 30 and result.root_hash == info.root_hash
    aside = [Path(p) for p in result.moved_aside]
    assert any(p.name.startswith("remembrancer.db.before-restore-") for p in aside)
    assert any(p.name.startswith("checkpoint.before-restore-") for p in aside)
    old_db = next(p for p in aside if p.name.startswith("remembrancer.db."))
    with Ledger.open(filled.root, db=old_db, readonly=True) as before:
        assert before.tree_head().size == 38  # 30 + backup entry + 7: nothing lost
    with Ledger.open(filled.root, readonly=True) as now:
        assert now.tree_head().size == 31 and now.get(30).kind == "restore"
    audit_result = cli("verify-audit")
    assert audit_result.code == 0 and "warning" not in audit_result.out


@pytest.mark.parametrize("damage", ["truncated", "not gzip", "bit flip", "sha256",
                                    "tampered content"])
def test_restore_refuses_a_bad_backup(filled: Home, tmp_path: Path, damage: str) -> None:
    info = backup(filled)
    packed = filled.backups_dir / info.file
    data = packed.read_bytes()
    bad = tmp_path / info.file
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "not gzip":
        bad.write_bytes(b"SQLite format 3\x00" + bytes(100))
    elif damage == "bit flip":
        bad.write_bytes(data[:40] + bytes([data[40] ^ 0xFF]) + data[41:])
    elif damage == "sha256":
        bad = packed  # the sidecar's sha256 no longer matches
        bad.write_bytes(gzip.compress(gzip.decompress(data) + b"\x00"))
    else:
        import sqlite3

        raw = unpack(packed, tmp_path / "raw.db")
        conn = sqlite3.connect(raw)
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET kind = 'forged' WHERE seq = 4")
        conn.commit()
        conn.close()
        bad.write_bytes(gzip.compress(raw.read_bytes()))
    before = filled.ledger_db.read_bytes()
    with pytest.raises(BackupError):
        restore(filled, bad)
    assert filled.ledger_db.read_bytes() == before
    assert not list(filled.data_dir.glob("*.before-restore-*"))


def sh(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, check=True, capture_output=True,
                          text=True)


def test_the_seeds_raw_sqlite3_commands(filled: Home, cli: Cli) -> None:
    root = filled.root
    info = backup(filled)
    with Ledger.open(root) as ledger:
        fill(ledger, 3)
    # Morning: the seed's daily backup, while the ledger is open for writing.
    with Ledger.open(root) as ledger:
        ledger.append(Entry(kind="smoke"))
        sh('mkdir -p ops/backups && sqlite3 ops/data/remembrancer.db '
           '".backup ops/backups/ledger-$(date +%Y%m%d).db" && '
           'gzip ops/backups/ledger-$(date +%Y%m%d).db', root)
    daily = next(p for p in filled.backups_dir.glob("ledger-????????.db.gz"))
    # Data recovery: integrity check of the backup, dump of audit_log.
    sh(f"gunzip -k {daily} && sqlite3 {str(daily)[:-3]} 'PRAGMA integrity_check;' "
       "| grep -qx ok", root)
    sh('sqlite3 ops/data/remembrancer.db ".dump audit_log" | '
       'sqlite3 ops/backups/audit_log_backup.db', root)
    dumped = cli("verify-audit", "--db", str(filled.backups_dir / "audit_log_backup.db"))
    assert dumped.code == 0 and "stored hashes absent" in dumped.out
    assert cli("verify-audit", "--db", str(daily)[:-3]).code == 0
    # Immediate rollback: gunzip the latest backup and .restore it over the live file.
    sh('gunzip ops/backups/ledger-latest.db.gz && '
       'sqlite3 ops/data/remembrancer.db ".restore ops/backups/ledger-latest.db"', root)
    result = cli("verify-audit")
    assert result.code == 0, result.out
    assert "rolled back" in result.out and f"tree size {info.tree_size}" in result.out
    with Ledger.open(root) as ledger:  # writers carry on from the restored state
        assert ledger.append(Entry(kind="restore")).leaf_index == info.tree_size
    result = cli("verify-audit")
    assert result.code == 0 and "rolled back" not in result.out
    assert list(filled.data_dir.glob("checkpoint.superseded-*"))  # the newer one is kept


def test_backup_cli_and_every_loop(filled: Home, cli: Cli) -> None:
    result = cli("backup", "--json")
    assert result.code == 0 and json.loads(result.out)["tree_size"] == 30
    aurora = Path(sys.executable).with_name("aurora")
    env = {**os.environ, "AURORA_HOME": str(filled.root)}
    proc = subprocess.Popen([str(aurora), "ledger", "backup", "--every", "1s"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        manifest = filled.backups_dir / "MANIFEST.jsonl"
        deadline = time.monotonic() + 30
        while len(manifest.read_text().splitlines()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(manifest.read_text().splitlines()) >= 3
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.count("(verified)") >= 2
    restored = cli("restore", str(filled.backups_dir / LATEST), "--json")
    assert restored.code == 0 and json.loads(restored.out)["moved_aside"]


def test_backup_of_a_new_home_starts_an_empty_ledger(home: Path, cli: Cli) -> None:
    # `backup --every` may start before the bridge has written anything.
    info = backup(Home(home))
    assert info.tree_size == 0 and info.checkpoint_size == 0
    assert cli("verify-audit").code == 0
    with Ledger.open(home, readonly=True) as reader:
        assert [row.kind for row in reader.scan()] == ["backup"]


WRITER = """
import sys
from aurora.ledger import Entry, Ledger
with Ledger.open() as ledger:
    print("open", flush=True)
    for line in sys.stdin:
        receipt = ledger.append(Entry(kind="note", data={"late": line.strip()}))
        print(receipt.leaf_index, flush=True)
"""


def test_restore_refuses_while_a_writer_holds_the_ledger_open(filled: Home, cli: Cli) -> None:
    """Issue 13 #5: a restore under a running writer moved the file aside and the writer
    went on acknowledging into it. Now the restore refuses and changes nothing."""
    info = backup(filled)
    writer = subprocess.Popen([sys.executable, "-c", WRITER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "open"
        before = sorted(p.name for p in filled.data_dir.iterdir())
        result = cli("restore", str(filled.backups_dir / info.file))
        assert result.code == 1, (result.out, result.err)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.err
        assert "open in a running ledger writer" in lines[0] and "stop" in lines[0]
        assert "nothing was restored" in lines[0]
        assert sorted(p.name for p in filled.data_dir.iterdir()) == before  # nothing moved
        # the writer's next acknowledgement lands in the live ledger
        writer.stdin.write("after-refused-restore\n")
        writer.stdin.flush()
        seq = int(writer.stdout.readline())
        writer.stdin.close()
        assert writer.wait(timeout=60) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    with Ledger.open(filled.root, readonly=True) as live:
        assert live.get(seq).data == {"late": "after-refused-restore"}
    # with the writer gone the same restore goes through
    assert cli("restore", str(filled.backups_dir / info.file)).code == 0
    with Ledger.open(filled.root, readonly=True) as live:
        assert live.tree_head().size == info.tree_size + 1  # + the restore entry


def test_restore_refuses_while_this_process_has_a_writer_open(filled: Home) -> None:
    info = backup(filled)
    with Ledger.open(filled.root) as ledger:
        with pytest.raises(AuroraError, match="open in a running ledger writer"):
            restore(filled, filled.backups_dir / info.file)
        receipt = ledger.append(Entry(kind="note", data={"still": "live"}))
    with Ledger.open(filled.root, readonly=True) as live:
        assert live.get(receipt.leaf_index).data == {"still": "live"}
