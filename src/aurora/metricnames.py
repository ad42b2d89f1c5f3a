"""The name of every metric Aurora exports, and the bucket bounds of its histograms. Pure.

Names are fixed by the seed and ``/work/shared/DESIGN.md``; the exporters (bridge, provider
network, incident receiver), the smoke test, the soak's tasks, the health check and every
PromQL expression (:mod:`aurora.slo.queries`) take them from here. Counters are named as
prometheus_client declares them (without ``_total``); :func:`total`, :func:`bucket` and
:func:`count` give the series names Prometheus stores.
"""

from __future__ import annotations

# --- the bridge's exporter (:9109) ----------------------------------------------------------

TREATY_PREFIX = "treaty_"
FILL_RATE = "treaty_fill_rate"  # gauge, and a distribution of sampled window rates
REQUESTS = "treaty_requests"  # counter, by outcome
DROPPED_REQUESTS = "treaty_dropped_requests"  # counter, by reason
FAILOVER_EVENTS = "treaty_failover_events"  # counter, by provider and reason
RTT_MS = "treaty_rtt_ms"  # histogram
POLICY_DECISION_MS = "policy_decision_ms"  # histogram
QUOTA_USED = "treaty_quota_used_gpu_hours"
LIVE_NONCES = "treaty_live_nonces"
PROVENANCE_COVERAGE = "treaty_provenance_coverage"
PROVENANCE_CHECKS = "treaty_provenance_checks"  # counter, by result
LEDGER_CONSISTENCY_FAILURES = "aurora_ledger_consistency_failures"  # counter

# Order→ACK round trip: dense between 200 and 400 ms, where the SLO (p50 ≤ 280,
# p95 ≤ the treaty's bridge_rtt_ms) and the alert (p95 > 400) are decided.
RTT_BUCKETS_MS: tuple[float, ...] = (
    25, 50, 75, 100, 125, 150, 175, 200, 220, 240, 260, 280, 300, 320, 340, 350,
    360, 380, 400, 450, 500, 750, 1000, 1500, 2000, 3000, 5000)
# Policy decision time: from 50 µs to 100 ms (SLO p99 ≤ 25 ms, alert p99 > 50 ms).
POLICY_BUCKETS_MS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100)

# --- the provider network's exporter (:9110) ----------------------------------------------

PROVIDER_PREFIX = "provider_"
PROVIDER_ACTIVE = "provider_active"
PROVIDER_CAPACITY = "provider_capacity_gpu_hours"
PROVIDER_LATENCY = "provider_latency_ms"
PROVIDER_PRICE = "provider_price_usd"
PROVIDER_REPUTATION = "provider_reputation"
PROVIDER_ORDERS = "provider_orders"  # counter, by provider and outcome
PROVIDER_DELAY_MS = "provider_delay_ms"  # histogram

# --- the incident receiver's exporter ------------------------------------------------------

INCIDENTS_OPEN = "aurora_incidents_open"
INCIDENTS_OPENED = "aurora_incidents_opened"  # counter
INCIDENTS_SLA_BREACHED = "aurora_incidents_sla_breached"  # counter
INCIDENT_RESPONSE_SECONDS = "aurora_incident_response_seconds"  # histogram
INCIDENT_WEBHOOKS = "aurora_incident_webhooks"  # counter, by outcome


# --- the canary controller's exporter (canary_metrics_port) ---------------------------------

CANARY_WEIGHT = "aurora_canary_weight"  # gauge: percent of tenants on the candidate
CANARY_PHASE = "aurora_canary_phase"  # gauge: 1 for the current phase, by phase
CANARY_MEASUREMENT = "aurora_canary_measurement"  # gauge: latest value, by comparison
CANARY_THRESHOLD = "aurora_canary_threshold"  # gauge: the value's threshold, by comparison
CANARY_SAMPLE_SIZE = "aurora_canary_sample_size"  # gauge: pairs behind it, by comparison
CANARY_DECISION = "aurora_canary_decision"  # gauge: 1 for the latest decision, by comparison
CANARY_SERVED = "aurora_canary_served"  # gauge: orders HAProxy served this step, by track


def total(counter: str) -> str:
    return f"{counter}_total"


def bucket(histogram: str) -> str:
    return f"{histogram}_bucket"


def count(histogram: str) -> str:
    return f"{histogram}_count"


def sum_of(histogram: str) -> str:
    return f"{histogram}_sum"
