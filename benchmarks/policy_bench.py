"""vault-law decision latency with a million live nonces in the replay guard.

    .venv/bin/python benchmarks/policy_bench.py [--nonces 1000000] [--orders 200000]

Measures ``PolicyState.admit`` (replay check + decision + reservation, the
atomic step the bridge times into ``policy_decision_ms``) per call with
perf_counter_ns, and prints p50/p99/p99.9/max in milliseconds plus the memory
the guard takes.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aurora.config import load_tenants  # noqa: E402
from aurora.home import Home  # noqa: E402
from aurora.policy.state import PolicyState  # noqa: E402
from aurora.treaty import load_treaty  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nonces", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=200_000)
    args = parser.parse_args()
    home = Home(Path(__file__).resolve().parents[1])
    treaty = load_treaty(home)
    tenants = {t.id: t for t in load_tenants(home)}
    ids = [t for t in tenants if tenants[t].reputation >= treaty.min_tenant_reputation]
    now = time.time()
    before = rss_mb()
    state = PolicyState(treaty, tenants)
    t0 = time.perf_counter()
    # decisions and denials leave nonces but no quota use, as most of a day's orders would
    state.restore(((("decision", ids[i % len(ids)], f"live-{i:09d}", None,
                     now - 3600 + i * 3600 / args.nonces)) for i in range(args.nonces)), now)
    load_s = time.perf_counter() - t0
    assert state.live_nonces == args.nonces
    samples = []
    clock = time.perf_counter_ns
    for i in range(args.orders):
        tenant = ids[i % len(ids)]
        region = "eu-west-1" if i % 10 else "ap-southeast-1"  # some denials too
        start = clock()
        result = state.admit(treaty_id=treaty.treaty_id, tenant_id=tenant, region=region,
                             gpu_hours=0.0001, nonce=f"new-{i:09d}", now=now)
        samples.append(clock() - start)
        if result.reservation is not None:  # keep caps from ending the run early
            state.release(result.reservation)
        if i % 50 == 0:  # and some replays
            state.admit(treaty_id=treaty.treaty_id, tenant_id=tenant, region=region,
                        gpu_hours=0.1, nonce=f"live-{i:09d}", now=now)
    samples.sort()

    def q(p: float) -> float:
        return samples[min(len(samples) - 1, int(p * len(samples)))] / 1e6

    print(json.dumps({
        "live_nonces": state.live_nonces, "orders": args.orders,
        "restore_seconds": round(load_s, 2),
        "p50_ms": round(q(0.50), 4), "p99_ms": round(q(0.99), 4),
        "p999_ms": round(q(0.999), 4), "max_ms": round(samples[-1] / 1e6, 3),
        "rss_growth_mb": round(rss_mb() - before, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
