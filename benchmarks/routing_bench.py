"""Routing cost per order: ``aurora.routing.rank`` over the seven provider networks.

    .venv/bin/python benchmarks/routing_bench.py [--calls 20000]

Ranks one order over seven eligible offers whose providers all have a failure on record
(the worst case for the time-decayed success share: every score decays a tally), and
prints microseconds per call (best of five rounds of ``--calls``).
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aurora.config import RoutingPrefs  # noqa: E402
from aurora.routing import CircuitBreaker, Offer, rank  # noqa: E402

PROVIDERS = 7


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    offers = [Offer(id=f"p{i}", active=True, regions=("eu-west-1",), gpu_types=("A100",),
                    price_usd_per_gpu_hour=1.0 + i / 10, latency_ms=120.0 + 10 * i,
                    capacity_gpu_hours=300.0 + i, reputation=80.0) for i in range(PROVIDERS)]
    breaker = CircuitBreaker()
    for offer in offers:
        breaker.failure(offer.id, 0.0)
        try:
            breaker.success(offer.id, 0.5)
        except TypeError:  # a release before the time-decayed share (for comparisons)
            breaker.success(offer.id)  # type: ignore[call-arg]
    prefs = RoutingPrefs()
    rounds = timeit.repeat(lambda: rank(offers, region="eu-west-1", gpu_hours=1.0, prefs=prefs,
                                        breaker=breaker, now=1.0), number=args.calls, repeat=5)
    print(json.dumps({"providers": PROVIDERS, "calls": args.calls,
                      "us_per_rank": round(min(rounds) / args.calls * 1e6, 2)}))


if __name__ == "__main__":
    main()
