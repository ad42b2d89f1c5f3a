"""Candidate filtering, scoring and the circuit breaker."""

from __future__ import annotations

from aurora.config import RoutingPrefs, RoutingWeights
from aurora.routing import CircuitBreaker, Offer, eligible, rank


def offer(pid: str, **kw) -> Offer:
    base = dict(id=pid, active=True, regions=("eu-west-1",), gpu_types=("A100", "H100"),
                price_usd_per_gpu_hour=1.5, latency_ms=150.0, capacity_gpu_hours=100.0,
                reputation=85.0)
    base.update(kw)
    return Offer(**base)


def test_filters_every_constraint() -> None:
    prefs = RoutingPrefs(gpu_types=["H100"], max_price_usd_per_gpu_hour=2.0, max_latency_ms=300,
                         min_provider_reputation=70)
    assert eligible(offer("ok"), "eu-west-1", 1.0, prefs) == "H100"
    assert eligible(offer("down", active=False), "eu-west-1", 1.0, prefs) is None
    assert eligible(offer("far", regions=("us-west-2",)), "eu-west-1", 1.0, prefs) is None
    assert eligible(offer("gpu", gpu_types=("RTX4090",)), "eu-west-1", 1.0, prefs) is None
    assert eligible(offer("slow", latency_ms=301), "eu-west-1", 1.0, prefs) is None
    assert eligible(offer("dear", price_usd_per_gpu_hour=2.01), "eu-west-1", 1.0, prefs) is None
    assert eligible(offer("shady", reputation=69), "eu-west-1", 1.0, prefs) is None
    assert eligible(offer("full", capacity_gpu_hours=0.5), "eu-west-1", 1.0, prefs) is None


def test_gpu_type_follows_the_tenants_preference_order() -> None:
    assert eligible(offer("x"), "eu-west-1", 1, RoutingPrefs(gpu_types=["H100", "A100"])) == "H100"
    assert eligible(offer("x"), "eu-west-1", 1, RoutingPrefs(gpu_types=["A100", "H100"])) == "A100"


def test_weights_decide_the_order() -> None:
    offers = [offer("cheap", price_usd_per_gpu_hour=0.5, latency_ms=300.0),
              offer("fast", price_usd_per_gpu_hour=2.5, latency_ms=100.0)]
    breaker = CircuitBreaker()
    by_price = RoutingPrefs(weights=RoutingWeights(price=1, latency=0, reputation=0,
                                                   availability=0))
    by_latency = RoutingPrefs(weights=RoutingWeights(price=0, latency=1, reputation=0,
                                                     availability=0))
    assert [c.provider_id for c in rank(offers, region="eu-west-1", gpu_hours=1, prefs=by_price,
                                        breaker=breaker, now=0)] == ["cheap", "fast"]
    assert [c.provider_id for c in rank(offers, region="eu-west-1", gpu_hours=1,
                                        prefs=by_latency, breaker=breaker,
                                        now=0)] == ["fast", "cheap"]


def test_ties_are_broken_by_id_for_a_stable_order() -> None:
    offers = [offer("b"), offer("a"), offer("c")]
    ranked = rank(offers, region="eu-west-1", gpu_hours=1, prefs=RoutingPrefs(),
                  breaker=CircuitBreaker(), now=0)
    assert [c.provider_id for c in ranked] == ["a", "b", "c"]


def test_breaker_opens_after_repeated_failures_and_probes_after_cooldown() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=10.0)
    for t in range(3):
        assert breaker.allows("p", float(t))
        breaker.failure("p", float(t))
    assert not breaker.allows("p", 5.0)
    assert breaker.open_circuits(5.0) == ["p"]
    assert breaker.allows("p", 12.5)  # half-open: one probe may go
    breaker.attempt("p", 12.5)
    assert not breaker.allows("p", 12.6)  # ... but only one at a time
    breaker.success("p")
    assert breaker.allows("p", 12.7)
    assert breaker.open_circuits(12.7) == []


def test_open_circuit_removes_the_candidate() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=60)
    breaker.failure("a", 0.0)
    ranked = rank([offer("a"), offer("b")], region="eu-west-1", gpu_hours=1,
                  prefs=RoutingPrefs(), breaker=breaker, now=1.0)
    assert [c.provider_id for c in ranked] == ["b"]
