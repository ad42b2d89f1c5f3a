"""The treaty: who may buy how many GPU-hours, where, and against which SLOs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from aurora.config import _Strict, load_model
from aurora.durations import parse_duration
from aurora.home import Home
from aurora.wire import REGION_PATTERN, TREATY_ID_PATTERN


class Parties(_Strict):
    consumer: str
    provider: str


class Quota(_Strict):
    total_gpu_hours: float = Field(gt=0)
    period: str = Field(description="ISO 8601 duration of the rolling window for total_gpu_hours")
    per_tenant_daily_gpu_hours: float = Field(gt=0)

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        if not value.startswith("P") or parse_duration(value) <= 0:
            raise ValueError("period must be a positive ISO 8601 duration such as P30D")
        return value

    @property
    def period_seconds(self) -> float:
        return parse_duration(self.period)


class TreatySLO(_Strict):
    bridge_rtt_ms: float = Field(gt=0)


class KPITargets(_Strict):
    fill_rate: float = Field(gt=0, le=1)
    provenance_coverage: float = Field(gt=0, le=1)


class Treaty(_Strict):
    treaty_id: Annotated[str, StringConstraints(pattern=TREATY_ID_PATTERN)]
    version: str
    parties: Parties
    resources: list[str] = Field(min_length=1)
    quota: Quota
    regions: list[Annotated[str, StringConstraints(pattern=REGION_PATTERN)]] = Field(min_length=1)
    min_tenant_reputation: float = Field(ge=0, le=100)
    slo: TreatySLO
    kpi_targets: KPITargets

    @property
    def daily_share_gpu_hours(self) -> float:
        """The total quota spread evenly over its period, per day."""
        return self.quota.total_gpu_hours * 86400 / self.quota.period_seconds


def load_treaty(home: Home, path: Path | None = None) -> Treaty:
    return load_model(path or home.treaty_file, Treaty)
