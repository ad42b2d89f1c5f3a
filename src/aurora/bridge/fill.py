"""Fill rate over a sliding window, and the distribution of its sampled values. Pure.

Fill rate = filled / (filled + dropped) over the last ``window`` seconds, where
*dropped* means admitted by policy but filled by no provider. Policy denials
and malformed input are not fills the gateway missed, so they do not count.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

# Dense where the SLOs and the alert sit (0.75, 0.80, 0.85).
FILL_BUCKETS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 1.0)


@dataclass
class FillWindow:
    """Counts per whole second, kept for ``window`` seconds."""

    window: float
    _seconds: deque[list[int]] = field(default_factory=deque)  # [second, filled, dropped]

    def record(self, filled: bool, now: float) -> None:
        second = int(now)
        if not self._seconds or self._seconds[-1][0] != second:
            self._seconds.append([second, 0, 0])
        self._seconds[-1][1 if filled else 2] += 1

    def counts(self, now: float) -> tuple[int, int]:
        horizon = now - self.window
        while self._seconds and self._seconds[0][0] + 1 <= horizon:
            self._seconds.popleft()
        filled = sum(s[1] for s in self._seconds)
        dropped = sum(s[2] for s in self._seconds)
        return filled, dropped

    def rate(self, now: float) -> float | None:
        """None when nothing was admitted in the window: there is no rate to report."""
        filled, dropped = self.counts(now)
        total = filled + dropped
        return filled / total if total else None


@dataclass
class Distribution:
    """Cumulative bucket counts of observed values, like a Prometheus histogram."""

    bounds: Sequence[float] = FILL_BUCKETS
    _counts: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        self._counts = [0] * (len(self.bounds) + 1)  # the last is +Inf

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs, +Inf last, as exposition wants them."""
        out, running = [], 0
        for bound, n in zip([*map(str, self.bounds), "+Inf"], self._counts, strict=True):
            running += n
            out.append((bound, running))
        return out
