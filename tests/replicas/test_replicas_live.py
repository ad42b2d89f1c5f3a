"""Bridge replicas on one order port sharing a real PostgreSQL: the faults of issue 9.

Real processes (`aurora up --replicas 4`, SO_REUSEPORT), real signed orders over real
HTTP, a real PostgreSQL cluster (initdb + postgres on a free port, stopped by PID).
Every load is bounded in count and time; nothing asserts on speed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from aurora import procs
from aurora.config import load_stack
from aurora.home import Home
from aurora.keys import load_private_key
from aurora.policy.state import utc_day
from aurora.stack import UpOptions, down, replica_name, up
from aurora.wire import new_order, sign_order
from support import PgCluster, make_home

TREATY = "AURORA-AKASH-001"
REPLICAS = 4
LEASE = "3s"  # a killed replica's claims are resolved within seconds here (60s by default)


@dataclass
class Stack:
    home: Home
    url: str  # database_url
    order_url: str = ""
    keys: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        stack = load_stack(self.home)
        self.order_url = f"{stack.bridge_url}/aurora/order"
        self.metrics = [stack.url(stack.replica_metrics(k), "/metrics")
                        for k in range(1, REPLICAS + 1)]

    def order(self, tenant: str = "tenant-42", gpu_hours: float = 0.1) -> dict[str, Any]:
        if tenant not in self.keys:
            self.keys[tenant] = load_private_key(self.home.tenant_key(tenant))
        return sign_order(new_order(treaty_id=TREATY, tenant_id=tenant, region="eu-west-1",
                                    gpu_hours=gpu_hours), self.keys[tenant])

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def usage_today(self, tenant: str) -> Decimal:
        rows = self.sql("SELECT used FROM treaty_usage WHERE scope = 'tenant_day' AND key = %s",
                        (f"{tenant}/{utc_day(time.time())}",))
        return Decimal(rows[0][0]) if rows else Decimal(0)

    def ledger_orders(self, tenant: str) -> dict[str, Decimal]:
        """nonce -> GPU-hours of every filled order of ``tenant`` in the log."""
        rows = self.sql("SELECT subject, payload FROM audit_log WHERE kind = 'order' "
                        "AND tenant_id = %s", (tenant,))
        return {str(nonce): Decimal(repr(json.loads(payload)["data"]["order"]["gpu_hours"]))
                for nonce, payload in rows}

    def replica_counts(self, outcome: str) -> list[float]:
        counts = []
        for url in self.metrics:
            total = 0.0
            for line in httpx.get(url, timeout=5).text.splitlines():
                if line.startswith("treaty_requests_total{") and f'outcome="{outcome}"' in line:
                    total += float(line.rsplit(" ", 1)[1])
            counts.append(total)
        return counts

    def verify_audit(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "aurora", "ledger", "verify-audit"],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "AURORA_HOME": str(self.home.root)})


def _start(tmp: Path, url: str, *, lift_caps: bool = False) -> Stack:
    home = Home(make_home(tmp / "home", database_url=url, treaty_lease=LEASE))
    if lift_caps:  # a long load must not end on the daily caps
        path = home.root / "templates" / "aurora-treaty-akash.json"
        treaty = json.loads(path.read_text())
        treaty["quota"].update(total_gpu_hours=1e9, per_tenant_daily_gpu_hours=1e9)
        path.write_text(json.dumps(treaty))
    try:
        up(home, UpOptions(replicas=REPLICAS, traffic=False, observatory=False, backups=False,
                           zero_delay=True))
    except BaseException:
        down(home)  # a replica that fails to start must not leave the others running
        raise
    return Stack(home, url)


@pytest.fixture
def replicas(request: pytest.FixtureRequest, tmp_path: Path, pg_ledger_url: str
             ) -> Iterator[Stack]:
    stack = _start(tmp_path, pg_ledger_url, lift_caps="killed" in request.node.name)
    try:
        yield stack
    finally:
        down(stack.home)


async def _post_all(url: str, bodies: list[bytes], *, connections: int = 200
                    ) -> list[httpx.Response | Exception]:
    """Every body at once, each on its own connection (so the kernel spreads them)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def one(body: bytes) -> httpx.Response | Exception:
            try:
                return await client.post(url, content=body,
                                         headers={"content-type": "application/json"})
            except httpx.HTTPError as exc:
                return exc
        return await asyncio.gather(*(one(b) for b in bodies))


