"""The one rule for tests that need a system tool (tests/support.py): skipped when the tool is
missing, failed instead under ``make test`` (AURORA_REQUIRE_TOOLS=1)."""

from __future__ import annotations

import pytest

from support import REQUIRE_TOOLS_ENV, missing_tools

pytest_plugins = ["pytester"]

NEEDS_NOTHING_THERE = '''
import pytest

@pytest.mark.needs_tools("aurora-no-such-tool", "sh")
def test_needs_a_missing_tool():
    pass
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest("from support import tools_check\n\n"
                          "def pytest_runtest_setup(item):\n    tools_check(item)\n")
    pytester.makeini("[pytest]\nmarkers =\n    needs_tools: needs programs\n")
    pytester.makepyfile(NEEDS_NOTHING_THERE)
    return pytester


def test_missing_tools_names_only_the_absent_ones() -> None:
    assert missing_tools("sh", "aurora-no-such-tool", "aurora-no-such-tool|sh") == [
        "aurora-no-such-tool"]


def test_a_missing_tool_skips_outside_make_test(suite: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_TOOLS_ENV, raising=False)
    result = suite.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*aurora-no-such-tool not installed*"])


def test_a_missing_tool_fails_under_make_test(suite: pytest.Pytester,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_TOOLS_ENV, "1")
    result = suite.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*aurora-no-such-tool not installed*AURORA_REQUIRE_TOOLS=1*"])
