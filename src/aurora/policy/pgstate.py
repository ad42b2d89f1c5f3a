"""The treaty state in PostgreSQL: nonces, reservations and usage shared by every replica.

Each claim is one call of ``treaty_claim`` (PL/pgSQL, one round trip, one transaction):

* the nonce is claimed by ``INSERT … ON CONFLICT DO NOTHING`` on ``(tenant_id, nonce)``;
  a second claim of the same nonce, on any replica, waits for the first to commit and
  then finds the row: ``replay``;
* the usage counters are read ``FOR UPDATE`` (the treaty's row first, then the
  tenant's day), compared with the caps in exact ``numeric`` and incremented in the same
  transaction, so concurrent claims are serialised on the treaty row and a cap cannot be
  overrun by any amount. The lock is held for the function's few statements only.

Claims commit with ``synchronous_commit = off``: a claim becomes durable at the latest
when the verdict it led to is committed to the ledger (same cluster, one WAL: flushing
the ledger's commit flushes every earlier record, the claim's included). So a nonce is
spent, durably, once its verdict is durable; a claim lost in a server crash belonged to
an order that was never acknowledged.

Every claim carries a lease (``treaty_lease``). While it runs, the replica that made it
may record its verdict (``fresh``) and then ``settle``s it (batched). A claim whose
lease ran out — its replica died, or could not reach the database — is resolved by
whichever replica's maintenance loop gets to it first (``FOR UPDATE SKIP LOCKED``),
against the ledger: a verdict there keeps the nonce spent (and an order's hours), no
verdict undoes the claim (the nonce is free again, the hours come back).

Lock order, everywhere: nonce row → treaty usage row → tenant-day row → reservation row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aurora.config import TenantConfig
from aurora.db.schema import Schema
from aurora.policy.engine import (
    ALLOW,
    Decision,
    daily_cap_denial,
    standing,
    treaty_cap_denial,
)
from aurora.policy.state import NONCE_TTL_SECONDS, Admission, Reservation, utc_day
from aurora.policy.treaty_state import TreatyStateUnavailable
from aurora.treaty import Treaty

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

log = logging.getLogger("aurora.policy")

# How often a replica looks for claims whose lease ran out, and prunes what has expired.
RECLAIM_EVERY_S = 1.0
PRUNE_EVERY_S = 10.0
SETTLE_EVERY_S = 0.02
BATCH = 2000

DDL = f"""
CREATE TABLE IF NOT EXISTS treaty_nonces (
    tenant_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,        -- epoch seconds of the claim
    lease_until DOUBLE PRECISION,        -- NULL once its verdict is durable (settled)
    reservation_id BIGINT,               -- the hours it reserved, if any
    PRIMARY KEY (tenant_id, nonce)
);
CREATE INDEX IF NOT EXISTS treaty_nonces_pending ON treaty_nonces (lease_until)
    WHERE lease_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS treaty_nonces_at ON treaty_nonces (at);
CREATE TABLE IF NOT EXISTS treaty_reservations (
    id BIGSERIAL PRIMARY KEY,
    treaty_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    day TEXT NOT NULL,                   -- UTC day of the claim, YYYY-MM-DD
    at DOUBLE PRECISION NOT NULL,
    gpu_hours NUMERIC NOT NULL
);
CREATE INDEX IF NOT EXISTS treaty_reservations_at ON treaty_reservations (treaty_id, at);
CREATE TABLE IF NOT EXISTS treaty_usage (
    scope TEXT NOT NULL,                 -- 'treaty' (rolling period) or 'tenant_day'
    key TEXT NOT NULL,                   -- treaty id, or tenant id || '/' || UTC day
    used NUMERIC NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key)
);
-- the reclaimer asks the ledger whether a claim's verdict was recorded
CREATE INDEX IF NOT EXISTS treaty_audit_subject ON audit_log (subject, tenant_id);

CREATE OR REPLACE FUNCTION treaty_claim(
    p_treaty TEXT, p_tenant TEXT, p_nonce TEXT, p_now DOUBLE PRECISION,
    p_lease DOUBLE PRECISION, p_hours NUMERIC, p_standing BOOLEAN, p_daily_cap NUMERIC,
    p_total_cap NUMERIC,
    OUT outcome TEXT, OUT tenant_today NUMERIC, OUT treaty_period NUMERIC,
    OUT reservation BIGINT, OUT held_until DOUBLE PRECISION)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_day TEXT := to_char(to_timestamp(p_now) AT TIME ZONE 'UTC', 'YYYY-MM-DD');
    v_key TEXT := p_tenant || '/' || v_day;
