"""vault-law decisions and the state's atomic check-and-reserve."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.config import TenantConfig, load_tenants
from aurora.home import Home
from aurora.policy.engine import Usage, decide
from aurora.policy.state import NONCE_TTL_SECONDS, PolicyState
from aurora.treaty import Treaty, load_treaty

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def treaty() -> Treaty:
    return load_treaty(Home(REPO))


@pytest.fixture(scope="module")
def tenants() -> dict[str, TenantConfig]:
    return {t.id: t for t in load_tenants(Home(REPO))}


def _decide(treaty: Treaty, tenant: TenantConfig, *, region: str = "eu-west-1",
            hours: float = 1.0, used_today: float = 0.0, used_period: float = 0.0,
            treaty_id: str | None = None):
    return decide(treaty_id=treaty_id or treaty.treaty_id, region=region, gpu_hours=hours,
                  tenant=tenant, treaty=treaty, usage=Usage(used_today, used_period))


def test_treaty_template_matches_the_issue(treaty: Treaty) -> None:
    assert treaty.treaty_id == "AURORA-AKASH-001"
    assert (treaty.parties.consumer, treaty.parties.provider) == ("vaultmesh.main",
                                                                  "akash.supercloud")
    assert treaty.resources == ["gpu_time"]
    assert treaty.quota.total_gpu_hours == 10_000 and treaty.quota.period == "P30D"
    assert treaty.quota.per_tenant_daily_gpu_hours == 100
    assert treaty.regions == ["eu-west-1", "us-west-2"]
    assert treaty.min_tenant_reputation == 60
    assert treaty.slo.bridge_rtt_ms == 350
    assert (treaty.kpi_targets.fill_rate, treaty.kpi_targets.provenance_coverage) == (0.85, 0.95)


def test_allows_an_order_within_the_treaty(treaty, tenants) -> None:
    assert _decide(treaty, tenants["tenant-42"]).allowed


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"region": "ap-southeast-1"}, "region"),
        ({"treaty_id": "AURORA-OTHER-001"}, "treaty"),
        ({"hours": 1.0, "used_today": 99.5}, "daily_cap"),
        ({"hours": 2.0, "used_period": 9_999.0}, "treaty_cap"),
    ],
)
def test_denials_name_their_reason(treaty, tenants, kwargs, reason) -> None:
    decision = _decide(treaty, tenants["tenant-42"], **kwargs)
    assert not decision.allowed
    assert decision.reason == reason
    assert decision.detail


def test_reputation_below_minimum_is_denied(treaty, tenants) -> None:
    decision = _decide(treaty, tenants["grey-miner"])
    assert (decision.allowed, decision.reason) == (False, "reputation")


def test_caps_are_inclusive(treaty, tenants) -> None:
    assert _decide(treaty, tenants["tenant-42"], hours=1.0, used_today=99.0).allowed
    assert _decide(treaty, tenants["tenant-42"], hours=1.0, used_period=9_999.0).allowed


def _state(treaty, tenants) -> PolicyState:
    return PolicyState(treaty, tenants)


def test_nonce_replay_within_24h_and_not_after(treaty, tenants) -> None:
    state = _state(treaty, tenants)
    args = dict(treaty_id=treaty.treaty_id, tenant_id="tenant-42", region="eu-west-1",
                gpu_hours=0.5, nonce="nonce-0001")
    assert not state.admit(**args, now=1_000.0).replay
    assert state.admit(**args, now=1_000.0 + NONCE_TTL_SECONDS - 1).replay
    assert not state.admit(**args, now=1_000.0 + NONCE_TTL_SECONDS + 1).replay


def test_nonces_are_per_tenant(treaty, tenants) -> None:
    state = _state(treaty, tenants)
    common = dict(treaty_id=treaty.treaty_id, region="eu-west-1", gpu_hours=0.5,
                  nonce="shared-nonce", now=5.0)
    assert not state.admit(tenant_id="tenant-42", **common).replay
    assert not state.admit(tenant_id="orion-labs", **common).replay


def test_denied_orders_reserve_nothing(treaty, tenants) -> None:
    state = _state(treaty, tenants)
    result = state.admit(treaty_id=treaty.treaty_id, tenant_id="tenant-42",
                         region="ap-southeast-1", gpu_hours=5, nonce="n-deny-01", now=10.0)
    assert result.reservation is None
    assert state.usage("tenant-42", 10.0) == Usage(0.0, 0.0)


def test_release_gives_the_hours_back(treaty, tenants) -> None:
    state = _state(treaty, tenants)
    result = state.admit(treaty_id=treaty.treaty_id, tenant_id="tenant-42", region="eu-west-1",
                         gpu_hours=60, nonce="n-rel-001", now=10.0)
    assert result.reservation is not None
    state.release(result.reservation)
    state.release(result.reservation)  # twice is harmless
    assert state.usage("tenant-42", 10.0) == Usage(0.0, 0.0)
    again = state.admit(treaty_id=treaty.treaty_id, tenant_id="tenant-42", region="eu-west-1",
                        gpu_hours=100, nonce="n-rel-002", now=11.0)
    assert again.decision is not None and again.decision.allowed


def test_daily_cap_resets_at_utc_midnight(treaty, tenants) -> None:
    state = _state(treaty, tenants)
    day1 = 1_700_006_400.0  # 2023-11-15T00:00:00Z
    ok = state.admit(treaty_id=treaty.treaty_id, tenant_id="tenant-42", region="eu-west-1",
                     gpu_hours=100, nonce="n-day-001", now=day1 + 10)
    assert ok.decision is not None and ok.decision.allowed
    late = state.admit(treaty_id=treaty.treaty_id, tenant_id="tenant-42", region="eu-west-1",
                       gpu_hours=0.1, nonce="n-day-002", now=day1 + 86_399)
    assert late.decision is not None and late.decision.reason == "daily_cap"
    next_day = state.admit(treaty_id=treaty.treaty_id, tenant_id="tenant-42",
                           region="eu-west-1", gpu_hours=0.1, nonce="n-day-003",
                           now=day1 + 86_401)
    assert next_day.decision is not None and next_day.decision.allowed


def test_treaty_cap_is_a_rolling_period(treaty, tenants) -> None:
    state = _state(treaty, tenants)
    period = treaty.quota.period_seconds
    records = [("order", t, f"old-{i:04d}", 100.0, 1_000.0 + i)
               for i, t in enumerate(["orion-labs", "helix-bio", "quanta-ai"] * 34)]
    state.restore(records, now=2_000.0)
    assert state.usage("x", 2_000.0).treaty_period == pytest.approx(10_200.0)
    assert state.admit(treaty_id=treaty.treaty_id, tenant_id="tenant-42", region="eu-west-1",
                       gpu_hours=1, nonce="n-roll-01", now=2_000.0).decision.reason == "treaty_cap"
    later = state.admit(treaty_id=treaty.treaty_id, tenant_id="tenant-42", region="eu-west-1",
                        gpu_hours=1, nonce="n-roll-02", now=1_000.0 + period + 200)
    assert later.decision is not None and later.decision.allowed


def test_restore_brings_back_nonces_and_usage(treaty, tenants) -> None:
    now = 100_000.0
    state = _state(treaty, tenants)
    state.restore([("order", "tenant-42", "seen-order", 3.0, now - 60),
                   ("decision", "tenant-42", "seen-denial", None, now - 30),
                   ("drop", "tenant-42", "seen-drop", None, now - 10),
                   ("order", "tenant-42", "too-old-nonce", 2.0, now - NONCE_TTL_SECONDS - 5)],
                  now)
    for nonce in ("seen-order", "seen-denial", "seen-drop"):
        assert state.seen("tenant-42", nonce, now)
    assert not state.seen("tenant-42", "too-old-nonce", now)
    assert state.usage("tenant-42", now).treaty_period == pytest.approx(5.0)


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.floats(min_value=0.1, max_value=7.0), min_size=200, max_size=200))
def test_concurrent_orders_never_overrun_the_daily_cap(treaty, tenants, sizes) -> None:
    """200 orders racing on one event loop: the admitted total never passes the cap."""
    state = _state(treaty, tenants)

    async def one(i: int, size: float) -> float:
        await asyncio.sleep(0)  # interleave like concurrent requests do
        result = state.admit(treaty_id=treaty.treaty_id, tenant_id="tenant-42",
                             region="eu-west-1", gpu_hours=size, nonce=f"race-{i:05d}", now=50.0)
        await asyncio.sleep(0)
        return size if result.reservation is not None else 0.0

    async def race() -> float:
        return sum(await asyncio.gather(*(one(i, s) for i, s in enumerate(sizes))))

    admitted = asyncio.run(race())
    assert admitted <= treaty.quota.per_tenant_daily_gpu_hours + 1e-9
    assert state.usage("tenant-42", 50.0).tenant_today == pytest.approx(admitted)
