"""The fault behind each drillable alert, as ``aurora chaos`` events. Pure.

An alert drill must trip its alert through the real path (bridge → Prometheus → Alertmanager
→ receiver), so each fault is one the provider network can inject and that moves the
alert's signal past its threshold without tripping the *other* seed alerts:

- ``TreatyFillRateLow`` — an outage (mode ``refuse``: 503 at once, no timeouts, so RTT stays
  put) of every provider serving one treaty region. Orders for that region find no
  provider and drop; the other region still fills. With the default workloads about half of
  the admitted orders are for each region, so the fill rate settles near 0.5 < 0.75. The
  region defaults to the treaty region served by the fewest providers (eu-west-1: akash,
  render, flux, aethir, vastai), which leaves the most providers for the other region.
- ``TreatyRttP95High`` — a latency spike ×2 on every provider: medians of 125–240 ms become
  250–480 ms, so the p95 round trip lands near 500 ms (> 400 ms). ×2 and not more because
  the router skips providers above a tenant's ``max_latency_ms`` (orion-labs: 320 ms): at ×2
  every tenant still has a provider in each of its regions, so no order drops and the
  fill-rate alert stays quiet (tests/incidents/test_drill_plan.py checks this against
  config/providers.json and config/tenants.json).

Each fault also drives the error-budget burn alert of the same SLO in a time-compressed
stack (a 7-day budget spent in seconds); those are listed as the drill's companion alerts,
so their incidents count as drill incidents too. The other alerts (provenance, ledger
tampering, policy latency, no traffic, target down, SLA breach) have no provider-network
fault that drives them: they are validated by their promtool tests, not drilled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aurora.config import ProviderConfig
from aurora.errors import AuroraError

FaultKind = Literal["region_outage", "latency_spike"]
RTT_SPIKE_FACTOR = 2.0


@dataclass(frozen=True)
class DrillSpec:
    alert: str
    fault: FaultKind
    companions: tuple[str, ...]  # alerts the same fault drives (their incidents are the drill's)
    summary: str


DRILLABLE: dict[str, DrillSpec] = {
    "TreatyFillRateLow": DrillSpec(
        "TreatyFillRateLow", "region_outage", ("TreatyFillBudgetBurn",),
        "outage (refuse) of every provider serving one treaty region"),
    "TreatyRttP95High": DrillSpec(
        "TreatyRttP95High", "latency_spike", ("TreatyRttBudgetBurn",),
        f"latency spike x{RTT_SPIKE_FACTOR:g} on every provider"),
}


class DrillPlanError(AuroraError, ValueError):
    """No fault drives that alert, or the fault cannot be built from the configuration."""


def drill_region(providers: Sequence[ProviderConfig], treaty_regions: Sequence[str]) -> str:
    """The treaty region served by the fewest providers (the first such, in treaty order)."""
    served = [(sum(region in p.regions for p in providers), i, region)
              for i, region in enumerate(treaty_regions)]
    served = [s for s in served if s[0] > 0]
    if not served:
        raise DrillPlanError("no provider serves any of the treaty's regions")
    return min(served)[2]


def fault_events(spec: DrillSpec, providers: Sequence[ProviderConfig], *, region: str,
                 duration: str) -> list[dict[str, Any]]:
    """The ``POST /chaos`` bodies that inject ``spec``'s fault for at most ``duration``
    (the drill clears them itself; ``duration`` only bounds a drill that died)."""
    if spec.fault == "region_outage":
        targets = [p.id for p in providers if region in p.regions]
        if not targets:
            raise DrillPlanError(f"no provider serves region {region}")
        return [{"type": "outage", "provider": p, "for": duration, "mode": "refuse"}
                for p in targets]
    return [{"type": "latency_spike", "provider": p.id, "for": duration,
             "factor": RTT_SPIKE_FACTOR} for p in providers]