BEGIN
    INSERT INTO treaty_nonces AS n (tenant_id, nonce, at, lease_until)
    VALUES (p_tenant, p_nonce, p_now, p_now + p_lease)
    ON CONFLICT (tenant_id, nonce) DO UPDATE
        SET at = EXCLUDED.at, lease_until = EXCLUDED.lease_until, reservation_id = NULL
        WHERE n.lease_until IS NULL AND n.at + {NONCE_TTL_SECONDS} <= p_now;
    IF NOT FOUND THEN
        outcome := 'replay';
        -- the claim's lease while its verdict is not yet durable (NULL once it is)
        SELECT lease_until INTO held_until FROM treaty_nonces
            WHERE tenant_id = p_tenant AND nonce = p_nonce;
        RETURN;
    END IF;
    IF NOT p_standing THEN
        outcome := 'standing';
        RETURN;
    END IF;
    -- every claim takes the treaty's row: claims are serialised here, for a few statements
    SELECT used INTO treaty_period FROM treaty_usage
        WHERE scope = 'treaty' AND key = p_treaty FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO treaty_usage (scope, key) VALUES ('treaty', p_treaty)
            ON CONFLICT DO NOTHING;
        SELECT used INTO treaty_period FROM treaty_usage
            WHERE scope = 'treaty' AND key = p_treaty FOR UPDATE;
    END IF;
    INSERT INTO treaty_usage (scope, key) VALUES ('tenant_day', v_key) ON CONFLICT DO NOTHING;
    SELECT used INTO tenant_today FROM treaty_usage
        WHERE scope = 'tenant_day' AND key = v_key FOR UPDATE;
    IF tenant_today + p_hours > p_daily_cap THEN
        outcome := 'daily_cap';
        RETURN;
    END IF;
    IF treaty_period + p_hours > p_total_cap THEN
        outcome := 'treaty_cap';
        RETURN;
    END IF;
    INSERT INTO treaty_reservations (treaty_id, tenant_id, day, at, gpu_hours)
        VALUES (p_treaty, p_tenant, v_day, p_now, p_hours) RETURNING id INTO reservation;
    UPDATE treaty_usage SET used = used + p_hours
        WHERE (scope = 'treaty' AND key = p_treaty) OR (scope = 'tenant_day' AND key = v_key);
    UPDATE treaty_nonces SET reservation_id = reservation
        WHERE tenant_id = p_tenant AND nonce = p_nonce;
    outcome := 'ok';
END
$fn$;

-- Schema v1's claim, kept for replicas of an older version sharing this database (a
-- canary, a rolling upgrade): the same claim without the replay's lease.
CREATE OR REPLACE FUNCTION treaty_admit(
    p_treaty TEXT, p_tenant TEXT, p_nonce TEXT, p_now DOUBLE PRECISION,
    p_lease DOUBLE PRECISION, p_hours NUMERIC, p_standing BOOLEAN, p_daily_cap NUMERIC,
    p_total_cap NUMERIC,
    OUT outcome TEXT, OUT tenant_today NUMERIC, OUT treaty_period NUMERIC,
    OUT reservation BIGINT)
LANGUAGE sql AS $fn$
    SELECT c.outcome, c.tenant_today, c.treaty_period, c.reservation
    FROM treaty_claim(p_treaty, p_tenant, p_nonce, p_now, p_lease, p_hours, p_standing,
                      p_daily_cap, p_total_cap) AS c
$fn$;

CREATE OR REPLACE FUNCTION treaty_release(p_id BIGINT) RETURNS NUMERIC
LANGUAGE plpgsql AS $fn$
DECLARE
    r treaty_reservations;
