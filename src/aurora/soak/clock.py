"""The soak clock: the wall clock, or a compressed one that waits for overrunning tasks.

``CompressedClock`` runs ``speed`` soak seconds per real second from ``sim_start``. The
orchestrator sets a *barrier* — the soak time of the next task that has not started yet —
and the clock never reads past it: when a task overruns into the next task's slot, soak
time stops at that slot until the task is done and the next one starts. So no slot ever
passes unrun, and the time the clock stood still is counted (``stalled``) and reported
instead of hidden. Pure apart from the injected ``monotonic`` function.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class SoakClock(Protocol):
    speed: float  # soak seconds per real second

    def now(self) -> datetime: ...

    def hold(self, barrier: datetime | None) -> None:
        """The clock may not read past ``barrier`` (None: no limit) until moved on."""

    def real_seconds_until(self, moment: datetime) -> float: ...

    @property
    def stalled(self) -> float:
        """Real seconds the soak clock stood still so far."""


class WallClock:
    """Soak time is UTC wall time; a late task simply starts late (and says so)."""

    speed = 1.0

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now()

    def hold(self, barrier: datetime | None) -> None:
        pass  # the wall clock waits for nobody; lateness is recorded per task

    def real_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self._now()).total_seconds())

    @property
    def stalled(self) -> float:
        return 0.0


class CompressedClock:
    """One soak day in ``day_seconds`` real seconds, starting at ``sim_start``."""

    def __init__(self, sim_start: datetime, day_seconds: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if day_seconds <= 0:
            raise ValueError("day_seconds must be positive")
        self.speed = 86400.0 / day_seconds
        self._mono = monotonic
        self._r0 = monotonic()
        self._s0 = sim_start
        self._stalled = 0.0
        self._barrier: datetime | None = None

    def _linear(self, real: float) -> datetime:
        return self._s0 + timedelta(seconds=(real - self._r0 - self._stalled) * self.speed)

    def _settle(self) -> float:
        """Count the time spent at the barrier as stalled; return the real time used."""
        real = self._mono()
        if self._barrier is not None:
            over = (self._linear(real) - self._barrier).total_seconds()
            if over > 0:
                self._stalled += over / self.speed
        return real

    def now(self) -> datetime:
        real = self._settle()
        reading = self._linear(real)
        return min(reading, self._barrier) if self._barrier is not None else reading

    def hold(self, barrier: datetime | None) -> None:
        # settle under the old barrier first, so a stall before this call is not lost
        self._settle()
        self._barrier = barrier

    def real_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now()).total_seconds() / self.speed)

    @property
    def stalled(self) -> float:
        self._settle()
        return self._stalled
