"""The shared treaty state on a real PostgreSQL: concurrent claims from several replicas.

Each "replica" here is a ``PgTreatyState`` with its own connection pool, so the claims
race in the database exactly as they do from separate processes (the fault tests in
tests/integration/test_replicas_live.py do it with real bridge processes).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from aurora.config import TenantConfig, load_tenants
from aurora.home import Home
from aurora.policy.pgstate import PgTreatyState, usage
from aurora.policy.state import Admission, PolicyState, utc_day
from aurora.policy.treaty_state import TreatyStateUnavailable
from aurora.treaty import Treaty, load_treaty

TENANT = "tenant-42"
REGION = "eu-west-1"


def _world(home: Path) -> tuple[Treaty, dict[str, TenantConfig]]:
    h = Home(home)
    return load_treaty(h), {t.id: t for t in load_tenants(h)}


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


class Replicas:
    def __init__(self, url: str, treaty: Treaty, tenants: dict[str, TenantConfig], n: int,
                 lease_s: float = 60.0) -> None:
        self.url = url
        self.treaty = treaty
        self.states = [PgTreatyState(url, treaty, tenants, lease_s=lease_s, pool_size=4,
                                     pool_timeout=60)  # a loaded machine queues long
                       for _ in range(n)]

    async def __aenter__(self) -> Replicas:
        for state in self.states:
            await state.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for state in self.states:
            await state.close()

    async def admit(self, i: int, nonce: str, gpu_hours: float, now: float,
                    tenant: str = TENANT) -> Admission:
        return await self.states[i % len(self.states)].admit(
            treaty_id=self.treaty.treaty_id, tenant_id=tenant, region=REGION,
            gpu_hours=gpu_hours, nonce=nonce, now=now)

    async def usage(self, now: float, tenant: str = TENANT) -> tuple[Decimal, Decimal]:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            return await usage(conn, self.treaty.treaty_id, tenant, utc_day(now))


def _sql(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def _ledger_verdict(url: str, kind: str, nonce: str, tenant: str = TENANT) -> None:
    """A verdict row as the ledger writes it (only the columns the reclaimer reads matter)."""
    seq = _sql(url, "SELECT count(*) FROM audit_log")[0][0]
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    _sql(url, "INSERT INTO audit_log (seq, ts, kind, treaty_id, tenant_id, subject, payload, "
         "leaf_hash) VALUES (%s, %s, %s, 'AURORA-AKASH-001', %s, %s, '{}', %s)",
         (seq, ts, kind, tenant, nonce, b"\0" * 32))


def test_one_nonce_claimed_200_times_across_4_replicas_is_admitted_once(
        home: Path, pg_ledger_url: str) -> None:
    treaty, tenants = _world(home)

    async def go() -> list[Admission]:
        async with Replicas(pg_ledger_url, treaty, tenants, 4) as replicas:
            now = time.time()
            return await asyncio.gather(*(replicas.admit(i, "the-one-nonce", 0.5, now)
                                          for i in range(200)))

    started = time.time()
    answers = run(go)
    assert sum(not a.replay for a in answers) == 1
    assert sum(a.replay for a in answers) == 199
    # the winner's claim has no verdict yet: the others are told it is held, until when
    held = {a.in_flight_until for a in answers if a.replay}
    assert len(held) == 1 and started + 60 <= held.pop() <= time.time() + 60  # type: ignore[operator]
    assert _sql(pg_ledger_url, "SELECT count(*) FROM treaty_nonces")[0][0] == 1


def test_200_concurrent_claims_never_overrun_the_daily_cap(home: Path, pg_ledger_url: str
                                                           ) -> None:
    treaty, tenants = _world(home)
    cap = Decimal(repr(treaty.quota.per_tenant_daily_gpu_hours))
    rng = random.Random(7)
    # hours in 0.01 steps: float sums of these drift, numeric ones do not
    sizes = [round(rng.uniform(0.1, 1.5), 2) for _ in range(200)]
    already = float(cap) - 40.0  # the tenant has 40 GPU-h left today

    async def go() -> tuple[list[Admission], tuple[Decimal, Decimal]]:
        async with Replicas(pg_ledger_url, treaty, tenants, 4) as replicas:
            now = time.time()
            first = await replicas.admit(0, "earlier-today", already, now)
            assert first.reservation is not None
            answers = await asyncio.gather(*(replicas.admit(i, f"n-{i}", size, now)
                                             for i, size in enumerate(sizes)))
            return answers, await replicas.usage(now)

    answers, (today, period) = run(go)
    granted = sum((Decimal(repr(a.reservation.gpu_hours)) for a in answers if a.reservation),
                  Decimal(0))
    denied = [a for a in answers if a.reservation is None]
    assert denied and {a.decision.reason for a in denied if a.decision} == {"daily_cap"}
    assert Decimal(repr(already)) + granted <= cap  # never over, not even by 0.01
    assert today == Decimal(repr(already)) + granted == period  # what was granted is counted
    # and no denial was wrong: usage only grew, so what is left now is less than any
    # order refused (a refused order would still not fit)
    refused = [Decimal(repr(sizes[i])) for i, a in enumerate(answers) if a.reservation is None]
    assert cap - today < min(refused)


def test_claims_decide_as_the_in_memory_state_does(home: Path, pg_ledger_url: str) -> None:
    """The same claims against small caps, in PostgreSQL and in the single-process state:
    the same verdict for each, denials spend nothing, and the counters agree after each
    claim; every path of ``treaty_claim`` is taken: first claim of the treaty and of a
    tenant's day (no usage rows yet), either cap, both at once (the daily cap is named),
    and hours that fit again after a release."""
    treaty, tenants = _world(home)
    small = treaty.model_copy(update={"quota": treaty.quota.model_copy(
        update={"total_gpu_hours": 20.0, "per_tenant_daily_gpu_hours": 8.0})})
    names = ["tenant-42", "orion-labs", "helix-bio"]  # in standing: their caps decide
    rng = random.Random(11)
    # halves are exact in float and numeric alike: the two states can agree to the bit
    claims = [(rng.choice(names), rng.choice([0.5, 1.0, 2.5, 4.0, 6.0])) for _ in range(80)]
    daily, total = small.quota.per_tenant_daily_gpu_hours, small.quota.total_gpu_hours
    reference = PolicyState(small, tenants)
    reasons: Counter[str] = Counter()

    async def go() -> None:
        async with Replicas(pg_ledger_url, small, tenants, 2) as replicas:
            now = time.time()
            for i, (tenant, hours) in enumerate(claims):
                before = reference.usage(tenant, now)
                if before.tenant_today + hours > daily and before.treaty_period + hours > total:
                    reasons["both over"] += 1
                expected = reference.admit(treaty_id=small.treaty_id, tenant_id=tenant,
                                           region=REGION, gpu_hours=hours, nonce=f"n-{i}",
                                           now=now)
                got = await replicas.admit(i, f"n-{i}", hours, now, tenant=tenant)
                assert expected.decision is not None and got.decision is not None
                assert (got.decision.reason, got.decision.detail) == (
                    expected.decision.reason, expected.decision.detail), (i, tenant, hours)
                reasons[got.decision.reason] += 1
                if i % 7 == 3 and got.reservation and expected.reservation:  # hours come back
                    await replicas.states[i % 2].release(got.reservation)
                    reference.release(expected.reservation)
                want = reference.usage(tenant, now)
                assert await replicas.usage(now, tenant) == (
                    Decimal(repr(want.tenant_today)), Decimal(repr(want.treaty_period)))

    run(go)
    assert {"ok", "daily_cap", "treaty_cap", "both over"} <= set(reasons), reasons


def test_an_older_replicas_claim_function_shares_the_same_nonces_and_quota(
        home: Path, pg_ledger_url: str) -> None:
    """Schema v1's ``treaty_admit`` stays for replicas of an older version (a canary): its
    claims and the current ``treaty_claim``'s spend the same nonces and the same hours."""
    treaty, tenants = _world(home)
    quota = treaty.quota
    now = time.time()

    def old_claim(nonce: str, hours: str) -> tuple[Any, ...]:
        return _sql(pg_ledger_url, "SELECT * FROM treaty_admit(%s, %s, %s, %s, 60, %s, true, "
                    "%s, %s)", (treaty.treaty_id, TENANT, nonce, now, Decimal(hours),
                                Decimal(repr(quota.per_tenant_daily_gpu_hours)),
                                Decimal(repr(quota.total_gpu_hours))))[0]

    async def go() -> None:
        async with Replicas(pg_ledger_url, treaty, tenants, 1) as replicas:
            outcome, today, period, reservation = old_claim("by-old", "2.5")
            assert outcome == "ok" and reservation is not None
            replay = await replicas.admit(0, "by-old", 1.0, time.time())
            assert replay.replay and replay.in_flight_until == pytest.approx(now + 60)
            assert (await replicas.admit(0, "by-new", 1.5, time.time())).reservation
            assert old_claim("by-new", "1.0")[0] == "replay"
            assert await replicas.usage(now) == (Decimal("4.0"), Decimal("4.0"))

    run(go)


