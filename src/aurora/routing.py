"""Which providers may take an order, and in which order to try them. Pure.

Candidates must serve the order's region and one of the tenant's GPU types,
be active, under the tenant's latency and price ceilings, at or above its
minimum provider reputation, have the capacity, and not be cut off by the
circuit breaker. Survivors are scored by the tenant's weights over
normalised price, latency, reputation and availability (capacity headroom
times recent reliability), best first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aurora.config import RoutingPrefs


@dataclass(frozen=True)
class Offer:
    """One provider as the market feed shows it now."""

    id: str
    active: bool
    regions: tuple[str, ...]
    gpu_types: tuple[str, ...]
    price_usd_per_gpu_hour: float
    latency_ms: float
    capacity_gpu_hours: float
    reputation: float

    @classmethod
    def from_feed(cls, item: Mapping[str, Any]) -> Offer:
        return cls(
            id=str(item["id"]),
            active=bool(item["active"]),
            regions=tuple(item["regions"]),
            gpu_types=tuple(item["gpu_types"]),
            price_usd_per_gpu_hour=float(item["price_usd_per_gpu_hour"]),
            latency_ms=float(item["latency_ms"]),
            capacity_gpu_hours=float(item["capacity_gpu_hours"]),
            reputation=float(item["reputation"]),
        )


@dataclass(frozen=True)
class Candidate:
    provider_id: str
    gpu_type: str
    score: float


# A provider's recent success share: an attempt's weight halves every SUCCESS_HALF_LIFE_S
# seconds, over a prior of SUCCESS_PRIOR attempts that succeeded. Without the decay a
# provider demoted by one transient error got no more attempts, so it never recovered.
SUCCESS_HALF_LIFE_S = 60.0
SUCCESS_PRIOR = 20.0
# At or above this share a provider counts as fully available; below it, in proportion.
# Errors at the rate of a healthy network (well under 5 %) then leave every replica's
# score the same, so replicas route alike instead of each by its own accidents (the
# capacity term keeps close providers near a tie, where any per-replica bias decides).
HEALTHY_SHARE = 0.95


@dataclass(slots=True)
class _Tally:
    """Time-decayed counts of one provider's attempts, as of ``at``."""

    ok: float
    total: float
    at: float

    def ratio(self, now: float) -> float:
        if self.ok == self.total:  # no failure counted: the share is 1 however it decays
            return 1.0
        factor = math.exp2(-max(0.0, now - self.at) / SUCCESS_HALF_LIFE_S)
        return (self.ok * factor + SUCCESS_PRIOR) / (self.total * factor + SUCCESS_PRIOR)

    def count(self, now: float, *, ok: bool) -> None:
        factor = math.exp2(-max(0.0, now - self.at) / SUCCESS_HALF_LIFE_S)
        self.ok = self.ok * factor + ok
        self.total = self.total * factor + 1.0
        self.at = max(now, self.at)


@dataclass
class CircuitBreaker:
    """Stops sending to a provider after repeated failures, then lets one probe through.

    Closed: all traffic. After ``threshold`` consecutive failures: open for
    ``cooldown`` seconds (no traffic). Then half-open: one order may try; its
    success closes the breaker, its failure opens it again.
    """

    threshold: int = 3
    cooldown: float = 10.0
    _failures: dict[str, int] = field(default_factory=dict)
    _open_until: dict[str, float] = field(default_factory=dict)
    _probing: set[str] = field(default_factory=set)
    _tallies: dict[str, _Tally] = field(default_factory=dict)

    def allows(self, provider_id: str, now: float) -> bool:
        until = self._open_until.get(provider_id)
        if until is None:
            return True
        return now >= until and provider_id not in self._probing

    def attempt(self, provider_id: str, now: float) -> None:
        if provider_id in self._open_until and now >= self._open_until[provider_id]:
            self._probing.add(provider_id)

    def success(self, provider_id: str, now: float) -> None:
        self._failures.pop(provider_id, None)
        self._open_until.pop(provider_id, None)
        self._probing.discard(provider_id)
        self._count(provider_id, now, ok=True)

    def failure(self, provider_id: str, now: float) -> None:
        count = self._failures.get(provider_id, 0) + 1
        self._failures[provider_id] = count
        self._probing.discard(provider_id)
        self._count(provider_id, now, ok=False)
        if count >= self.threshold:
            self._open_until[provider_id] = now + self.cooldown

    def _count(self, provider_id: str, now: float, *, ok: bool) -> None:
        self._tallies.setdefault(provider_id, _Tally(0.0, 0.0, now)).count(now, ok=ok)

    def success_ratio(self, provider_id: str, now: float) -> float:
        """Share of recent attempts that succeeded (recent: see ``SUCCESS_HALF_LIFE_S``;
        1.0 when nothing is known)."""
        tally = self._tallies.get(provider_id)
        return 1.0 if tally is None else tally.ratio(now)

    def reliability(self, provider_id: str, now: float) -> float:
        """The availability factor: 1.0 for a healthy share, falling in proportion below."""
        return min(1.0, self.success_ratio(provider_id, now) / HEALTHY_SHARE)

    def open_circuits(self, now: float) -> list[str]:
        return sorted(p for p, until in self._open_until.items() if now < until)


def _gpu_type(offer: Offer, prefs: RoutingPrefs) -> str | None:
    if prefs.gpu_types is None:
        return offer.gpu_types[0]
    for wanted in prefs.gpu_types:  # the tenant's order of preference
        if wanted in offer.gpu_types:
            return wanted
    return None


def eligible(offer: Offer, region: str, gpu_hours: float, prefs: RoutingPrefs) -> str | None:
    """The GPU type this offer would run the order on, or None if it may not take it."""
    if not offer.active or region not in offer.regions:
        return None
    if offer.capacity_gpu_hours < gpu_hours:
        return None
    if prefs.max_latency_ms is not None and offer.latency_ms > prefs.max_latency_ms:
        return None
    price_cap = prefs.max_price_usd_per_gpu_hour
    if price_cap is not None and offer.price_usd_per_gpu_hour > price_cap:
        return None
    if offer.reputation < prefs.min_provider_reputation:
        return None
    return _gpu_type(offer, prefs)


def rank(
    offers: Sequence[Offer],
    *,
    region: str,
    gpu_hours: float,
    prefs: RoutingPrefs,
    breaker: CircuitBreaker,
    now: float,
) -> list[Candidate]:
    """Eligible providers, best score first (ties by provider id, so ranking is stable)."""
    fit = [(o, g) for o in offers
           if (g := eligible(o, region, gpu_hours, prefs)) and breaker.allows(o.id, now)]
    if not fit:
        return []
    cheapest = min(o.price_usd_per_gpu_hour for o, _ in fit)
    fastest = min(o.latency_ms for o, _ in fit)
    roomiest = max(o.capacity_gpu_hours for o, _ in fit)
    w = prefs.weights
    total_weight = (w.price + w.latency + w.reputation + w.availability) or 1.0
    scored = []
    for offer, gpu in fit:
        score = (
            w.price * cheapest / offer.price_usd_per_gpu_hour
            + w.latency * fastest / offer.latency_ms
            + w.reputation * offer.reputation / 100.0
            + w.availability * (offer.capacity_gpu_hours / roomiest)
            * breaker.reliability(offer.id, now)
        ) / total_weight
        scored.append(Candidate(offer.id, gpu, round(score, 6)))
    scored.sort(key=lambda c: (-c.score, c.provider_id))
    return scored
