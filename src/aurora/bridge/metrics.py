"""The treaty metrics served on :9109 (names fixed by the seed and DESIGN.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aurora.bridge.fill import Distribution, FillWindow

# Order→ACK round trip: dense between 200 and 400 ms, where the SLO (p50 ≤ 280,
# p95 ≤ 350) and the alert (p95 > 400) are decided.
RTT_BUCKETS_MS = (25, 50, 75, 100, 125, 150, 175, 200, 220, 240, 260, 280, 300, 320, 340, 350,
                  360, 380, 400, 450, 500, 750, 1000, 1500, 2000, 3000, 5000)
# Policy decision time: from 50 µs to 100 ms (SLO p99 ≤ 25 ms, alert p99 > 50 ms).
POLICY_BUCKETS_MS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100)


class FillRateCollector(Collector):
    """``treaty_fill_rate`` (gauge) and ``treaty_fill_rate_bucket``/``_count``/``_sum``.

    One name cannot be both a gauge and a histogram in the exposition format,
    so the distribution of sampled window rates is exposed as plain cumulative
    series with an ``le`` label, which ``histogram_quantile`` and ``rate`` accept.
    """

    def __init__(self, treaty_id: str, window: FillWindow, distribution: Distribution,
                 lock: threading.Lock) -> None:
        self._treaty_id = treaty_id
        self._window = window
        self._distribution = distribution
        self._lock = lock

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            rate = self._window.rate(time.time())
            buckets = self._distribution.cumulative()
            count, total = self._distribution.count, self._distribution.total
        gauge = GaugeMetricFamily("treaty_fill_rate",
                                  "Filled / admitted orders over the sliding fill window.",
                                  labels=["treaty_id"])
        if rate is not None:
            gauge.add_metric([self._treaty_id], rate)
        yield gauge
        label = {"treaty_id": self._treaty_id}
        bucket = Metric("treaty_fill_rate_bucket",
                        "Sampled fill-window rates at or below le (cumulative count).", "unknown")
        for le, n in buckets:
            bucket.add_sample("treaty_fill_rate_bucket", {**label, "le": le}, n)
        yield bucket
        samples = Metric("treaty_fill_rate_count", "Fill-window rates sampled.", "unknown")
        samples.add_sample("treaty_fill_rate_count", label, count)
        yield samples
        summed = Metric("treaty_fill_rate_sum", "Sum of sampled fill-window rates.", "unknown")
        summed.add_sample("treaty_fill_rate_sum", label, total)
        yield summed


class CallbackGauge(Collector):
    """A gauge whose value is computed at scrape time; absent while the value is None."""

    def __init__(self, name: str, documentation: str, treaty_id: str,
                 value: Callable[[], float | None]) -> None:
        self._name, self._doc, self._treaty_id, self._value = name, documentation, treaty_id, value

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self._name, self._doc, labels=["treaty_id"])
        value = self._value()
        if value is not None:
            family.add_metric([self._treaty_id], value)
        yield family


class TreatyMetrics:
    """Every metric the bridge exports, in one registry of its own."""

    def __init__(self, treaty_id: str, *, fill_window_s: float) -> None:
        self.treaty_id = treaty_id
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("treaty_requests", "Orders answered, by outcome.",
                                ["treaty_id", "outcome"], registry=r)
        self.dropped = Counter("treaty_dropped_requests", "Admitted orders no provider filled.",
                               ["treaty_id", "reason"], registry=r)
        self.failovers = Counter("treaty_failover_events",
                                 "A chosen provider failed the order and the router moved on.",
                                 ["treaty_id", "provider", "reason"], registry=r)
        self.rtt = Histogram("treaty_rtt_ms", "Order received to verified provider ACK (ms).",
                             ["treaty_id"], buckets=RTT_BUCKETS_MS, registry=r)
        self.policy = Histogram("policy_decision_ms", "vault-law decision time (ms).",
                                ["treaty_id"], buckets=POLICY_BUCKETS_MS, registry=r)
        self.quota_used = Gauge("treaty_quota_used_gpu_hours",
                                "GPU-hours committed or reserved in the treaty's rolling period.",
                                ["treaty_id"], registry=r)
        self.live_nonces = Gauge("treaty_live_nonces", "Nonces held by the 24 h replay guard.",
                                 ["treaty_id"], registry=r)
        self.fill_lock = threading.Lock()
        self.fill_window = FillWindow(fill_window_s)
        self.fill_distribution = Distribution()
        r.register(FillRateCollector(treaty_id, self.fill_window, self.fill_distribution,
                                     self.fill_lock))
        for outcome in ("filled", "dropped", "denied", "replay", "rejected"):
            self.requests.labels(treaty_id, outcome)
        for reason in ("no_provider", "ledger"):
            self.dropped.labels(treaty_id, reason)
        self.rtt.labels(treaty_id)
        self.policy.labels(treaty_id)

    def record_fill(self, filled: bool) -> None:
        with self.fill_lock:
            now = time.time()
            self.fill_window.record(filled, now)
            if self.fill_distribution.count == 0:
                # the first admitted order gives the window its first rate: observe it now,
                # not a ``fill_bucket_every`` later, so the seed's
                # histogram_quantile(0.95, treaty_fill_rate_bucket) has a number as soon as
                # treaty_fill_rate has one (it is NaN while every bucket is empty)
                rate = self.fill_window.rate(now)
                if rate is not None:
                    self.fill_distribution.observe(rate)

    def sample_fill_rate(self) -> float | None:
        """Observe the window rate into the distribution; called every ``fill_bucket_every``."""
        with self.fill_lock:
            rate = self.fill_window.rate(time.time())
            if rate is not None:
                self.fill_distribution.observe(rate)
        return rate
