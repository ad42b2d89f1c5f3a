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
    breaker.success("p", 12.6)
    assert breaker.allows("p", 12.7)
    assert breaker.open_circuits(12.7) == []


def test_open_circuit_removes_the_candidate() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=60)
    breaker.failure("a", 0.0)
    ranked = rank([offer("a"), offer("b")], region="eu-west-1", gpu_hours=1,
                  prefs=RoutingPrefs(), breaker=breaker, now=1.0)
    assert [c.provider_id for c in ranked] == ["b"]


def test_one_transient_error_among_many_successes_barely_moves_the_ratio() -> None:
    breaker = CircuitBreaker()
    for t in range(200):
        breaker.success("p", t * 0.1)
    breaker.failure("p", 20.0)
    assert 0.99 < breaker.success_ratio("p", 20.0) < 1.0


def test_a_provider_that_fails_often_is_rated_by_its_failure_share() -> None:
    breaker = CircuitBreaker(threshold=1000)
    for i in range(2000):
        (breaker.failure if i % 5 == 0 else breaker.success)("p", i * 0.05)
    assert abs(breaker.success_ratio("p", 100.0) - 0.8) < 0.02


def test_a_demoted_provider_recovers_without_traffic() -> None:
    # Errors demote "a" below "b"; with no attempts, "a" must win its place back
    # (an attempt-only average kept it demoted for good, so replicas routed by accident).
    offers = [offer("a", latency_ms=145.0), offer("b", latency_ms=150.0)]
    breaker = CircuitBreaker(threshold=100)  # the share alone, not the open circuit
    for t in range(5):
        breaker.failure("a", t * 0.1)

    def order(now: float) -> list[str]:
        return [c.provider_id for c in rank(offers, region="eu-west-1", gpu_hours=1,
                                            prefs=RoutingPrefs(), breaker=breaker, now=now)]

    assert order(1.0) == ["b", "a"]
    assert breaker.success_ratio("a", 1.0) < 0.95
    assert order(600.0) == ["a", "b"]
    assert breaker.success_ratio("a", 600.0) > 0.999


def test_errors_at_a_healthy_rate_leave_the_score_alone() -> None:
    # Replicas that saw different transient errors must still rank alike (near a tie any
    # per-replica bias decides, and identical canary tracks then route differently).
    clean, noisy = CircuitBreaker(), CircuitBreaker()
    for i in range(300):
        clean.success("a", i * 0.2)
        (noisy.failure("a", i * 0.2) if i % 100 == 0 else noisy.success("a", i * 0.2))
    noisy.failure("a", 60.0)
    assert noisy.success_ratio("a", 60.0) < clean.success_ratio("a", 60.0)
    assert noisy.reliability("a", 60.0) == clean.reliability("a", 60.0) == 1.0
    fresh = CircuitBreaker()
    fresh.failure("a", 0.0)  # one error with no history at all
    assert fresh.reliability("a", 0.0) == 1.0


def test_a_flaky_provider_loses_its_availability_in_proportion() -> None:
    breaker = CircuitBreaker(threshold=1000)
    for i in range(1000):
        (breaker.failure if i % 4 == 0 else breaker.success)("p", i * 0.05)
    assert abs(breaker.reliability("p", 50.0) - 0.75 / 0.95) < 0.03
