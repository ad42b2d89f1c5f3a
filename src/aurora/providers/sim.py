"""The state of the simulated provider network.

Pure: no I/O, no clock. Every method that depends on time takes ``now`` (POSIX
seconds) from the caller, and every random draw comes from one seeded
``random.Random``, so a given seed and call sequence always behaves the same.

What is modelled per provider (``config/providers.json``):

- a capacity pool of GPU-hours, starting full at ``capacity_gpu_hours``; accepted
  orders consume their ``gpu_hours``; ``capacity_per_step`` is added at every
  ``step_seconds`` tick (ticks on a fixed grid from the network's start), capped at
  the maximum. Refill is computed lazily from elapsed time when the pool is looked
  at: there are no timers.
- the answer delay: lognormal, median ``base_latency_ms`` × active latency spikes,
  shape ``latency_sigma``;
- random refusals with probability ``error_rate``;
- effective price, reputation and availability under the active fault events
  (``aurora.providers.scenarios``).
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aurora.config import ProviderConfig, ProvidersFile, Scenario
from aurora.errors import AuroraError
from aurora.keys import Ed25519PrivateKey
from aurora.providers.scenarios import (
    EventBook,
    FaultEvent,
    event_from_request,
    schedule_scenario,
)
from aurora.wire import Order, order_sha256, rfc3339_at, sign_ack

Outcome = Literal["acked", "refused", "capacity", "outage", "bad_ack", "replayed", "conflict"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("acked", "refused", "capacity", "outage", "bad_ack",
                                        "replayed", "conflict")
# How long, and for how many orders, a provider remembers an idempotency key: the bridge's
# nonce guard covers 24 h, and a retry comes within an order's deadline (at most 24 h).
IDEMPOTENCY_TTL_S = 86_400.0
IDEMPOTENCY_MAX_KEYS = 200_000


class UnknownProviderError(AuroraError, LookupError):
    """No provider with this id in the network."""


_OUTAGE_HARSHNESS = {"refuse": 0, "timeout": 1, "silent": 2}


@dataclass(frozen=True, slots=True)
class Effective:
    """A provider's values at one instant, fault events applied."""

    active: bool  # the truth: False during any outage (provider_active)
    outage_mode: str | None
    latency_ms: float  # median of the delay distribution
    latency_sigma: float
    price_usd_per_gpu_hour: float
    reputation: float
    capacity_factor: float
    bad_ack: bool
    error_rate: float


def effective_values(
    provider: ProviderConfig, events: Iterable[FaultEvent], now: float, *, zero_delay: bool = False
) -> Effective:
    """Apply the events active at ``now``; ``zero_delay`` drops the random refusals.

    Latency stays the modelled median even with ``zero_delay`` (which only skips
    the wait): the market feed keeps describing the market, and the router can
    keep scoring by it.

    Overlapping events combine: factors multiply, reputation drops take the lowest
    value (a "drop" never raises reputation), and of overlapping outages the
    harsher mode wins: ``silent`` (hangs, and the feed does not show it) over
    ``timeout`` (hangs) over ``refuse`` (503 at once).
    """
    latency, price = provider.base_latency_ms, provider.price_usd_per_gpu_hour
    reputation, capacity_factor = provider.reputation, 1.0
    outage_mode: str | None = None
    bad_ack = False
    for event in events:
        if not event.active_at(now):
            continue
        if event.type == "outage":
            mode = event.mode or "timeout"
            if outage_mode is None or _OUTAGE_HARSHNESS[mode] > _OUTAGE_HARSHNESS[outage_mode]:
                outage_mode = mode
        elif event.type == "latency_spike":
            latency *= event.factor or 1.0
        elif event.type == "price_spike":
            price *= event.factor or 1.0
        elif event.type == "capacity_surge":
            capacity_factor *= event.factor or 1.0
        elif event.type == "reputation_drop" and event.value is not None:
            reputation = min(reputation, event.value)
        elif event.type == "bad_ack":
            bad_ack = True
    return Effective(
        active=outage_mode is None,
        outage_mode=outage_mode,
        latency_ms=latency,
        latency_sigma=provider.latency_sigma,
        price_usd_per_gpu_hour=price,
        reputation=reputation,
        capacity_factor=capacity_factor,
        bad_ack=bad_ack,
        error_rate=0.0 if zero_delay else provider.error_rate,
    )


