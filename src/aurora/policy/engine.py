"""Policy decisions: pure functions of an order, its tenant, the treaty and current usage."""

from __future__ import annotations

from dataclasses import dataclass

from aurora.config import TenantConfig
from aurora.treaty import Treaty


@dataclass(frozen=True)
class Usage:
    """GPU-hours already committed or reserved, as the decision sees them."""

    tenant_today: float
    treaty_period: float


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"allowed": self.allowed, "reason": self.reason, "detail": self.detail}


ALLOW = Decision(True, "ok", "within treaty")
# Float sums of many small orders drift; a cap is overrun only by more than this.
_EPSILON = 1e-9


def standing(*, treaty_id: str, region: str, tenant: TenantConfig, treaty: Treaty
             ) -> Decision | None:
    """The denials that do not depend on usage (treaty, region, reputation), else None."""
    if treaty_id != treaty.treaty_id:
        return Decision(False, "treaty", f"this gateway serves {treaty.treaty_id}, not {treaty_id}")
    if region not in treaty.regions:
        return Decision(False, "region",
                        f"region {region} is outside the treaty ({', '.join(treaty.regions)})")
    if tenant.reputation < treaty.min_tenant_reputation:
        return Decision(False, "reputation", f"tenant reputation {tenant.reputation:g} is below "
                        f"the treaty minimum {treaty.min_tenant_reputation:g}")
    return None


def daily_cap_denial(gpu_hours: float, treaty: Treaty, used: float) -> Decision:
    return Decision(False, "daily_cap", f"{gpu_hours:g} GPU-h would exceed the daily cap of "
                    f"{treaty.quota.per_tenant_daily_gpu_hours:g} (used {used:.2f} today, UTC)")


def treaty_cap_denial(gpu_hours: float, treaty: Treaty, used: float) -> Decision:
    return Decision(False, "treaty_cap", f"{gpu_hours:g} GPU-h would exceed the treaty cap of "
                    f"{treaty.quota.total_gpu_hours:g} per {treaty.quota.period} "
                    f"(used {used:.2f})")


def decide(
    *, treaty_id: str, region: str, gpu_hours: float, tenant: TenantConfig, treaty: Treaty,
    usage: Usage,
) -> Decision:
    """The treaty's verdict on one order, in the order an operator would explain it."""
    if (denied := standing(treaty_id=treaty_id, region=region, tenant=tenant,
                           treaty=treaty)) is not None:
        return denied
    if usage.tenant_today + gpu_hours > treaty.quota.per_tenant_daily_gpu_hours + _EPSILON:
        return daily_cap_denial(gpu_hours, treaty, usage.tenant_today)
    if usage.treaty_period + gpu_hours > treaty.quota.total_gpu_hours + _EPSILON:
        return treaty_cap_denial(gpu_hours, treaty, usage.treaty_period)
    return ALLOW
