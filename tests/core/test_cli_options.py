"""Every numeric, duration and time option of the CLI is range-checked (issue 13, defect 8).

``aurora ledger show --index 99999999999999999999`` and ``aurora incident report --since
99999999d`` ended in ``error: internal: OverflowError`` and exit 70. The class: a number or
duration typed by an operator reached arithmetic unchecked. The walk below fails on any
option, now or later, that takes an int, a float, a duration or a time without one of
``aurora.cliopts``'s parsers; the runs show what the operator sees instead.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import typer

from aurora.cli import app

# Options whose text is a duration or a time (parsed by the command, so typed ``str``).
TIME_LIKE = {"--since", "--until", "--for", "--at", "--duration", "--every", "--window",
             "--start-date", "--ttl"}


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))
    if not getattr(command, "commands", None):
        yield " ".join(path), command


def _base(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        [inner] = [a for a in get_args(annotation) if a is not type(None)]
        return inner
    return annotation


def _unchecked() -> list[str]:
    found = []
    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is None:
                continue
            parser = descriptor.parameter_info.parser
            numeric = _base(descriptor.annotation) in (int, float)
            timeish = bool(TIME_LIKE & set(getattr(param, "opts", ())))
            if (numeric or timeish) and not getattr(parser, "range_checked", False):
                found.append(f"aurora {path} {'/'.join(param.opts)}")
    return found


def test_every_numeric_duration_and_time_option_is_range_checked() -> None:
    assert _unchecked() == []


def test_the_walk_sees_the_options_it_checks() -> None:
    """Guard against a walk that checks nothing: it must see the options of the issue."""
    seen = {f"aurora {path} {'/'.join(p.opts)}"
            for path, command in _commands(typer.main.get_command(app))
            for p in command.params if getattr(p, "opts", None)}
    assert {"aurora ledger show --index", "aurora incident report --since",
            "aurora chaos outage --for", "aurora soak rehearse --day-seconds"} <= seen


AURORA = [sys.executable, "-m", "aurora"]


@pytest.mark.parametrize("argv", [
    ["ledger", "show", "--index", "99999999999999999999"],
    ["ledger", "prove", "--index", "-1"],
    ["incident", "report", "--since", "99999999d"],
    ["incident", "report", "--since", "9999-12-31T23:59:59-23:59"],
    ["soak", "rehearse", "--day-seconds", "nan"],
    ["soak", "start", "--start-date", "9999-12-31"],
    ["chaos", "outage", "-p", "akash", "--for", "1" + "0" * 400 + "d"],
    ["traffic", "--rate", "inf"],
], ids=lambda argv: " ".join(argv)[:48])
def test_out_of_range_is_a_one_line_usage_error(home: Path, argv: list[str]) -> None:
    from aurora.home import Home
    from aurora.ledger import Entry, Ledger

    with Ledger.open(Home(home)) as ledger:  # so that the command gets as far as the ledger
        ledger.append(Entry(kind="note", data={"text": "x"}))
    done = subprocess.run([*AURORA, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "internal" not in done.stderr and "Traceback" not in done.stderr
