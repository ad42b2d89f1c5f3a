"""Claims per second on the shared treaty state in PostgreSQL: the serial point of one treaty.

    .venv/bin/python benchmarks/policy_pg_bench.py [--processes 1,2,4] [--seconds 5]

Every claim takes the treaty's usage row ``FOR UPDATE`` (see aurora.policy.pgstate), so
all replicas' claims on one treaty pass one at a time; this measures how many pass per
second. A throwaway *durable* cluster (as ``aurora db up``) with the schema; for each
count P, P processes — each one ``PgTreatyState`` exactly as a bridge replica holds it
(its own pool of 8 connections, 16 claims in flight) — claim fresh nonces for S seconds
over the shipped tenants, after a 1 s warm-up. Printed per P: claims/s, the claim's p50 /
p99 as a replica sees it (``policy_decision_ms``), and the server's CPU per claim (from
``/proc`` of the cluster's processes), so a figure can be read against how busy the
machine was: on a 2-core machine the client processes share the cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

sys.path.insert(0, str(REPO / "benchmarks"))

from bridge_bench import (  # noqa: E402  (the durable throwaway cluster, by PID)
    postgres,
    postmaster_pid,
    server_cpu_seconds,
)

from aurora.config import load_tenants  # noqa: E402
from aurora.home import Home  # noqa: E402
from aurora.policy.pgstate import PgTreatyState  # noqa: E402
from aurora.treaty import load_treaty  # noqa: E402

IN_FLIGHT = 16
HOURS = 0.0001  # small enough that no cap ends the run
REGION = "eu-west-1"  # allowed by the shipped treaty


async def _claims(url: str, tag: str, seconds: float, warmup: float) -> dict[str, object]:
    home = Home(REPO)
    treaty = load_treaty(home)
    tenants = {t.id: t for t in load_tenants(home)}
    ids = [t for t in tenants if tenants[t].reputation >= treaty.min_tenant_reputation]
    state = PgTreatyState(url, treaty, tenants, lease_s=60.0)
    await state.start()
    latencies: list[float] = []
    counter = 0
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def claimer(k: int) -> None:
        nonlocal counter
        while (now := time.perf_counter()) < stop_at:
            counter += 1
            tenant = ids[counter % len(ids)]
            answer = await state.admit(treaty_id=treaty.treaty_id, tenant_id=tenant,
                                       region=REGION, gpu_hours=HOURS,
                                       nonce=f"{tag}-{k}-{counter}", now=time.time())
            assert answer.reservation is not None, answer
            if now >= measure_from:
                latencies.append(time.perf_counter() - now)

    try:
        await asyncio.gather(*(claimer(k) for k in range(IN_FLIGHT)))
    finally:
        await state.close()
    latencies.sort()
    return {"claims": len(latencies),
            "p50_ms": latencies[len(latencies) // 2] * 1e3 if latencies else None,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3 if latencies else None}


def _process(url: str, tag: str, seconds: float, warmup: float,
             out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(asyncio.run(_claims(url, tag, seconds, warmup)))


def run(url: str, postmaster: int, processes: int, seconds: float) -> dict[str, object]:
    warmup = 1.0
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    workers = [multiprocessing.Process(target=_process,
                                       args=(url, f"p{processes}-{i}", seconds, warmup, queue),
                                       daemon=True)  # they end with this process
               for i in range(processes)]
    for worker in workers:
        worker.start()
    time.sleep(warmup)
    cpu0 = server_cpu_seconds(postmaster)
    time.sleep(seconds)
    # the replicas' pools opened their backends during the warm-up: counted both times
    server_cpu = server_cpu_seconds(postmaster) - cpu0
    results = [queue.get(timeout=seconds + 60) for _ in workers]
    for worker in workers:
        worker.join()
    claims = sum(int(r["claims"]) for r in results)
    p50s = [r["p50_ms"] for r in results if r["p50_ms"] is not None]
    p99s = [r["p99_ms"] for r in results if r["p99_ms"] is not None]
    return {"processes": processes, "in_flight": processes * IN_FLIGHT, "seconds": seconds,
            "claims_per_s": round(claims / seconds), "p50_ms": round(max(p50s), 2),
            "p99_ms": round(max(p99s), 2),
            "server_cpu_ms_per_claim": round(server_cpu * 1e3 / claims, 3) if claims else None,
            "load": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", default="1,2,4",
                        help="comma-separated counts of replica-like processes")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    # a timeout's SIGTERM still stops the cluster (the finally below), by PID
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory() as tmp, postgres(True, Path(tmp)) as url:
        postmaster = postmaster_pid(url)
        print(f"{os.cpu_count()} CPUs, durable cluster: {url}", flush=True)
        for processes in (int(p) for p in args.processes.split(",")):
            print(json.dumps(run(url, postmaster, processes, args.seconds)), flush=True)

if __name__ == "__main__":
    main()
