"""Every command the README's "Operating it" table and docs/RUNBOOK.md's code blocks document
is run, as written, by tests/integration/test_operator_commands_live.py (one stack in the
default mode) or tests/canary/test_canary_live.py (the canary, in the replicated mode).

A documented command is covered when one of those modules passes a string literal to
``sh``/``start`` holding a command with the same words (``shlex``), where a placeholder
(``ID``, ``NAME``, ``TEXT``, ``FILE``, ``KEYID``, ``N``, ``<...>``, ``INC-…``) on the
documented side or a formatted value on the test's side stands for any one word, and
``[--option ...]`` is optional. In a table cell, a bare word after the cell's first command
is a subcommand of it (`` `aurora chaos outage ...`, `list` `` documents
``aurora chaos list``): covered by any run command that starts with it. Pure: reads the
files, runs nothing.
"""

from __future__ import annotations

import ast
import re
import shlex

from support import REPO

LIVE = (REPO / "tests" / "integration" / "test_operator_commands_live.py",
        REPO / "tests" / "canary" / "test_canary_live.py")
PROGRAMS = ("aurora", "make", "python3", "sqlite3", "curl", "gpg", "gunzip", "echo", "export",
            "nohup", "jq", "amtool")
PLACEHOLDER = re.compile(r"^(ID|NAME|TEXT|FILE|KEYID|N|INC-…|.*<[^>]+>.*)$")
ANY = "\0"  # a formatted value in the test's literal


def words(command: str) -> list[str]:
    command = re.sub(r"\s\[--[^\]]*\]", "", command.replace("\\|", "|"))
    found = shlex.split(command, comments=True)
    # `.venv/bin/aurora` is `aurora` (the venv's bin is on the test's PATH)
    return ["aurora" if i == 0 and w == ".venv/bin/aurora" else w for i, w in enumerate(found)]


def is_command(text: str) -> bool:
    first = text.split()[0]
    return first in PROGRAMS or first.startswith(("./", ".venv/"))


def readme_commands() -> list[tuple[str, bool]]:
    """(command, is a subcommand prefix) from the "Operating it" table."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("## Operating it"):]
    table = table[:table.index("\n\n", table.index("| task | command |"))]
    found: list[tuple[str, bool]] = []
    for row in table.splitlines()[2:]:
        cell = row.replace("\\|", "\0").rsplit("|", 2)[1]  # split on unescaped pipes only
        spans = re.findall(r"`([^`]+)`", cell)
        group: list[str] = []
        for span in (s.replace("\0", "\\|") for s in spans):
            if is_command(span):
                found.append((span, False))
                if not group:
                    head = words(span)
                    group = head[:2] if head[0] == "aurora" else head[:1]
            else:
                found.append((" ".join([*group, span]), True))
    return found


def runbook_commands() -> list[tuple[str, bool]]:
    """Each command line of the bash blocks of docs/RUNBOOK.md (continuations joined)."""
    text = (REPO / "docs" / "RUNBOOK.md").read_text()
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if words(line):
                found.append((line, False))
    return found


def commands_run() -> list[list[str]]:
    """The commands the live module runs: literal arguments of ``sh``/``start``."""
    tested = []
    nodes = [n for module in LIVE for n in ast.walk(ast.parse(module.read_text()))]
    for node in nodes:
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("sh", "start") and node.args):
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            text = arg.value
        elif isinstance(arg, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else ANY for v in arg.values)
        else:
            continue
        for line in text.replace("\\\n", " ").splitlines():
            if line.strip():
                tested.append(words(line))
    return tested


def same(documented: str, ran: str) -> bool:
    return documented == ran or ANY in ran or bool(PLACEHOLDER.match(documented))


def covered(command: str, prefix: bool, tested: list[list[str]]) -> bool:
    want = words(command)
    for ran in tested:
        if (len(ran) == len(want) or prefix and len(ran) >= len(want)) and all(
                same(w, r) for w, r in zip(want, ran, strict=False)):
            return True
    return False


def test_the_documented_commands_are_found() -> None:
    readme, runbook = readme_commands(), runbook_commands()
    assert ("aurora rollback", False) in readme and ("aurora chaos list", True) in readme
    assert ("aurora rollback --yes        # stop the stack, restore it, keep ledger-latest.db"
            ".gz on it", False) in runbook
    assert len(readme) > 30 and len(runbook) > 20


def test_every_documented_command_is_run_by_a_test() -> None:
    tested = commands_run()
    missing = [command for command, prefix in readme_commands() + runbook_commands()
               if not covered(command, prefix, tested)]
    assert missing == [], "documented but never run as written by " + " or ".join(
        m.name for m in LIVE)


def test_a_command_documented_but_not_run_is_reported() -> None:
    tested = commands_run()
    assert covered("aurora rollback --dry-run", False, tested)
    assert not covered("aurora rollback --everything", False, tested)
    assert not covered("aurora chaos unknown-kind", True, tested)
