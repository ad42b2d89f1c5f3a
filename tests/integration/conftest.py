"""Fixtures of the live-stack tests: they need Prometheus, Alertmanager and GnuPG (the shared
rule of tests/support.py: skipped without them, failed under ``make test``)."""

from __future__ import annotations

import pytest

from slo.conftest import gnupghome  # noqa: F401  (a fixture: a temporary keyring with one key)
from support import needs_tools

LIVE_TOOLS = ("prometheus", "promtool", "gpg", "prometheus-alertmanager|alertmanager")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(needs_tools(*LIVE_TOOLS))