def _statuses(answers: list[httpx.Response | Exception]) -> dict[object, int]:
    out: dict[object, int] = {}
    for a in answers:
        key: object = (a.status_code, a.json().get("error")) if isinstance(a, httpx.Response) \
            else type(a).__name__
        out[key] = out.get(key, 0) + 1
    return out


def test_one_order_sent_200_times_over_4_replicas_is_filled_once(replicas: Stack) -> None:
    forged = replicas.order(gpu_hours=0.5)
    forged["gpu_hours"] = 50.0  # no longer what the tenant signed
    answers = asyncio.run(_post_all(replicas.order_url, [json.dumps(forged).encode()] * 8))
    assert _statuses(answers) == {(401, "signature"): 8}
    # unauthenticated input wrote nothing: no nonce, no usage
    assert replicas.sql("SELECT count(*) FROM treaty_nonces")[0][0] == 0
    assert replicas.sql("SELECT count(*) FROM treaty_usage WHERE used <> 0")[0][0] == 0
    body = json.dumps(replicas.order(gpu_hours=0.5)).encode()
    answers = asyncio.run(_post_all(replicas.order_url, [body] * 200))
    assert _statuses(answers) == {(200, None): 1, (409, "replay"): 199}
    # spread over every replica: each one answered some of the replays
    assert all(count > 0 for count in replicas.replica_counts("replay"))
    assert len(replicas.ledger_orders("tenant-42")) == 1
    assert replicas.sql("SELECT count(*) FROM treaty_nonces")[0][0] == 1


def test_200_orders_over_replicas_never_overrun_the_daily_cap(replicas: Stack) -> None:
    # 200 x 0.7 = 140 GPU-h asked of a 100 GPU-h daily cap of which 30 are spent already
    first = asyncio.run(_post_all(replicas.order_url,
                                  [json.dumps(replicas.order("helix-bio", 10.0)).encode()
                                   for _ in range(3)]))
    assert _statuses(first) == {(200, None): 3}
    bodies = [json.dumps(replicas.order("helix-bio", 0.7)).encode() for _ in range(200)]
    answers = asyncio.run(_post_all(replicas.order_url, bodies))
    statuses = _statuses(answers)
    assert set(statuses) == {(200, None), (403, "policy")}, statuses
    acked = Decimal(30) + Decimal("0.7") * statuses[(200, None)]
    assert acked <= Decimal(100)
    assert statuses[(200, None)] == 100  # (100 - 30) / 0.7: filled to the cap, not beyond
    assert replicas.usage_today("helix-bio") == acked
    assert sum(replicas.ledger_orders("helix-bio").values()) == acked


