"""Range-checked parsers for the CLI's numeric, duration and time options.

Every number, duration or time an operator types is checked here, when click parses the
command line (``typer.Option(..., parser=bounded())``): out of range, NaN or infinite is a
usage error (exit 2), never an ``OverflowError`` deep inside (``--index
99999999999999999999``, ``--since 99999999d``). ``tests/core/test_cli_options.py`` walks
every command and fails on a numeric or time option without one of these parsers, so a
new option cannot skip the check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from aurora.durations import MAX_DURATION_SECONDS, parse_duration

# SQLite's INTEGER (and every index, size and count the CLI passes on) is 64-bit signed.
MAX_INT = 2**63 - 1

T = TypeVar("T")
Parser = Callable[[Any], T]


def _checked(parse: Callable[[str], T], name: str) -> Parser[T]:
    """A typer ``parser`` (its ValueError is typer's usage error), marked as range-checked."""
    def parser(value: Any) -> T:
        return parse(str(value))

    parser.__name__ = name
    parser.range_checked = True  # type: ignore[attr-defined]
    return parser


def bounded(lo: int = 0, hi: int = MAX_INT) -> Parser[int]:
    """An integer in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        if not lo <= number <= hi:
            raise ValueError(f"{text} is out of range ({lo} to {hi})")
        return number

    return _checked(parse, "integer")


def finite(lo: float, hi: float) -> Parser[float]:
    """A finite float in [lo, hi] (NaN and infinities refused)."""
    def parse(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(number) or not lo <= number <= hi:
            raise ValueError(f"{text} is out of range ({lo:g} to {hi:g})")
        return number

    return _checked(parse, "number")


def _duration(text: str) -> str:
    parse_duration(text)  # range-checked: at most MAX_DURATION_SECONDS
    return text


def _time(text: str) -> str:
    from aurora.wire import parse_rfc3339  # pydantic and crypto: not for `aurora --help`

    try:
        parse_rfc3339(text)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    return text


def _since(text: str) -> str:
    try:
        return _duration(text)
    except ValueError:
        pass
    try:
        return _time(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is neither a duration (7d, 24h; at most "
                         f"{MAX_DURATION_SECONDS // 86400 // 365} years) nor an RFC 3339 time "
                         f"({exc})") from None


def _day(text: str) -> str:
    from aurora.wire import EARLIEST_TIME, LATEST_TIME

    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD ({exc})") from None
    if not EARLIEST_TIME.date() <= day < LATEST_TIME.date():
        raise ValueError(f"{text!r} is out of range ({EARLIEST_TIME.date()} to "
                         f"{LATEST_TIME.date()})")
    return text


# Durations, times and days stay text: the command parses them as before, now known good.
DURATION = _checked(_duration, "duration")
TIME = _checked(_time, "rfc3339")
SINCE = _checked(_since, "duration-or-time")
DAY = _checked(_day, "day")
PORT = bounded(1, 65535)
RATE = finite(0, 100_000)  # orders per second
REPLICAS = bounded(1, 64)  # bridge processes on one machine
