"""The incident report: counts per SEV, response-time percentiles, SLA compliance. Pure.

"Alert response within SLA: N/M (P %)" is the seed's operational criterion ("100 % alert
response within SLA"). Per incident (``Incident.outcome``):
- met: first acknowledgement at or before the deadline;
- auto_resolved: Alertmanager resolved it before the deadline and nobody had to respond;
  no breach happened, so it counts as within SLA (and is listed apart);
- breached: not acknowledged by the deadline;
- pending: open, unacknowledged, deadline still ahead — not decided, so not counted.
N = met + auto_resolved, M = N + breached. Drill incidents (acknowledged by an alert drill)
are counted apart and left out of everything else: they test the path, not the on-call.
Percentiles use the nearest-rank method on the response times of the acknowledged ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aurora.incidents.config import SEVS, Sev
from aurora.incidents.model import Incident
from aurora.wire import format_rfc3339

PERCENTILES = (50, 90, 95, 99)


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of ascending ``sorted_values`` (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class ResponseStats:
    count: int
    percentiles: dict[int, float | None]
    max: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> ResponseStats:
        ordered = sorted(values)
        return cls(len(ordered), {p: percentile(ordered, p) for p in PERCENTILES},
                   ordered[-1] if ordered else None)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "max": self.max,
                **{f"p{p}": v for p, v in self.percentiles.items()}}


@dataclass(frozen=True)
class SevStats:
    sev: Sev
    opened: int
    open: int
    acknowledged: int
    resolved: int
    met: int
    auto_resolved: int
    breached: int
    pending: int
    response: ResponseStats

    def to_json(self) -> dict[str, Any]:
        return {"opened": self.opened, "open": self.open, "acknowledged": self.acknowledged,
                "resolved": self.resolved, "met": self.met,
                "auto_resolved": self.auto_resolved, "breached": self.breached,
                "pending": self.pending, "response_seconds": self.response.to_json()}


@dataclass(frozen=True)
class Report:
    since: datetime | None
    until: datetime
    by_sev: dict[Sev, SevStats]
    response: ResponseStats
    drills: int

    @property
    def major(self) -> int:
        """SEV1 + SEV2 incidents (drills apart): the seed's "zero SEV1/SEV2" criterion."""
        return self.by_sev["SEV1"].opened + self.by_sev["SEV2"].opened

    @property
    def sla_met(self) -> int:
        return sum(s.met + s.auto_resolved for s in self.by_sev.values())

    @property
    def sla_total(self) -> int:
        return self.sla_met + sum(s.breached for s in self.by_sev.values())

    @property
    def sla_percent(self) -> float | None:
        return 100.0 * self.sla_met / self.sla_total if self.sla_total else None

    def sla_line(self) -> str:
        pct = "n/a" if self.sla_percent is None else f"{self.sla_percent:.1f} %"
        return f"alert response within SLA: {self.sla_met}/{self.sla_total} ({pct})"

    def to_json(self) -> dict[str, Any]:
        return {
            "since": format_rfc3339(self.since) if self.since else None,
            "until": format_rfc3339(self.until),
            "by_sev": {sev: stats.to_json() for sev, stats in self.by_sev.items()},
            "response_seconds": self.response.to_json(),
            "major_incidents": self.major,
            "drills": self.drills,
            "sla": {"met": self.sla_met, "total": self.sla_total,
                    "percent": self.sla_percent, "line": self.sla_line()},
        }


def build_report(incidents: Sequence[Incident], *, since: datetime | None, until: datetime,
                 now: datetime) -> Report:
    real = [i for i in incidents if i.drill is None]
    by_sev: dict[Sev, SevStats] = {}
    for sev in SEVS:
        mine = [i for i in real if i.sev == sev]
        outcomes = [i.outcome(now) for i in mine]
        by_sev[sev] = SevStats(
            sev=sev, opened=len(mine), open=sum(i.is_open for i in mine),
            acknowledged=sum(i.acknowledged_at is not None for i in mine),
            resolved=sum(not i.is_open for i in mine),
            met=outcomes.count("met"), auto_resolved=outcomes.count("auto_resolved"),
            breached=outcomes.count("breached"), pending=outcomes.count("pending"),
            response=ResponseStats.of(_responses(mine)),
        )
    return Report(since=since, until=until, by_sev=by_sev, response=ResponseStats.of(
        _responses(real)), drills=len(incidents) - len(real))


def _responses(incidents: Sequence[Incident]) -> list[float]:
    return [r for i in incidents if (r := i.response_seconds) is not None]