def test_a_claim_whose_lease_ran_out_is_resolved_against_the_ledger(
        home: Path, pg_ledger_url: str) -> None:
    """A replica died holding claims: recorded verdicts stay, the rest is undone."""
    treaty, tenants = _world(home)
    url = pg_ledger_url

    async def go() -> None:
        async with Replicas(url, treaty, tenants, 1, lease_s=0.5) as replicas:
            now = time.time()
            for nonce in ("filled", "dropped", "lost"):
                assert (await replicas.admit(0, nonce, 2.0, now)).reservation is not None
            # what the dead replica got into the ledger before it died:
            _ledger_verdict(url, "order", "filled")
            _ledger_verdict(url, "drop", "dropped")
            await asyncio.sleep(0.6)
            assert await replicas.states[0].reclaim() == 3
            assert await replicas.usage(now) == (Decimal("2.0"), Decimal("2.0"))
            # the filled and the dropped nonce stay spent; the lost one is free again
            for spent in ("filled", "dropped"):  # spent, no longer in flight
                replay = await replicas.admit(0, spent, 1.0, time.time())
                assert replay.replay and replay.in_flight_until is None
            again = await replicas.admit(0, "lost", 1.0, time.time())
            assert not again.replay and again.reservation is not None

    run(go)
    assert _sql(url, "SELECT count(*) FROM treaty_nonces WHERE lease_until IS NULL")[0][0] == 2