BEGIN
    SELECT * INTO r FROM treaty_reservations WHERE id = p_id;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM treaty_usage WHERE scope = 'treaty' AND key = r.treaty_id FOR UPDATE;
    DELETE FROM treaty_reservations WHERE id = p_id;
    IF NOT FOUND THEN  -- released meanwhile by someone else
        RETURN 0;
    END IF;
    UPDATE treaty_usage SET used = used - r.gpu_hours
        WHERE (scope = 'treaty' AND key = r.treaty_id)
           OR (scope = 'tenant_day' AND key = r.tenant_id || '/' || r.day);
    RETURN r.gpu_hours;
END
$fn$;

-- Resolve one claim against the ledger; the caller holds its nonce row locked.
CREATE OR REPLACE FUNCTION treaty_resolve(p_tenant TEXT, p_nonce TEXT, p_at DOUBLE PRECISION,
                                          p_reservation BIGINT) RETURNS TEXT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_kind TEXT;
    -- a verdict for this claim is not older than the claim (a minute of clock skew allowed)
    v_since TEXT := to_char(to_timestamp(p_at - 60) AT TIME ZONE 'UTC',
                            'YYYY-MM-DD"T"HH24:MI:SS');
BEGIN
    SELECT kind INTO v_kind FROM audit_log
        WHERE subject = p_nonce AND tenant_id = p_tenant AND ts >= v_since
          AND kind IN ('order', 'decision', 'drop')
        ORDER BY seq DESC LIMIT 1;
    IF v_kind IS NULL THEN  -- nothing durable saw it: undo the claim
        IF p_reservation IS NOT NULL THEN
            PERFORM treaty_release(p_reservation);
        END IF;
        DELETE FROM treaty_nonces WHERE tenant_id = p_tenant AND nonce = p_nonce;
        RETURN 'undone';
    END IF;
    IF v_kind <> 'order' AND p_reservation IS NOT NULL THEN
        PERFORM treaty_release(p_reservation);
    END IF;
    UPDATE treaty_nonces SET lease_until = NULL WHERE tenant_id = p_tenant AND nonce = p_nonce;
    RETURN 'kept';
END
$fn$;

CREATE OR REPLACE FUNCTION treaty_reclaim(p_now DOUBLE PRECISION, p_limit INTEGER)
    RETURNS INTEGER
LANGUAGE plpgsql AS $fn$
DECLARE
    c RECORD;
    n INTEGER := 0;
BEGIN
    FOR c IN SELECT tenant_id, nonce, at, reservation_id FROM treaty_nonces
             WHERE lease_until IS NOT NULL AND lease_until < p_now
             ORDER BY lease_until LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        PERFORM treaty_resolve(c.tenant_id, c.nonce, c.at, c.reservation_id);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$fn$;

-- Expired reservations leave the rolling period; expired settled nonces are forgotten.
CREATE OR REPLACE FUNCTION treaty_prune(p_treaty TEXT, p_now DOUBLE PRECISION,
                                        p_period DOUBLE PRECISION, p_limit INTEGER)
    RETURNS VOID
LANGUAGE plpgsql AS $fn$
DECLARE
    v_gone NUMERIC;
BEGIN
    PERFORM 1 FROM treaty_usage WHERE scope = 'treaty' AND key = p_treaty FOR UPDATE;
    WITH gone AS (
        DELETE FROM treaty_reservations WHERE id IN (
            SELECT id FROM treaty_reservations WHERE treaty_id = p_treaty
                AND at <= p_now - p_period ORDER BY at LIMIT p_limit)
        RETURNING gpu_hours)
    SELECT coalesce(sum(gpu_hours), 0) INTO v_gone FROM gone;
    UPDATE treaty_usage SET used = used - v_gone WHERE scope = 'treaty' AND key = p_treaty;
    DELETE FROM treaty_nonces WHERE ctid IN (
        SELECT ctid FROM treaty_nonces WHERE lease_until IS NULL
            AND at + {NONCE_TTL_SECONDS} <= p_now LIMIT p_limit);
    DELETE FROM treaty_usage WHERE scope = 'tenant_day' AND split_part(key, '/', 2)
        < to_char(to_timestamp(p_now - 3 * 86400) AT TIME ZONE 'UTC', 'YYYY-MM-DD');
