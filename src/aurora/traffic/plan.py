"""What the simulated tenants order, and when. Pure (seeded randomness, no clock reads).

Arrivals are Poisson (exponential gaps) and open-loop: an order is due at its
time whatever happened to earlier ones. Each arrival goes to a tenant in
proportion to its ``share``, picks a workload by weight and a size uniformly
in that workload's range, rounded to 0.01 GPU-h.

Budget pacing (on by default) keeps each tenant within its daily budget
*spread over the UTC day*: an order is sent only if the tenant's spend today
plus the order stays under ``budget × (elapsed share of the day) + burst``.
At the treaty's caps this is what makes a week of traffic possible at all:
AURORA-AKASH-001 allows 10,000 GPU-h per 30 days, about 333 GPU-h a day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from aurora.config import TenantWorkload, WorkloadsFile

# Spend allowed ahead of the even pace, so a tenant's first orders of the day go out.
BURST_GPU_HOURS = 2.0


@dataclass(frozen=True)
class PlannedOrder:
    at: float  # seconds since the start of the run
    tenant_id: str
    region: str
    gpu_hours: float
    workload: str


@dataclass
class BudgetBook:
    """GPU-hours each tenant got filled per UTC day, as the generator saw it."""

    spent: dict[tuple[str, str], float] = field(default_factory=dict)
    exhausted: set[tuple[str, str]] = field(default_factory=set)

    def add(self, tenant_id: str, day: str, gpu_hours: float) -> None:
        self.spent[(tenant_id, day)] = self.spent.get((tenant_id, day), 0.0) + gpu_hours

    def mark_exhausted(self, tenant_id: str, day: str) -> None:
        self.exhausted.add((tenant_id, day))

    def allows(self, workload: TenantWorkload, day: str, day_fraction: float, gpu_hours: float,
               *, pace: bool) -> bool:
        key = (workload.tenant, day)
        if key in self.exhausted:
            return False
        budget = workload.daily_budget_gpu_hours
        limit = min(budget, budget * day_fraction + BURST_GPU_HOURS) if pace else budget
        return self.spent.get(key, 0.0) + gpu_hours <= limit


@dataclass
class TrafficPlan:
    workloads: WorkloadsFile
    rate_per_s: float
    seed: int | None = None
    tenants: list[str] | None = None
    _rng: random.Random = field(init=False)
    _clock: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0:
            raise ValueError("rate must be positive")
        self._rng = random.Random(self.seed)
        chosen = [w for w in self.workloads.tenants
                  if self.tenants is None or w.tenant in self.tenants]
        if not chosen:
            raise ValueError("no workload matches the chosen tenants")
        self._chosen = chosen
        self._shares = [w.share for w in chosen]

    def next(self) -> PlannedOrder:
        self._clock += self._rng.expovariate(self.rate_per_s)
        workload = self._rng.choices(self._chosen, weights=self._shares)[0]
        kind = self._rng.choices(workload.mix, weights=[k.weight for k in workload.mix])[0]
        size = round(self._rng.uniform(kind.gpu_hours_min, kind.gpu_hours_max), 2)
        region = self._rng.choice(workload.regions)
        return PlannedOrder(self._clock, workload.tenant, region, max(size, 0.1), kind.name)

    def workload(self, tenant_id: str) -> TenantWorkload:
        return next(w for w in self._chosen if w.tenant == tenant_id)


def sustainable_rate(workloads: WorkloadsFile) -> float:
    """Orders/s at which every tenant's daily budget lasts exactly the whole day."""
    total = 0.0
    for w in workloads.tenants:
        weights = sum(k.weight for k in w.mix)
        mean = sum(k.weight * (k.gpu_hours_min + k.gpu_hours_max) / 2 for k in w.mix) / weights
        total += w.daily_budget_gpu_hours / mean / 86400.0
    return total