def test_settled_and_released_claims(home: Path, pg_ledger_url: str) -> None:
    treaty, tenants = _world(home)

    async def go() -> None:
        async with Replicas(pg_ledger_url, treaty, tenants, 2, lease_s=0.5) as replicas:
            now = time.time()
            kept = await replicas.admit(0, "kept", 3.0, now)
            dropped = await replicas.admit(1, "dropped", 4.0, now)
            assert kept.reservation and dropped.reservation
            await replicas.states[1].release(dropped.reservation)
            await replicas.states[1].release(dropped.reservation)  # twice is once
            assert await replicas.usage(now) == (Decimal("3.0"), Decimal("3.0"))
            assert replicas.states[1].treaty_usage() == 3.0  # the gauge follows at once
            await replicas.states[0].settle(TENANT, "kept", "order")
            await replicas.states[1].settle(TENANT, "dropped", "drop")
            await asyncio.sleep(0.2)  # settling is batched
            await asyncio.sleep(0.6)  # past the lease: nothing is pending, nothing undone
            assert await replicas.states[0].reclaim() == 0
            assert await replicas.usage(now) == (Decimal("3.0"), Decimal("3.0"))

    run(go)


def test_no_database_is_unavailable_not_a_crash(home: Path) -> None:
    from support import free_port

    treaty, tenants = _world(home)

    async def go() -> None:
        state = PgTreatyState(f"postgresql://aurora@127.0.0.1:{free_port()}/none", treaty,
                              tenants, lease_s=60)
        await state.start()
        try:
            with pytest.raises(TreatyStateUnavailable):
                await state.admit(treaty_id=treaty.treaty_id, tenant_id=TENANT, region=REGION,
                                  gpu_hours=1.0, nonce="n-1", now=time.time())
        finally:
            await state.close()

    run(go)
