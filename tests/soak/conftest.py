"""Fixtures for the soak tests: one real 7-day rehearsal shared by a module, throwaway homes
and GnuPG keys. Every process a rehearsal starts is stopped by its PID file."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from aurora.gpg import make_throwaway_key, temporary_keyring
from aurora.home import Home
from aurora.soak.rehearsal import POSTGRES_DAY_SECONDS, RehearsalOptions, RehearsalResult, rehearse
from aurora.soak.runner import QuietHooks
from aurora.stack import down
from support import needs_tools, session_cluster, suite_backend

REPO = Path(__file__).resolve().parents[2]
# a rehearsal runs the real thing; `make test` installs these (make system-deps)
NEEDS = [needs_tools("prometheus", "promtool", "prometheus-alertmanager|alertmanager", "gpg")]
# one soak day in this many real seconds: 7 days in about two minutes; in PostgreSQL mode
# the product's own default for it (a day's 96 backups cost several times more there)
DAY_SECONDS = 12.0 if suite_backend() == "sqlite" else POSTGRES_DAY_SECONDS
# What the first test of a module using the shared rehearsal may wait: in PostgreSQL mode
# each of a rehearsal's ~600 verified backups is a pg_dump loaded into a scratch database
# (about 1 s on this machine, against milliseconds for a SQLite copy), so its days run long.
REHEARSAL_TIMEOUT = 600 if suite_backend() == "sqlite" else 1800
# The fill-rate drill fires the seed's first alert; the RTT drill runs in the default
# rehearsal only: its p95 warning took 27 s to open an incident here (of a 68-s bound) at
# 12-s days, half a minute more of every rehearsal for a path that
# tests/integration/test_alert_path_live.py::test_alert_drill already drives end to end
# (TreatyRttP95High to an incident, in both storage modes).
TEST_DRILLS = ("fill", "restore", "rollback")


def _root_conftest() -> ModuleType:
    # tests/conftest.py under a name of its own (other folders' conftest.py are "conftest" too)
    spec = importlib.util.spec_from_file_location("aurora_tests_root_conftest_soak",
                                                  REPO / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_home = _root_conftest().make_home


@dataclass
class Rehearsed:
    home: Home
    result: RehearsalResult
    lines: list[str]


@pytest.fixture(scope="session")
def signing_key() -> Iterator[tuple[Path, str]]:
    """A temporary keyring with one ed25519 key: (GNUPGHOME, fingerprint)."""
    with temporary_keyring() as keyring:
        yield keyring, make_throwaway_key(keyring, "Aurora soak test <soak-test@aurora.invalid>")


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsed]:
    """A full 7-day rehearsal (real stack, Prometheus, Alertmanager, GnuPG), run once."""
    root = make_home(tmp_path_factory.mktemp("rehearsal") / "home")
    home = Home(root)
    saved = os.environ.get("AURORA_HOME")
    os.environ["AURORA_HOME"] = str(root)
    lines: list[str] = []
    try:
        result = rehearse(home, RehearsalOptions(days=7, day_seconds=DAY_SECONDS,
                                                 drills=TEST_DRILLS), QuietHooks(lines.append))
        yield Rehearsed(home, result, lines)
    finally:
        down(home)  # normally done by the rehearsal already; a no-op then
        if saved is None:
            os.environ.pop("AURORA_HOME", None)
        else:
            os.environ["AURORA_HOME"] = saved


def copy_home(source: Home, target: Path) -> Home:
    """A copy of a finished rehearsal's home to tamper with (Prometheus' TSDB left out)."""
    data = source.data_dir.resolve()

    def skip(folder: str, names: list[str]) -> set[str]:
        return {"prometheus", "alertmanager"} & set(names) if Path(folder).resolve() == data \
            else set()

    shutil.copytree(source.root, target, symlinks=True, ignore=skip)
    stack_file = target / "config" / "stack.json"
    stack = json.loads(stack_file.read_text())
    if stack.get("database_url"):  # PostgreSQL mode: the copy gets its own database
        stack["database_url"] = session_cluster().copy(stack["database_url"])
        stack_file.write_text(json.dumps(stack, indent=2))
    return Home(target)
