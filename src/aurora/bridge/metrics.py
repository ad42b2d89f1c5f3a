"""The treaty metrics served on :9109 (names fixed by the seed and DESIGN.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aurora import metricnames as names
from aurora.bridge.fill import Distribution, FillWindow


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
        gauge = GaugeMetricFamily(names.FILL_RATE,
                                  "Filled / admitted orders over the sliding fill window.",
                                  labels=["treaty_id"])
        if rate is not None:
            gauge.add_metric([self._treaty_id], rate)
        yield gauge
        label = {"treaty_id": self._treaty_id}
        bucket_name = names.bucket(names.FILL_RATE)
        bucket = Metric(bucket_name,
                        "Sampled fill-window rates at or below le (cumulative count).", "unknown")
        for le, n in buckets:
            bucket.add_sample(bucket_name, {**label, "le": le}, n)
        yield bucket
        count_name = names.count(names.FILL_RATE)
        samples = Metric(count_name, "Fill-window rates sampled.", "unknown")
        samples.add_sample(count_name, label, count)
        yield samples
        sum_name = names.sum_of(names.FILL_RATE)
        summed = Metric(sum_name, "Sum of sampled fill-window rates.", "unknown")
        summed.add_sample(sum_name, label, total)
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
        self.requests = Counter(names.REQUESTS, "Orders answered, by outcome.",
                                ["treaty_id", "outcome"], registry=r)
        self.dropped = Counter(names.DROPPED_REQUESTS, "Admitted orders no provider filled.",
                               ["treaty_id", "reason"], registry=r)
        self.failovers = Counter(names.FAILOVER_EVENTS,
                                 "A chosen provider failed the order and the router moved on.",
                                 ["treaty_id", "provider", "reason"], registry=r)
        self.rtt = Histogram(names.RTT_MS, "Order received to verified provider ACK (ms).",
                             ["treaty_id"], buckets=names.RTT_BUCKETS_MS, registry=r)
        self.policy = Histogram(names.POLICY_DECISION_MS, "vault-law decision time (ms).",
                                ["treaty_id"], buckets=names.POLICY_BUCKETS_MS, registry=r)
        self.quota_used = Gauge(names.QUOTA_USED,
                                "GPU-hours committed or reserved in the treaty's rolling period.",
                                ["treaty_id"], registry=r)
        self.live_nonces = Gauge(names.LIVE_NONCES, "Nonces held by the 24 h replay guard.",
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
