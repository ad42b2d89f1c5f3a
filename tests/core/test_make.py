"""`make test` lints before it tests, so CI (make test on a fresh machine) keeps lint clean."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from support import REPO


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_runs_lint_before_pytest() -> None:
    plan = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True).stdout.splitlines()
    ruff = next(i for i, line in enumerate(plan) if "ruff check src tests benchmarks scripts"
                in line)
    mypy = next(i for i, line in enumerate(plan) if line.strip().endswith("/mypy"))
    pytest_run = next(i for i, line in enumerate(plan) if "-m pytest" in line)
    assert ruff < pytest_run and mypy < pytest_run