def not_served(provider: ProviderConfig, region: str, gpu_type: str) -> str | None:
    """Why this provider cannot take the order, or None if it serves region and GPU type."""
    if gpu_type not in provider.gpu_types:
        return f"{provider.id} has no {gpu_type} (it offers {', '.join(provider.gpu_types)})"
    if region not in provider.regions:
        return f"{provider.id} does not serve {region} (it serves {', '.join(provider.regions)})"
    return None


@dataclass(slots=True)
class _Pool:
    level: float
    updated: float


@dataclass(frozen=True, slots=True)
class Arrival:
    """What happens to an order on arrival: refused by an outage, or answered after a delay."""

    outage_mode: str | None
    delay_ms: float


@dataclass(frozen=True, slots=True)
class Settlement:
    """The provider's answer once the delay is over: an ACK or the error code of a 503."""

    outcome: Outcome
    ack: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderView:
    """One provider as the market feed and the metrics show it."""

    config: ProviderConfig
    effective: Effective
    capacity_gpu_hours: float
    events: tuple[FaultEvent, ...] = field(default=())

    def to_feed(self, now: float) -> dict[str, Any]:
        eff = self.effective
        return {
            "id": self.config.id,
            "name": self.config.name,
            # a silent outage is one the provider's own status feed has not noticed yet
            "active": eff.active or eff.outage_mode == "silent",
            "regions": list(self.config.regions),
            "gpu_types": list(self.config.gpu_types),
            "price_usd_per_gpu_hour": round(eff.price_usd_per_gpu_hour, 4),
            "latency_ms": round(eff.latency_ms, 3),
            "capacity_gpu_hours": round(self.capacity_gpu_hours, 3),
            "reputation": eff.reputation,
            "events": [e.to_json(now) for e in self.events],
        }