END
$fn$;
"""

SCHEMA = Schema(name="treaty", version=2,
                tables=("treaty_nonces", "treaty_reservations", "treaty_usage"), ddl=DDL)

_SETTLE = """
UPDATE treaty_nonces AS n SET lease_until = NULL
FROM unnest(%s::text[], %s::text[], %s::boolean[]) AS s(tenant_id, nonce, keeps)
WHERE n.tenant_id = s.tenant_id AND n.nonce = s.nonce AND n.lease_until IS NOT NULL
  AND (s.keeps OR n.reservation_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM treaty_reservations r WHERE r.id = n.reservation_id))
"""


def _exact(value: float) -> Decimal:
    """A float as the decimal it was written as (0.1 -> 0.1): sums in numeric stay exact."""
    return Decimal(repr(value))


class PgTreatyState:
    rebuilt_from_ledger = False

    def __init__(self, url: str, treaty: Treaty, tenants: Mapping[str, TenantConfig], *,
                 lease_s: float, pool_size: int = 8, pool_timeout: float = 5.0) -> None:
        self.url = url
        self.treaty = treaty
        self.tenants = tenants
        self.lease_s = lease_s
        self._pool_size = pool_size
        # waiting longer than this for a connection answers 503 (the database is gone or
        # overwhelmed) rather than holding the client
        self._pool_timeout = pool_timeout
        self._pool: psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._to_settle: list[tuple[str, str, bool]] = []
        self._settled = asyncio.Event()
        self._treaty_usage = 0.0
        self._live_nonces = 0

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        import psycopg_pool

        from aurora.db.postgres import CONNECT_TIMEOUT_S

        self._pool = psycopg_pool.AsyncConnectionPool(
            self.url, min_size=2, max_size=self._pool_size, timeout=self._pool_timeout, open=False,
            name="treaty-state", reconnect_timeout=0,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                    "application_name": "aurora-treaty",
                    # see the module doc: the ledger's commit makes a claim durable
                    "options": "-c synchronous_commit=off"})
        await self._pool.open(wait=False)
        self._tasks = [asyncio.create_task(self._every(RECLAIM_EVERY_S, self.reclaim)),
                       asyncio.create_task(self._every(PRUNE_EVERY_S, self.prune)),
                       asyncio.create_task(self._settle_loop())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(TreatyStateUnavailable):
            await self._flush_settled()
        if self._pool is not None:
            await self._pool.close()

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        import psycopg
        import psycopg_pool

        assert self._pool is not None, "start() first"
        try:
            async with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise TreatyStateUnavailable(f"{type(exc).__name__}: {first}") from None

    async def _every(self, seconds: float, job: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except TreatyStateUnavailable as exc:
                log.warning("treaty state maintenance skipped: %s", exc)
            except Exception:  # a failed tick must not stop the loop
                log.exception("treaty state maintenance failed")

    # --- the claim ----------------------------------------------------------------------------

    async def admit(self, *, treaty_id: str, tenant_id: str, region: str, gpu_hours: float,
                    nonce: str, now: float) -> Admission:
        tenant = self.tenants[tenant_id]
        denied = standing(treaty_id=treaty_id, region=region, tenant=tenant, treaty=self.treaty)
        quota = self.treaty.quota
        async with self._conn() as conn:
            cursor = await conn.execute(
                "SELECT * FROM treaty_claim(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (self.treaty.treaty_id, tenant_id, nonce, now, self.lease_s, _exact(gpu_hours),
                 denied is None, _exact(quota.per_tenant_daily_gpu_hours),
                 _exact(quota.total_gpu_hours)))
            row = await cursor.fetchone()
        assert row is not None
        outcome, today, period, reservation_id, held_until = row
        if outcome == "replay":
            return Admission(True, None, None, in_flight_until=held_until)
        if outcome == "standing":
            assert denied is not None
            return Admission(False, denied, None)
        decision: Decision
        if outcome == "daily_cap":
            decision = daily_cap_denial(gpu_hours, self.treaty, float(today))
        elif outcome == "treaty_cap":
            decision = treaty_cap_denial(gpu_hours, self.treaty, float(period))
        else:
            self._treaty_usage = float(period) + gpu_hours
            return Admission(False, ALLOW, Reservation(tenant_id, utc_day(now), gpu_hours, now,
                                                       ref=int(reservation_id)))
        return Admission(False, decision, None)

    async def release(self, reservation: Reservation) -> None:
        if reservation.released or reservation.ref is None:
            return
        async with self._conn() as conn:
            await conn.execute("SELECT treaty_release(%s)", (reservation.ref,))
            await self._read_usage(conn)
        reservation.released = True

    def fresh(self, admitted_at: float, now: float) -> bool:
        # half the lease: what is left covers the append itself before anyone may reclaim
        return now - admitted_at < self.lease_s / 2

    async def settle(self, tenant_id: str, nonce: str, kind: str) -> None:
        """Queued and written in batches: until then the lease keeps the claim safe."""
        self._to_settle.append((tenant_id, nonce, kind == "order"))
        if len(self._to_settle) >= BATCH:
            self._settled.set()

    async def unrecorded(self, tenant_id: str, nonce: str) -> None:
        async with self._conn() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT at, reservation_id FROM treaty_nonces WHERE tenant_id = %s "
                "AND nonce = %s AND lease_until IS NOT NULL FOR UPDATE", (tenant_id, nonce))
            row = await cursor.fetchone()
            if row is not None:
                await conn.execute("SELECT treaty_resolve(%s, %s, %s, %s)",
                                   (tenant_id, nonce, row[0], row[1]))
                await self._read_usage(conn)

    async def _read_usage(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """After giving hours back (rare paths: no provider, a failed append): the gauge
        follows at once instead of overstating the usage until the next prune."""
        cursor = await conn.execute("SELECT used FROM treaty_usage WHERE scope = 'treaty' "
                                    "AND key = %s", (self.treaty.treaty_id,))
        row = await cursor.fetchone()
        if row is not None:
            self._treaty_usage = float(row[0])

    # --- background work ----------------------------------------------------------------------

    async def _settle_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), SETTLE_EVERY_S)
            self._settled.clear()
            try:
                await self._flush_settled()
            except TreatyStateUnavailable as exc:  # the leases settle them from the ledger
                log.warning("could not settle claims now: %s", exc)
            except Exception:
                log.exception("settling claims failed")

    async def _flush_settled(self) -> None:
        batch, self._to_settle = self._to_settle, []
        if not batch:
            return
        tenants, nonces, keeps = (list(column) for column in zip(*batch, strict=True))
        async with self._conn() as conn:
            await conn.execute(_SETTLE, (tenants, nonces, keeps))

    async def reclaim(self) -> int:
        """Resolve claims whose lease ran out (their replica died or lost the database)."""
        async with self._conn() as conn:
            cursor = await conn.execute("SELECT treaty_reclaim(%s, %s)", (time.time(), BATCH))
            row = await cursor.fetchone()
        count = int(row[0]) if row else 0
        if count:
            log.info("resolved %d claim(s) whose lease had run out", count)
        return count

    async def prune(self) -> None:
        now = time.time()
        async with self._conn() as conn:
            await conn.execute("SELECT treaty_prune(%s, %s, %s, %s)",
                               (self.treaty.treaty_id, now, self.treaty.quota.period_seconds,
                                BATCH * 10))
            cursor = await conn.execute(
                "SELECT (SELECT used FROM treaty_usage WHERE scope = 'treaty' AND key = %s), "
                "(SELECT count(*) FROM treaty_nonces WHERE at > %s)",
                (self.treaty.treaty_id, now - NONCE_TTL_SECONDS))
            row = await cursor.fetchone()
        if row is not None:
            self._treaty_usage = float(row[0] or 0)
            self._live_nonces = int(row[1])

    def treaty_usage(self) -> float:
        return self._treaty_usage

    def live_nonces(self) -> int:
        return self._live_nonces


async def usage(conn: psycopg.AsyncConnection[Any], treaty_id: str, tenant_id: str,
                day: str) -> tuple[Decimal, Decimal]:
    """(tenant's day, treaty's period) as the database counts them (tests, status)."""
    cursor = await conn.execute(
        "SELECT coalesce((SELECT used FROM treaty_usage WHERE scope = 'tenant_day' "
        "AND key = %s), 0), coalesce((SELECT used FROM treaty_usage WHERE scope = 'treaty' "
        "AND key = %s), 0)", (f"{tenant_id}/{day}", treaty_id))
    row = await cursor.fetchone()
    assert row is not None
    return Decimal(row[0]), Decimal(row[1])