class Load:
    """Orders from several tenants on 16 connections until stopped; records every 200."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.acked: dict[str, tuple[str, float, int]] = {}  # nonce -> (tenant, hours, leaf)
        self.statuses: dict[object, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.tenants = ["tenant-42", "orion-labs", "quanta-ai"]

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=15) as client:
            await asyncio.gather(*(self._worker(client, i) for i in range(16)))

    async def _worker(self, client: httpx.AsyncClient, i: int) -> None:
        rng = random.Random(i)
        while not self._stop.is_set():
            tenant = self.tenants[i % len(self.tenants)]
            hours = rng.choice((0.1, 0.2, 0.3))
            order = self.stack.order(tenant, hours)
            try:
                response = await client.post(self.stack.order_url, json=order)
            except httpx.HTTPError as exc:
                key: object = type(exc).__name__
            else:
                key = (response.status_code, response.json().get("error"))
                if response.status_code == 200:
                    leaf = int(response.json()["receipt"]["leaf_index"])
                    self.acked[order["nonce"]] = (tenant, hours, leaf)
            self.statuses[key] = self.statuses.get(key, 0) + 1

    def filled(self) -> int:
        return self.statuses.get((200, None), 0)


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _check_books(stack: Stack, load: Load) -> None:
    """Every acknowledged order is in the log; usage == what the log holds, per tenant."""
    for tenant in load.tenants:
        in_log = stack.ledger_orders(tenant)
        acked = {n: h for n, (t, h, _) in load.acked.items() if t == tenant}
        assert set(acked) <= set(in_log), "an acknowledged order is missing from the log"
        # orders recorded by a replica killed before it answered are in the log too
        # (and count), never the other way round
        assert stack.usage_today(tenant) == sum(in_log.values(), Decimal(0))
    leaves = {leaf for _, _, leaf in load.acked.values()}
    rows = stack.sql("SELECT seq, subject FROM audit_log WHERE seq = ANY(%s)", (list(leaves),))
    by_leaf = {int(seq): str(nonce) for seq, nonce in rows}
    assert all(by_leaf.get(leaf) == nonce for nonce, (_, _, leaf) in load.acked.items())


def _pending(stack: Stack) -> int:
    return int(stack.sql("SELECT count(*) FROM treaty_nonces WHERE lease_until IS NOT NULL")
               [0][0])


@pytest.mark.timeout(600)
def test_replicas_killed_under_load_lose_nothing_acknowledged(replicas: Stack) -> None:
    rng = random.Random(9)
    home = replicas.home
    kills = 0
    with Load(replicas) as load:
        _wait(lambda: load.filled() > 20, 60, "the first orders")
        for _ in range(10):
            time.sleep(rng.uniform(0.2, 1.2))  # a random moment of the load
            k = rng.randint(1, REPLICAS)
            record = procs.read_pid(home, replica_name(k))
            assert record is not None
            os.kill(record.pid, signal.SIGKILL)
            kills += 1
            before = load.filled()
            # the survivors keep answering while the dead one is down
            _wait(lambda before=before: load.filled() > before + 5, 60,
                  "the surviving replicas to keep filling orders")
            audit = replicas.verify_audit()
            assert audit.returncode == 0, audit.stdout + audit.stderr
            # bring replica k back without waiting: the next kill may hit one still starting
            argv = [sys.executable, "-m", "aurora", "bridge", "--replica", str(k)]
            procs.spawn(home, replica_name(k), argv)
    assert kills == 10
    assert load.filled() > 100
    assert not any(isinstance(key, tuple) and key[0] == 500 for key in load.statuses)
    # the dead replicas' claims are resolved by the others once their lease runs out
    _wait(lambda: _pending(replicas) == 0, 60, "lapsed claims to be resolved")
    _check_books(replicas, load)
    audit = replicas.verify_audit()
    assert audit.returncode == 0, audit.stdout + audit.stderr


@pytest.fixture
def own_cluster() -> Iterator[PgCluster]:
    """A cluster of this test's own: it is stopped and restarted mid-test."""
    cluster = PgCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.timeout(600)
def test_postgres_restarted_under_load_503_then_recovery(tmp_path: Path,
                                                         own_cluster: PgCluster) -> None:
    from aurora.db import cluster as pg

    stack = _start(tmp_path, own_cluster.database(initialised=True), lift_caps=True)
    try:
        with Load(stack) as load:
            _wait(lambda: load.filled() > 20, 60, "the first orders")
            assert pg.stop(own_cluster.home)
            filled_when_down = load.filled()
            seen_503 = lambda: load.statuses.get((503, "ledger"), 0) > 20  # noqa: E731
            _wait(seen_503, 60, "503 ledger answers while PostgreSQL is down")
            time.sleep(1.0)
            pg.start(own_cluster.home, own_cluster.root / "data", own_cluster.port, fast=True)
            # the bridges reconnect by themselves
            _wait(lambda: load.filled() > filled_when_down + 50, 90, "orders filled again")
        assert not any(isinstance(key, tuple) and key[0] == 500 for key in load.statuses)
        assert set(load.statuses) <= {(200, None), (503, "ledger"), (403, "policy"),
                                      (503, "no_provider")}, load.statuses
        _wait(lambda: _pending(stack) == 0, 60, "claims made before the outage to resolve")
        _check_books(stack, load)  # every 200 is durable: it is in the log after the restart
        audit = stack.verify_audit()
        assert audit.returncode == 0, audit.stdout + audit.stderr
    finally:
        down(stack.home)
