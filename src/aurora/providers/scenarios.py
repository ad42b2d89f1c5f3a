"""Fault events on the simulated provider network, and the book that holds them.

Pure: no I/O and no clock. Times are POSIX seconds (floats) passed in by the
caller; an event is active on the half-open interval ``[starts_at, ends_at)``.

Six kinds of fault:

=================  =========================================  ==========
type               effect while active                        parameter
=================  =========================================  ==========
outage             provider inactive; orders hang or get 503   ``mode``
latency_spike      median latency × factor                     ``factor``
price_spike        USD price × factor                          ``factor``
capacity_surge     capacity pool maximum and refill × factor   ``factor``
reputation_drop    reputation falls to ``value`` (0–100)       ``value``
bad_ack            ACKs are signed by the wrong key            —
=================  =========================================  ==========

Events come from an operator (``POST /chaos``, ``aurora chaos ...``) or from a
named scenario of ``config/scenarios.json`` scheduled relative to a start time.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aurora.config import Scenario
from aurora.durations import parse_duration
from aurora.errors import AuroraError
from aurora.wire import rfc3339_at

EVENT_TYPES: Final = (
    "outage", "latency_spike", "price_spike", "capacity_surge", "reputation_drop", "bad_ack",
)
FACTOR_TYPES: Final = frozenset({"latency_spike", "price_spike", "capacity_surge"})
OUTAGE_MODES: Final = ("timeout", "refuse", "silent")
DEFAULT_OUTAGE_MODE: Final = "timeout"
# Bounds keep every event representable as an RFC 3339 time and every effective
# value finite, whatever a caller sends.
MAX_EVENT_SECONDS: Final = 30 * 86400.0
MAX_FACTOR: Final = 1000.0
_REQUEST_FIELDS: Final = frozenset({"type", "provider", "for", "at", "factor", "value", "mode"})


class EventError(AuroraError, ValueError):
    """A fault event is malformed; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One fault on one provider over ``[starts_at, ends_at)`` (POSIX seconds)."""

    id: str
    type: str
    provider: str
    starts_at: float
    ends_at: float
    factor: float | None = None
    value: float | None = None
    mode: str | None = None
    source: str = "chaos"

    def active_at(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def expired_at(self, now: float) -> bool:
        return now >= self.ends_at

    def to_json(self, now: float) -> dict[str, Any]:
        """The event as the chaos API and the market feed show it."""
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "provider": self.provider,
            "starts_at": rfc3339_at(self.starts_at),
            "ends_at": rfc3339_at(self.ends_at),
            "status": "active" if self.active_at(now) else
                      "expired" if self.expired_at(now) else "scheduled",
            "source": self.source,
        }
        # Only the parameter this type uses: a null "factor" on an outage would
        # suggest the outage has one.
        if self.factor is not None:
            out["factor"] = self.factor
        if self.value is not None:
            out["value"] = self.value
        if self.mode is not None:
            out["mode"] = self.mode
        return out


def _number(name: str, raw: object) -> float:
    # bool is an int in Python but never a sensible factor.
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise EventError(f"{name}: must be a number")
    value = float(raw)
    if not math.isfinite(value):
        raise EventError(f"{name}: must be finite")
    return value


def _seconds(name: str, raw: object) -> float:
    """A duration given as text (``"5m"``) or as a number of seconds."""
    if isinstance(raw, str):
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            raise EventError(f"{name}: {exc}") from None
    else:
        seconds = _number(name, raw)
    if not 0 <= seconds <= MAX_EVENT_SECONDS:
        raise EventError(f"{name}: must be between 0s and {MAX_EVENT_SECONDS / 86400:.0f}d")
    return seconds


def make_event(
    *,
    event_id: str,
    type: str,
    provider: str,
    start: float,
    duration: float,
    factor: float | None = None,
    value: float | None = None,
    mode: str | None = None,
    source: str = "chaos",
) -> FaultEvent:
    """A validated event: each type takes exactly its own parameter."""
    if type not in EVENT_TYPES:
        raise EventError(f"type: must be one of {', '.join(EVENT_TYPES)}")
    if not 0 < duration <= MAX_EVENT_SECONDS:
        raise EventError("for: must be longer than 0s and at most "
                         f"{MAX_EVENT_SECONDS / 86400:.0f}d")
    if type in FACTOR_TYPES:
        if factor is None:
            raise EventError(f"factor: {type} needs a factor")
        if not 0 < factor <= MAX_FACTOR:
            raise EventError(f"factor: must be > 0 and <= {MAX_FACTOR:g}")
    elif factor is not None:
        raise EventError(f"factor: {type} takes no factor")
    if type == "reputation_drop":
        if value is None:
            raise EventError("value: reputation_drop needs the reputation to drop to")
        if not 0 <= value <= 100:
            raise EventError("value: a reputation is between 0 and 100")
    elif value is not None:
        raise EventError(f"value: {type} takes no value")
    if type == "outage":
        mode = DEFAULT_OUTAGE_MODE if mode is None else mode
        if mode not in OUTAGE_MODES:
            raise EventError(f"mode: must be one of {', '.join(OUTAGE_MODES)}")
    elif mode is not None:
        raise EventError(f"mode: {type} takes no mode")
    return FaultEvent(id=event_id, type=type, provider=provider, starts_at=start,
                      ends_at=start + duration, factor=factor, value=value, mode=mode,
                      source=source)


def event_from_request(
    document: object, *, event_id: str, now: float, providers: Collection[str]
) -> FaultEvent:
    """Validate a ``POST /chaos`` body: ``{"type", "provider", "for", "at"?, "factor"?,
    "value"?, "mode"?}``; ``at`` delays the start (default: now)."""
    if not isinstance(document, dict):
        raise EventError("body: must be a JSON object")
    unknown = sorted(set(document) - _REQUEST_FIELDS)
    if unknown:
        raise EventError(f"{unknown[0]}: unknown field")
    for name in ("type", "provider", "for"):
        if name not in document:
            raise EventError(f"{name}: required")
    type_, provider, mode = document["type"], document["provider"], document.get("mode")
    if not isinstance(type_, str):
        raise EventError("type: must be a string")
    if not isinstance(provider, str) or provider not in providers:
        raise EventError(f"provider: must be one of {', '.join(providers)}")
    if mode is not None and not isinstance(mode, str):
        raise EventError("mode: must be a string")
    factor = document.get("factor")
    value = document.get("value")
    return make_event(
        event_id=event_id, type=type_, provider=provider,
        start=now + _seconds("at", document.get("at", 0)),
        duration=_seconds("for", document["for"]),
        factor=None if factor is None else _number("factor", factor),
        value=None if value is None else _number("value", value),
        mode=mode,
    )


def schedule_scenario(
    name: str, scenario: Scenario, *, start: float, providers: Collection[str],
    ids: Iterator[str],
) -> list[FaultEvent]:
    """The scenario's events, each starting ``at`` after ``start``; EventError if one is bad."""
    events = []
    for index, spec in enumerate(scenario.events):
        where = f"scenario {name!r} event {index}"
        if spec.provider not in providers:
            raise EventError(f"{where}: unknown provider {spec.provider!r}")
        try:
            events.append(make_event(
                event_id=next(ids), type=spec.type, provider=spec.provider,
                start=start + parse_duration(spec.at), duration=parse_duration(spec.duration),
                factor=spec.factor, value=spec.value, source=f"scenario:{name}",
            ))
        except EventError as exc:
            raise EventError(f"{where}: {exc}") from None
    return events


