"""Helpers shared by every test folder (``from support import make_home``).

``tests`` is on pytest's ``pythonpath`` (pyproject.toml), so this module has one name
everywhere, unlike the per-folder ``conftest.py`` files.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("AURORA_TESTDATA", REPO / "tests" / "testdata"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_home(root: Path, **stack_overrides: object) -> Path:
    """A copy of the project's configuration in ``root`` with its own free ports and keys."""
    for part in ("config", "templates", "schemas"):
        shutil.copytree(REPO / part, root / part)
    shutil.copytree(REPO / "ops", root / "ops", ignore=shutil.ignore_patterns(
        "data", "run", "backups", "keys"))
    stack = json.loads((root / "config" / "stack.json").read_text())
    for name in ("bridge_port", "metrics_port", "providers_port", "prometheus_port",
                 "alertmanager_port", "incidents_port"):
        stack[name] = free_port()
    stack.update(stack_overrides)
    (root / "config" / "stack.json").write_text(json.dumps(stack, indent=2))
    from aurora.home import Home
    from aurora.provision import init_home

    init_home(Home(root))
    return root
