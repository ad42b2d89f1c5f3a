"""Durations as operators write them: ``90s``, ``15m``, ``72h``, ``7d``, ``1h30m``, ISO ``P30D``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SHORT = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_ISO = re.compile(
    r"^P(?:([0-9]+)W)?(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+(?:\.[0-9]+)?)S)?)?$"
)


# Nothing Aurora does spans a century; beyond it date arithmetic overflows (year 9999).
MAX_DURATION_SECONDS = 100 * 365 * 86400


def parse_duration(text: str) -> float:
    """Seconds in ``text``, at most ``MAX_DURATION_SECONDS``; ValueError otherwise."""
    seconds = _parse(text)
    if not seconds <= MAX_DURATION_SECONDS:  # also catches inf from a 400-digit number
        raise ValueError(f"{text!r} is too long (at most "
                         f"{MAX_DURATION_SECONDS // 86400 // 365} years)")
    return seconds


def _parse(text: str) -> float:
    raw = text.strip()
    iso = _ISO.match(raw)
    if iso and raw not in ("P", "PT") and not raw.endswith("T"):
        weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
        return weeks * 604800 + days * 86400 + hours * 3600 + minutes * 60 + seconds
    pos, total = 0, 0.0
    for match in _SHORT.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(raw) or not raw:
        raise ValueError(f"{text!r} is not a duration (examples: 90s, 15m, 72h, 7d, P30D)")
    return total


def format_duration(seconds: float) -> str:
    """A short form that ``parse_duration`` reads back, e.g. ``1h30m``, ``45s``."""
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000)}ms"
    left = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


def parse_since(text: str, now: datetime) -> datetime:
    """``7d``/``24h``/``P7D`` back from ``now``, or an RFC 3339 time; ValueError otherwise."""
    from aurora.wire import parse_rfc3339  # pydantic: not for `aurora --help`

    try:
        return parse_rfc3339(text)
    except ValueError:
        pass
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (7d, 24h) nor an RFC 3339 time "
                         "(2026-11-27T00:00:00Z)") from None