def check_scenarios(scenarios: Mapping[str, Scenario], providers: Collection[str]) -> None:
    """Raise EventError for the first scenario event that could never be scheduled."""
    for name, scenario in scenarios.items():
        schedule_scenario(name, scenario, start=0.0, providers=providers,
                          ids=(f"check-{n}" for n in range(len(scenario.events))))


class EventBook:
    """Every event not yet forgotten, by provider, with ids ``ev-1``, ``ev-2``, ..."""

    def __init__(self) -> None:
        self._by_provider: dict[str, list[FaultEvent]] = {}
        self._issued = 0

    def next_id(self) -> str:
        self._issued += 1
        return f"ev-{self._issued}"

    def new_ids(self) -> Iterator[str]:
        while True:
            yield self.next_id()

    def add(self, events: Iterable[FaultEvent]) -> None:
        for event in events:
            self._by_provider.setdefault(event.provider, []).append(event)

    def of(self, provider: str) -> list[FaultEvent]:
        """The provider's events, past ones included until ``forget_expired``."""
        return self._by_provider.get(provider, [])

    def all(self) -> list[FaultEvent]:
        return sorted((e for evs in self._by_provider.values() for e in evs),
                      key=lambda e: (e.starts_at, e.id))

    def find(self, event_id: str) -> FaultEvent | None:
        return next((e for evs in self._by_provider.values() for e in evs if e.id == event_id),
                    None)

    def remove(self, event_id: str) -> FaultEvent | None:
        event = self.find(event_id)
        if event is not None:
            self._by_provider[event.provider].remove(event)
        return event

    def clear(self) -> int:
        count = sum(len(evs) for evs in self._by_provider.values())
        self._by_provider.clear()
        return count

    def forget_expired(self, now: float) -> None:
        for provider, events in self._by_provider.items():
            if any(e.expired_at(now) for e in events):
                self._by_provider[provider] = [e for e in events if not e.expired_at(now)]
