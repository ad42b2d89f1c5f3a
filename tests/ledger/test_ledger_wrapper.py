"""./ops/bin/remembrancer: the seed's command, a thin wrapper around `aurora ledger`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ledger_support import both, fill

from aurora.ledger import Ledger

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "ops" / "bin" / "remembrancer"


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@both
def test_verify_audit_from_the_repo_root_and_through_a_symlink(home: Path,
                                                               tmp_path: Path) -> None:
    with Ledger.open(home) as ledger:
        fill(ledger, 5)
    env = {"PATH": "/usr/bin:/bin", "AURORA_HOME": str(home)}  # nothing but the venv
    if (url := os.environ.get("AURORA_DATABASE_URL")) is not None:
        env["AURORA_DATABASE_URL"] = url
    result = run(["./ops/bin/remembrancer", "verify-audit"], REPO, env)
    assert result.returncode == 0, result.stderr
    assert "tree size 5" in result.stdout
    link = tmp_path / "bin" / "remembrancer"
    link.parent.mkdir()
    link.symlink_to(SCRIPT)
    result = run([str(link), "root", "--json"], tmp_path, env)
    assert result.returncode == 0 and '"tree_size": 5' in result.stdout
    result = run([str(link), "prove", "--index", "9"], tmp_path, env)
    assert result.returncode == 2 and result.stderr.startswith("error: ")


def test_aurora_home_defaults_to_the_checkout(tmp_path: Path) -> None:
    fake = tmp_path / "checkout"
    (fake / "ops" / "bin").mkdir(parents=True)
    shutil.copy(SCRIPT, fake / "ops" / "bin" / "remembrancer")
    (fake / ".venv" / "bin").mkdir(parents=True)
    aurora = fake / ".venv" / "bin" / "aurora"
    aurora.write_text('#!/bin/sh\necho "AURORA_HOME=$AURORA_HOME args=$*"\n')
    aurora.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin"}
    result = run(["./ops/bin/remembrancer", "verify-audit"], fake, env)
    assert result.stdout.strip() == f"AURORA_HOME={fake} args=ledger verify-audit"
    result = run([str(fake / "ops" / "bin" / "remembrancer"), "root"], tmp_path,
                 {**env, "AURORA_HOME": "/elsewhere"})
    assert result.stdout.strip() == "AURORA_HOME=/elsewhere args=ledger root"


def test_without_the_venv_it_says_what_to_run(tmp_path: Path) -> None:
    fake = tmp_path / "checkout"
    (fake / "ops" / "bin").mkdir(parents=True)
    shutil.copy(SCRIPT, fake / "ops" / "bin" / "remembrancer")
    result = run(["./ops/bin/remembrancer", "verify-audit"], fake, {"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert result.stderr == "remembrancer: run `make up` (or `make install`) first\n"
    assert os.access(SCRIPT, os.X_OK)