class Network:
    """The seven provider networks, their capacity pools and the fault events on them.

    ``keys`` holds each provider's Ed25519 signing key; ``rogue_key`` signs the ACKs
    of a provider under a ``bad_ack`` fault (a throwaway key if not given), so their
    signatures fail against the provider's published public key.
    ``ack_counter_start`` seeds the ACK number: seeding it from the start time in
    microseconds keeps ACK ids unique across restarts.
    ``zero_delay`` (benchmarks) answers without delay and without random refusals;
    ``unlimited_capacity`` (benchmarks) never runs out of GPU-hours.
    """

    def __init__(
        self,
        config: ProvidersFile,
        keys: Mapping[str, Ed25519PrivateKey],
        *,
        start: float,
        seed: int | None = None,
        ack_counter_start: int = 1000,
        zero_delay: bool = False,
        unlimited_capacity: bool = False,
        rogue_key: Ed25519PrivateKey | None = None,
    ) -> None:
        missing = [p.id for p in config.providers if p.id not in keys]
        if missing:
            raise ValueError(f"no signing key for provider(s) {', '.join(missing)}")
        self.providers: dict[str, ProviderConfig] = {p.id: p for p in config.providers}
        self.step_seconds = config.step_seconds
        self.zero_delay = zero_delay
        self.unlimited_capacity = unlimited_capacity
        self.events = EventBook()
        self._keys = dict(keys)
        self._rogue_key = rogue_key or Ed25519PrivateKey.generate()
        self._rng = random.Random(seed)
        self._origin = start
        self._ack_seq = ack_counter_start
        self._pools = {p.id: _Pool(p.capacity_gpu_hours, start) for p in config.providers}
        # (provider, idempotency key) -> (order digest, ACK, when): a retried order gets the
        # job it already has, not a second one; oldest first, for expiry.
        self._jobs: OrderedDict[tuple[str, str], tuple[str, dict[str, Any], float]] = \
            OrderedDict()

    # --- lookups and effective values -------------------------------------------------

    def provider(self, provider_id: str) -> ProviderConfig:
        try:
            return self.providers[provider_id]
        except KeyError:
            raise UnknownProviderError(f"no provider {provider_id!r}") from None

    def effective(self, provider_id: str, now: float) -> Effective:
        return effective_values(self.provider(provider_id), self.events.of(provider_id), now,
                                zero_delay=self.zero_delay)

    def capacity(self, provider_id: str, now: float) -> float:
        """GPU-hours left in the provider's pool at ``now``."""
        return self._advance(provider_id, now).level

    # --- capacity ---------------------------------------------------------------------

    def _tick(self, moment: float) -> int:
        """Index of the last refill tick at or before ``moment``."""
        return math.floor((moment - self._origin) / self.step_seconds)

    def _advance(self, provider_id: str, now: float) -> _Pool:
        """Bring the pool up to ``now``, tick by tick, exactly, without iterating ticks.

        The interval since the last update is cut where capacity surges start or
        end; within each piece the surge factor is constant, so the refill is
        ``ticks × capacity_per_step × factor`` capped at ``capacity × factor``.
        A pool above the cap after a surge ends is cut down to it.
        """
        pool = self._pools[provider_id]
        if now <= pool.updated:  # same instant, or the wall clock stepped back
            return pool
        cfg = self.providers[provider_id]
        surges = [e for e in self.events.of(provider_id) if e.type == "capacity_surge"
                  and e.starts_at < now and e.ends_at > pool.updated]
        cuts = sorted({edge for e in surges for edge in (e.starts_at, e.ends_at)
                       if pool.updated < edge < now})
        since = pool.updated
        for until in (*cuts, now):
            middle = (since + until) / 2
            factor = math.prod(e.factor or 1.0 for e in surges if e.active_at(middle))
            ticks = self._tick(until) - self._tick(since)
            pool.level = min(cfg.capacity_gpu_hours * factor,
                             pool.level + ticks * cfg.capacity_per_step * factor)
            since = until
        pool.updated = now
        return pool

    def reserve(self, provider_id: str, gpu_hours: float, now: float) -> bool:
        """Take ``gpu_hours`` from the pool if it holds that many."""
        pool = self._advance(provider_id, now)
        if self.unlimited_capacity:
            return True
        if pool.level < gpu_hours:
            return False
        pool.level -= gpu_hours
        return True

    # --- answering orders -------------------------------------------------------------

    def draw_delay_ms(self, median_ms: float, sigma: float) -> float:
        """One lognormal delay around ``median_ms``; 0 when the median is 0."""
        if median_ms <= 0:
            return 0.0
        return self._rng.lognormvariate(math.log(median_ms), sigma)

    def replay(self, provider_id: str, key: str, order_document: Mapping[str, Any],
               now: float) -> Settlement | None:
        """The answer to an order whose idempotency key this provider has seen: the same
        ACK (no new job, no capacity), or a conflict if the key came with another order;
        None for a new key."""
        self._expire_jobs(now)
        known = self._jobs.get((provider_id, key))
        if known is None:
            return None
        digest, ack, _ = known
        if digest != order_sha256(order_document):
            return Settlement("conflict", error="idempotency_conflict")
        return Settlement("replayed", ack=ack)

    def _expire_jobs(self, now: float) -> None:
        while self._jobs:
            _, (_, _, when) = next(iter(self._jobs.items()))
            if when > now - IDEMPOTENCY_TTL_S and len(self._jobs) <= IDEMPOTENCY_MAX_KEYS:
                return
            self._jobs.popitem(last=False)

    def arrive(self, provider_id: str, now: float) -> Arrival:
        """On arrival: an outage answers at once (or hangs); otherwise draw the delay."""
        eff = self.effective(provider_id, now)
        if eff.outage_mode is not None or self.zero_delay:
            return Arrival(outage_mode=eff.outage_mode, delay_ms=0.0)
        return Arrival(outage_mode=None, delay_ms=self.draw_delay_ms(eff.latency_ms,
                                                                     eff.latency_sigma))

    def settle(
        self,
        provider_id: str,
        order_document: Mapping[str, Any],
        order: Order,
        gpu_type: str,
        *,
        rtt_ms: float,
        now: float,
        idempotency_key: str | None = None,
    ) -> Settlement:
        """The answer after the delay: ``order_document`` is the order exactly as received
        (its digest goes in the ACK), ``order`` the same validated. An ACK is remembered
        under ``idempotency_key`` (see ``replay``)."""
        if idempotency_key is not None and \
                (known := self.replay(provider_id, idempotency_key, order_document, now)):
            return known  # a concurrent duplicate finished its delay first
        provider = self.provider(provider_id)
        eff = self.effective(provider_id, now)
        if eff.outage_mode is not None:  # the outage began during the delay
            return Settlement("outage", error="outage")
        if eff.error_rate > 0 and self._rng.random() < eff.error_rate:
            return Settlement("refused", error="unavailable")
        # A provider with a bad_ack fault is broken, not full: it answers whatever
        # its pool holds, and the order it "accepts" consumes nothing.
        if not eff.bad_ack and not self.reserve(provider_id, order.gpu_hours, now):
            return Settlement("capacity", error="capacity")
        self._ack_seq += 1
        fields = {
            "ack_id": f"{provider.ack_prefix}-JOB-{self._ack_seq}",
            "provider_id": provider.id,
            "rtt_ms": round(rtt_ms, 3),
            "nonce": order.nonce,
            "order_sha256": order_sha256(order_document),
            "treaty_id": order.treaty_id,
            "tenant_id": order.tenant_id,
            "region": order.region,
            "gpu_type": gpu_type,
            "gpu_hours": float(order.gpu_hours),
            "price_usd": round(order.gpu_hours * eff.price_usd_per_gpu_hour, 2),
            "issued_at": rfc3339_at(now),
        }
        if eff.bad_ack:
            return Settlement("bad_ack", ack=sign_ack(fields, self._rogue_key))
        ack = sign_ack(fields, self._keys[provider.id])
        if idempotency_key is not None:
            self._jobs[provider_id, idempotency_key] = (str(fields["order_sha256"]), ack, now)
        return Settlement("acked", ack=ack)

    # --- fault events -----------------------------------------------------------------

    def _settle_pools(self, now: float, providers: Iterable[str] | None = None) -> None:
        # Refill is integrated over the events present when it runs: bring pools up
        # to now before the event set changes, so a change never rewrites the past.
        for provider_id in self.providers if providers is None else providers:
            self._advance(provider_id, now)

    def add_events(self, events: Iterable[FaultEvent], now: float) -> list[FaultEvent]:
        added = list(events)
        self._settle_pools(now, {e.provider for e in added})
        self.events.add(added)
        return added

    def inject(self, document: object, now: float) -> FaultEvent:
        """Add one event from a ``POST /chaos`` body; EventError if it is invalid."""
        event = event_from_request(document, event_id=self.events.next_id(), now=now,
                                   providers=list(self.providers))
        self.add_events([event], now)
        return event

    def schedule(self, name: str, scenario: Scenario, now: float) -> list[FaultEvent]:
        """Schedule a named scenario's events relative to ``now``."""
        events = schedule_scenario(name, scenario, start=now, providers=list(self.providers),
                                   ids=self.events.new_ids())
        return self.add_events(events, now)

    def remove_event(self, event_id: str, now: float) -> FaultEvent | None:
        event = self.events.find(event_id)
        if event is not None:
            self._settle_pools(now, [event.provider])
            self.events.remove(event_id)
        return event

    def clear_events(self, now: float) -> int:
        self._settle_pools(now)
        return self.events.clear()

    def expire(self, now: float) -> None:
        """Forget events that have ended (after their effect on the pools is counted)."""
        self._settle_pools(now)
        self.events.forget_expired(now)

    # --- views ------------------------------------------------------------------------

    def views(self, now: float) -> list[ProviderView]:
        self.expire(now)
        return [
            ProviderView(
                config=cfg,
                effective=self.effective(cfg.id, now),
                capacity_gpu_hours=self.capacity(cfg.id, now),
                events=tuple(self.events.of(cfg.id)),
            )
            for cfg in self.providers.values()
        ]

    def feed(self, now: float) -> dict[str, Any]:
        """The market feed of ``GET /providers``."""
        return {"time": rfc3339_at(now), "providers": [v.to_feed(now) for v in self.views(now)]}
