"""The receiver's Prometheus metrics, computed from stored incidents at each scrape.

Nothing here counts in memory: a restarted receiver exports the same numbers, and
``aurora incident ack`` in another process shows up at the next scrape.
- ``aurora_incidents_open{sev}``: incidents not yet resolved (drills included: they are
  open work too);
- ``aurora_incident_response_seconds{sev}``: histogram of first-acknowledgement times,
  drills left out (a drill acknowledges itself at once);
- ``aurora_incidents_sla_breached_total{sev}``: recorded SLA breaches (``escalated``
  events), which is what an "incident SLA breached" alert watches;
- ``aurora_incidents_opened_total{sev}``: every incident ever opened.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from aurora import metricnames as names
from aurora.incidents.config import SEVS
from aurora.incidents.model import Incident

# 1 min … 3 days: SEV1's 15 min and SEV4's business day (up to ~3 days over a weekend)
RESPONSE_BUCKETS = (60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
                    86400.0, 172800.0, 259200.0)


class IncidentCollector(Collector):
    def __init__(self, incidents: Sequence[Incident]) -> None:
        self.incidents = incidents

    def collect(self) -> Iterator[Metric]:
        open_ = GaugeMetricFamily(names.INCIDENTS_OPEN, "Incidents not yet resolved.",
                                  labels=["sev"])
        opened = CounterMetricFamily(names.INCIDENTS_OPENED, "Incidents opened by alerts.",
                                     labels=["sev"])
        breached = CounterMetricFamily(
            names.INCIDENTS_SLA_BREACHED,
            "Incidents not acknowledged within their SEV's response SLA.", labels=["sev"])
        response = HistogramMetricFamily(
            names.INCIDENT_RESPONSE_SECONDS,
            "First acknowledgement minus opening, per incident (drills excluded).",
            labels=["sev"])
        for sev in SEVS:
            mine = [i for i in self.incidents if i.sev == sev]
            open_.add_metric([sev], sum(i.is_open for i in mine))
            opened.add_metric([sev], len(mine))
            breached.add_metric([sev], sum(i.escalated_at is not None for i in mine))
            times = [r for i in mine if i.drill is None
                     if (r := i.response_seconds) is not None]
            buckets = [(_le(b), sum(t <= b for t in times)) for b in RESPONSE_BUCKETS]
            buckets.append(("+Inf", len(times)))
            response.add_metric([sev], buckets, sum(times))
        yield from (open_, opened, breached, response)


class WebhookCounts(Collector):
    """``aurora_incident_webhooks_total{outcome}``: notifications accepted, rejected (4xx)
    and failed (503) since this process started — the one in-memory count, as it describes
    the process's traffic rather than the incidents."""

    OUTCOMES = ("accepted", "rejected", "failed")

    def __init__(self) -> None:
        self.counts = dict.fromkeys(self.OUTCOMES, 0)

    def inc(self, outcome: str) -> None:
        self.counts[outcome] += 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(names.INCIDENT_WEBHOOKS,
                                     "Webhook notifications received.", labels=["outcome"])
        for outcome, count in self.counts.items():
            family.add_metric([outcome], count)
        yield family


def _le(bound: float) -> str:
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


def render(incidents: Sequence[Incident], extra: Collector | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IncidentCollector(incidents))
    if extra is not None:
        registry.register(extra)
    return generate_latest(registry)
