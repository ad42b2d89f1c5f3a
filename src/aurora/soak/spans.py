"""Time spans: a soak's real time minus its drill windows, and the timings a soak runs with.
Pure.

``Timing`` turns the seed's durations into the soak's: unchanged on the wall clock, scaled
by ``day_seconds / 86400`` in a compressed rehearsal, with floors where a real component
cannot go faster (Prometheus needs a few scrapes in a range; the SLO reporter's shortest
window is one minute).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aurora.slo.queries import prom_duration
from aurora.soak.schedule import SoakPlan

Span = tuple[datetime, datetime]

REPORT_MIN_S = 60.0  # aurora.slo.report.Window refuses shorter windows
SCRAPE_S = 1.0  # the rehearsal's scrape and evaluation interval
RULE_FLOOR_S = 4 * SCRAPE_S  # aurora.slo.promconfig floors rule ranges at 4 intervals
FILL_WINDOW_FLOOR_S = 5.0  # the bridge's fill-rate window, at least (a dozen orders)


def subtract(span: Span, holes: Sequence[Span], min_length: float) -> list[Span]:
    """``span`` without ``holes``, as ordered pieces of at least ``min_length`` seconds."""
    pieces = [span]
    for hole_start, hole_end in sorted(holes):
        out = []
        for start, end in pieces:
            if hole_end <= start or hole_start >= end:
                out.append((start, end))
                continue
            if hole_start > start:
                out.append((start, hole_start))
            if hole_end < end:
                out.append((hole_end, end))
        pieces = out
    return [(s, e) for s, e in pieces if (e - s).total_seconds() >= min_length]


def total_seconds(spans: Sequence[Span]) -> float:
    return sum((e - s).total_seconds() for s, e in spans)


@dataclass(frozen=True)
class Timing:
    """How long things take on this soak's clock, in real seconds."""

    scale: float  # real seconds per soak second (1 on the wall clock)
    drill_timeout: float | None = None  # an operator's bound on each wait of an alert drill

    @classmethod
    def of(cls, plan: SoakPlan) -> Timing:
        return cls(1.0 / plan.speed)

    @property
    def compressed(self) -> bool:
        return self.scale < 1.0

    def real(self, soak_seconds: float, floor: float = 0.0) -> float:
        return min(soak_seconds, max(soak_seconds * self.scale, floor))

    def report_window(self, soak_seconds: float) -> str:
        """A reporter window for ``soak_seconds`` of soak clock (at least the reporter's 1m)."""
        return prom_duration(self.real(soak_seconds, REPORT_MIN_S))

    @property
    def rate_window(self) -> str:
        """The seed's ``[5m]`` on this clock."""
        return prom_duration(self.real(300, RULE_FLOOR_S))

    @property
    def settle_s(self) -> float:
        """After a fault clears, how long the SLIs still show it: the bridge's fill-rate
        window (5m on this clock) and two scrapes."""
        return self.real(300, FILL_WINDOW_FLOOR_S) + 2 * SCRAPE_S

    @property
    def incident_settle_s(self) -> float:
        """After a fault clears, how long alerts it caused may still open incidents: the
        longest burn-rate window (1d) plus evaluation and delivery. On the wall clock a
        drill-length fault cannot trip the 1d/2h alert, so the 5m windows decide."""
        return self.real(86400, 0) + 10.0 if self.compressed else self.settle_s

    @property
    def drill_timeout_s(self) -> float:
        """Bound on each wait of an alert drill: the alert's `for` (15m) on this clock, the
        fill window, evaluation and Alertmanager's group wait, with room to spare."""
        if self.drill_timeout is not None:
            return self.drill_timeout
        return self.real(15 * 60, RULE_FLOOR_S) * 2 + (60.0 if self.compressed else 600.0)

    @property
    def min_segment_s(self) -> float:
        """Shortest stretch of the soak worth judging SLOs over (a few dozen orders)."""
        return self.real(1800, 6.0)


def shift(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)
