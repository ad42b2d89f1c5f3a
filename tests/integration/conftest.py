"""Fixtures of the live-stack tests: skip without Prometheus/Alertmanager, a GnuPG keyring."""

from __future__ import annotations

import shutil

import pytest

from slo.conftest import gnupghome  # noqa: F401  (a fixture: a temporary keyring with one key)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = [b for b in ("prometheus", "promtool", "gpg") if shutil.which(b) is None]
    if shutil.which("prometheus-alertmanager") is None and shutil.which("alertmanager") is None:
        missing.append("prometheus-alertmanager")
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"{', '.join(missing)} not installed (make system-deps)")
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(skip)
