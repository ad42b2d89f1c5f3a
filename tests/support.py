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

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("AURORA_TESTDATA", REPO / "tests" / "testdata"))


# Under `make test` (the Makefile exports it) a missing tool fails the test: CI must not pass
# by skipping what it was meant to run. Elsewhere (a developer's `pytest tests/x`) it skips.
REQUIRE_TOOLS_ENV = "AURORA_REQUIRE_TOOLS"


def missing_tools(*tools: str) -> list[str]:
    """The tools not on PATH; ``"a|b"`` is satisfied by either name."""
    return [tool for tool in tools
            if not any(shutil.which(name) for name in tool.split("|"))]


def needs_tools(*tools: str) -> pytest.MarkDecorator:
    """Mark a test (or ``pytestmark`` a module) as needing ``tools``; the one rule that
    decides skip or fail is ``tools_check`` (run by tests/conftest.py before each test)."""
    return pytest.mark.needs_tools(*tools)


def tools_check(item: pytest.Item) -> None:
    """Skip, or under ``AURORA_REQUIRE_TOOLS=1`` fail, a test whose tools are missing."""
    tools = [t for mark in item.iter_markers("needs_tools") for t in mark.args]
    missing = missing_tools(*dict.fromkeys(tools))
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (make system-deps installs it)"
    if os.environ.get(REQUIRE_TOOLS_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_TOOLS_ENV}=1 makes a missing tool a failure",
                    pytrace=False)
    pytest.skip(reason)


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
