"""A synthetic treaty-metrics feed for testing rules and queries on a real Prometheus.

Not a stand-in for the bridge: it only produces the metric names and label shapes of
docs/ARCHITECTURE.md with values a test chooses, so that the rules, the dashboard's and the
reporter's queries can be run by a real Prometheus before (and independently of) the stack.

``Feed`` accumulates counters from a traffic ``Shape`` over time. It is served live over
HTTP (``serve``) for Prometheus to scrape, or written as OpenMetrics with timestamps
(``backfill_text``) for ``promtool tsdb create-blocks-from openmetrics``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

TREATY = "AURORA-AKASH-001"
PROVIDERS = ("akash", "ionet", "render")

RTT_BOUNDS = (100.0, 200.0, 250.0, 280.0, 300.0, 320.0, 350.0, 380.0, 400.0, 450.0, 500.0,
              750.0, 1000.0)
POLICY_BOUNDS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0)
FILL_BOUNDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0)

# where observations fall: (upper bound of their bucket, share)
RTT_FAST = ((250.0, 0.2), (280.0, 0.5), (300.0, 0.25), (350.0, 0.05))
RTT_SLOW = ((500.0, 1.0),)
POLICY_FAST = ((1.0, 0.6), (2.5, 0.38), (5.0, 0.02))
POLICY_SLOW = ((100.0, 1.0),)


@dataclass(frozen=True)
class Shape:
    """Traffic per second and how it fares."""

    orders_per_s: float = 2.0
    denied_share: float = 0.05  # of all orders
    drop_share: float = 0.02  # of admitted orders
    rtt_slow_share: float = 0.0  # share of filled orders in (450, 500] ms
    policy_slow_share: float = 0.0  # share of decisions in (50, 100] ms
    fill_rate: float = 0.97  # the per-window fill rate observed
    provenance: float = 0.99
    failovers_per_s: float = 0.05


def _cumulative(bounds: tuple[float, ...], spread: dict[float, float]) -> list[float]:
    running, out = 0.0, []
    for bound in bounds:
        running += spread.get(bound, 0.0)
        out.append(running)
    return out


@dataclass
class Feed:
    """Cumulative counters of one bridge exporter, advanced by ``step``."""

    shape: Shape = field(default_factory=Shape)
    requests: dict[str, float] = field(default_factory=dict)
    drops: dict[str, float] = field(default_factory=dict)
    failovers: dict[str, float] = field(default_factory=dict)
    rtt: list[float] = field(default_factory=lambda: [0.0] * (len(RTT_BOUNDS) + 1))
    rtt_sum: float = 0.0
    policy: list[float] = field(default_factory=lambda: [0.0] * (len(POLICY_BOUNDS) + 1))
    policy_sum: float = 0.0
    fill: list[float] = field(default_factory=lambda: [0.0] * (len(FILL_BOUNDS) + 1))
    provider_orders: dict[str, float] = field(default_factory=dict)

    def set(self, **changes: Any) -> None:
        self.shape = replace(self.shape, **changes)

    def step(self, seconds: float, fill_observations: int = 0) -> None:
        s = self.shape
        orders = s.orders_per_s * seconds
        denied = orders * s.denied_share
        admitted = orders - denied
        dropped = admitted * s.drop_share
        filled = admitted - dropped
        for outcome, n in (("filled", filled), ("dropped", dropped), ("denied", denied)):
            self.requests[outcome] = self.requests.get(outcome, 0.0) + n
        if dropped:
            self.drops["no_provider"] = self.drops.get("no_provider", 0.0) + dropped
        failovers = s.failovers_per_s * seconds
        self.failovers["ionet"] = self.failovers.get("ionet", 0.0) + failovers
        for provider in PROVIDERS:
            self.provider_orders[provider] = (self.provider_orders.get(provider, 0.0)
                                              + filled / len(PROVIDERS))
        self.rtt_sum += self._observe(self.rtt, RTT_BOUNDS, filled, s.rtt_slow_share,
                                      RTT_FAST, RTT_SLOW)
        self.policy_sum += self._observe(self.policy, POLICY_BOUNDS, orders,
                                         s.policy_slow_share, POLICY_FAST, POLICY_SLOW)
        for _ in range(fill_observations):
            increments = _cumulative(FILL_BOUNDS, {min(b for b in FILL_BOUNDS
                                                       if b >= s.fill_rate): 1.0})
            for i, inc in enumerate(increments):
                self.fill[i] += inc
            self.fill[-1] += 1

    @staticmethod
    def _observe(buckets: list[float], bounds: tuple[float, ...], n: float, slow: float,
                 fast_spread: tuple[tuple[float, float], ...],
                 slow_spread: tuple[tuple[float, float], ...]) -> float:
        spread: dict[float, float] = {}
        for bound, share in fast_spread:
            spread[bound] = spread.get(bound, 0.0) + share * (1 - slow)
        for bound, share in slow_spread:
            spread[bound] = spread.get(bound, 0.0) + share * slow
        for i, cum in enumerate(_cumulative(bounds, spread)):
            buckets[i] += n * cum
        buckets[-1] += n
        return n * sum(bound * share for bound, share in spread.items())  # rough _sum

    # --- what an exporter would expose -----------------------------------------------------

    def treaty_families(self) -> list[Metric]:
        t = {"treaty_id": TREATY}
        s = self.shape
        families = []

        def family(name: str, kind: str, samples: list[tuple[str, dict[str, str], float]],
                   ) -> None:
            metric = Metric(name, f"synthetic {name}", kind)
            for sample_name, labels, value in samples:
                metric.add_sample(sample_name, {**t, **labels}, value)
            families.append(metric)

        family("treaty_requests", "counter",
               [("treaty_requests_total", {"outcome": o}, v) for o, v in self.requests.items()])
        family("treaty_dropped_requests", "counter",
               [("treaty_dropped_requests_total", {"reason": r}, v)
                for r, v in self.drops.items()])
        family("treaty_failover_events", "counter",
               [("treaty_failover_events_total", {"provider": p, "reason": "timeout"}, v)
                for p, v in self.failovers.items()])
        for name, bounds, buckets, total in (
                ("treaty_rtt_ms", RTT_BOUNDS, self.rtt, self.rtt_sum),
                ("policy_decision_ms", POLICY_BOUNDS, self.policy, self.policy_sum)):
            family(name, "histogram",
                   [(f"{name}_bucket", {"le": floatToGoString(b)}, v)
                    for b, v in zip((*bounds, float("inf")), buckets, strict=True)]
                   + [(f"{name}_count", {}, buckets[-1]), (f"{name}_sum", {}, total)])
        if self.requests.get("filled", 0) + self.requests.get("dropped", 0) > 0:
            family("treaty_fill_rate", "gauge", [("treaty_fill_rate", {}, s.fill_rate)])
            family("treaty_provenance_coverage", "gauge",
                   [("treaty_provenance_coverage", {}, s.provenance)])
        family("treaty_fill_rate_bucket", "unknown",
               [("treaty_fill_rate_bucket", {"le": floatToGoString(b)}, v)
                for b, v in zip((*FILL_BOUNDS, float("inf")), self.fill, strict=True)])
        return families

    def provider_families(self) -> list[Metric]:
        families = []
        for name, value in (("provider_active", 1.0), ("provider_latency_ms", 120.0),
                            ("provider_capacity_gpu_hours", 500.0),
                            ("provider_price_usd", 2.5), ("provider_reputation", 90.0)):
            metric = Metric(name, f"synthetic {name}", "gauge")
            for provider in PROVIDERS:
                metric.add_sample(name, {"provider": provider}, value)
            families.append(metric)
        orders = Metric("provider_orders", "synthetic provider orders", "counter")
        for provider, value in self.provider_orders.items():
            orders.add_sample("provider_orders_total", {"provider": provider,
                                                        "outcome": "accepted"}, value)
        families.append(orders)
        return families


class _Collect(Collector):
    def __init__(self, produce: Any) -> None:
        self.produce = produce

    def collect(self) -> Iterator[Metric]:
        yield from self.produce()


def registries(feed: Feed, *, advance: Any) -> tuple[CollectorRegistry, CollectorRegistry]:
    """Registries for the treaty (:9109) and provider (:9110) exporters; each scrape of the
    treaty exporter first calls ``advance()`` so counters grow with real time."""
    treaty, providers = CollectorRegistry(), CollectorRegistry()

    def treaty_families() -> list[Metric]:
        advance()
        return feed.treaty_families()

    treaty.register(_Collect(treaty_families))
    providers.register(_Collect(feed.provider_families))
    return treaty, providers


# --- backfill: what Prometheus would have stored after scraping the feed ------------------------

TARGET_LABELS = {"job": "aurora-metrics", "instance": "localhost:9109", "treaty_id": TREATY}


def _series(name: str, labels: dict[str, str]) -> str:
    # Prometheus keeps its target label treaty_id and renames the exporter's to exported_*
    stored = {**labels, "exported_treaty_id": labels["treaty_id"], **TARGET_LABELS}
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(stored.items()))
    return f"{name}{{{inner}}}"


def backfill_lines(feed: Feed, timestamp: int) -> Iterator[str]:
    for family in feed.treaty_families():
        for sample in family.samples:
            yield f"{_series(sample.name, dict(sample.labels))} {sample.value!r} {timestamp}"
    up = ",".join(f'{k}="{v}"' for k, v in sorted(TARGET_LABELS.items()))
    yield f"up{{{up}}} 1 {timestamp}"


@dataclass(frozen=True)
class Phase:
    hours: float
    shape: Shape


def backfill_text(phases: list[Phase], start: int, step_s: int = 300,
                  windows_per_step: int = 5) -> str:
    """OpenMetrics with timestamps: ``phases`` one after another from ``start`` (unix s).

    ``windows_per_step`` fill-rate observations per step (one per minute with 5m steps).
    """
    feed = Feed()
    lines: list[str] = []
    t = start
    lines += backfill_lines(feed, t)
    for phase in phases:
        feed.shape = phase.shape
        for _ in range(round(phase.hours * 3600 / step_s)):
            feed.step(step_s, windows_per_step)
            t += step_s
            lines += backfill_lines(feed, t)
    return "\n".join(lines) + "\n# EOF\n"
