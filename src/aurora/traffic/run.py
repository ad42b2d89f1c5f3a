"""Send the planned orders to the bridge, open loop, over keep-alive HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp

from aurora.config import load_stack, load_workloads
from aurora.durations import parse_duration
from aurora.home import Home
from aurora.keys import Ed25519PrivateKey, load_private_key
from aurora.traffic.plan import BudgetBook, PlannedOrder, TrafficPlan
from aurora.treaty import load_treaty
from aurora.wire import new_order, sign_order

# Open loop: arrivals never wait for answers, but memory must stay bounded.
MAX_IN_FLIGHT = 1000


@dataclass
class TrafficStats:
    planned: int = 0
    sent: int = 0
    paced: int = 0
    overload: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    gpu_hours_filled: float = 0.0
    acked: dict[str, float] = field(default_factory=dict)  # nonce -> GPU-hours, every 200
    started: float = field(default_factory=time.time)

    def quantile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def to_json(self) -> dict[str, object]:
        return {
            "planned": self.planned, "sent": self.sent, "paced_out": self.paced,
            "overload_skipped": self.overload, "statuses": dict(self.statuses),
            "gpu_hours_filled": round(self.gpu_hours_filled, 2),
            "latency_ms_p50": self.quantile(0.5), "latency_ms_p99": self.quantile(0.99),
            "seconds": round(time.time() - self.started, 1),
        }


def _day(now: datetime) -> tuple[str, float]:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.strftime("%Y-%m-%d"), (now - midnight).total_seconds() / 86400.0


STOP_CHECK_S = 0.2  # how soon a stop request is noticed between two far-apart orders


async def _wait_until(loop: asyncio.AbstractEventLoop, when: float,
                      stop: Callable[[], bool] | None) -> bool:
    """Sleep until loop time ``when``; False as soon as ``stop()`` says so."""
    while (delay := when - loop.time()) > 0:
        if stop is not None and stop():
            return False
        await asyncio.sleep(delay if stop is None else min(delay, STOP_CHECK_S))
    return stop is None or not stop()


async def run_traffic(
    home: Home,
    *,
    rate: float,
    duration: float | None = None,
    count: int | None = None,
    seed: int | None = None,
    pace: bool = True,
    tenants: list[str] | None = None,
    on_progress: Callable[[TrafficStats], None] | None = None,
    stats: TrafficStats | None = None,
    stop: Callable[[], bool] | None = None,
) -> TrafficStats:
    """Send the workloads' orders at ``rate``; ``stats`` (if given) is filled as they are
    answered, and ``stop`` ends the run when it returns True (in-flight orders finish)."""
    stack = load_stack(home)
    workloads = load_workloads(home)
    treaty = load_treaty(home)
    plan = TrafficPlan(workloads, rate, seed=seed, tenants=tenants)
    keys: dict[str, Ed25519PrivateKey] = {
        w.tenant: load_private_key(home.tenant_key(w.tenant)) for w in workloads.tenants
        if tenants is None or w.tenant in tenants
    }
    ttl = timedelta(seconds=parse_duration(workloads.order_ttl))
    url = f"{stack.bridge_url}/aurora/order"
    book = BudgetBook()
    stats = TrafficStats() if stats is None else stats
    in_flight: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    async def send(session: aiohttp.ClientSession, planned: PlannedOrder, day: str) -> None:
        order = sign_order(new_order(treaty_id=treaty.treaty_id, tenant_id=planned.tenant_id,
                                     region=planned.region, gpu_hours=planned.gpu_hours, ttl=ttl),
                           keys[planned.tenant_id])
        t0 = time.perf_counter()
        try:
            async with session.post(url, data=json.dumps(order),
                                    headers={"content-type": "application/json"}) as response:
                body = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            stats.statuses[f"error:{type(exc).__name__}"] += 1
            return
        stats.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
        stats.statuses[str(status)] += 1
        if status == 200:
            stats.acked[order["nonce"]] = planned.gpu_hours
            book.add(planned.tenant_id, day, planned.gpu_hours)
            stats.gpu_hours_filled += planned.gpu_hours
        elif status == 403:
            try:
                reason = json.loads(body).get("reason")
            except ValueError:
                reason = None
            if reason in ("daily_cap", "treaty_cap"):
                book.mark_exhausted(planned.tenant_id, day)

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=256)
    last_report = loop.time()
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        start = loop.time()
        while True:
            planned = plan.next()
            if duration is not None and planned.at > duration:
                break
            if count is not None and stats.sent >= count:
                break
            if stop is not None and stop():
                break
            stats.planned += 1
            if not await _wait_until(loop, start + planned.at, stop):
                break
            now = datetime.now(UTC)
            day, fraction = _day(now)
            if not book.allows(plan.workload(planned.tenant_id), day, fraction,
                               planned.gpu_hours, pace=pace):
                stats.paced += 1
                continue
            if len(in_flight) >= MAX_IN_FLIGHT:
                stats.overload += 1
                continue
            task = asyncio.create_task(send(session, planned, day))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            stats.sent += 1
            if on_progress is not None and loop.time() - last_report >= 2.0:
                last_report = loop.time()
                on_progress(stats)
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
    if on_progress is not None:
        on_progress(stats)
    return stats
