"""Every PromQL expression Aurora uses, named: the seed's literal queries, the rules', the
dashboard's and the reporter's.

Conventions, because of how the treaty metrics reach Prometheus:

* Prometheus adds the target label ``treaty_id`` to everything scraped from the bridge's
  exporter, which also emits ``treaty_id``; the exporter's copy becomes
  ``exported_treaty_id``. Every aggregation is ``by (treaty_id)``.
* ``le`` is compared as text by Prometheus 2.x: prometheus_client writes ``le="350.0"``,
  other exporters ``le="350"``; bucket matchers accept both (:func:`le_matcher`).
* Windowed expressions take a Prometheus duration (``5m``, ``72h``); :func:`prom_duration`
  turns seconds into one.
"""

from __future__ import annotations

import re

from aurora import metricnames as n
from aurora.slo.catalog import (
    EVENT_WINDOW,
    NO_TRAFFIC_WINDOW,
    POLICY_GOOD_MS,
    RTT_GOOD_MS,
    BudgetKey,
)
from aurora.slo.math import quantile_for

# --- the seed's queries, verbatim ----------------------------------------------------------

SEED_FILL_RATE = n.FILL_RATE


def seed_fill_rate(treaty_id: str) -> str:
    """The seed's ``treaty_fill_rate{treaty_id="AURORA-AKASH-001"}`` for any treaty."""
    return f'{n.FILL_RATE}{{treaty_id="{treaty_id}"}}'


SEED_FILL_RATE_TREATY = seed_fill_rate("AURORA-AKASH-001")
SEED_DROPPED_RATE = f"rate({n.total(n.DROPPED_REQUESTS)}[5m])"
SEED_FILL_P95 = f"histogram_quantile(0.95, {n.bucket(n.FILL_RATE)})"
SEED_RTT_P95 = f"histogram_quantile(0.95, {n.bucket(n.RTT_MS)})"
SEED_PROVENANCE = n.PROVENANCE_COVERAGE
SEED_POLICY_P99 = f"histogram_quantile(0.99, {n.bucket(n.POLICY_DECISION_MS)})"

SEED_QUERIES: dict[str, str] = {
    "fill_rate": SEED_FILL_RATE,
    "fill_rate_treaty": SEED_FILL_RATE_TREATY,
    "dropped_rate": SEED_DROPPED_RATE,
    "fill_rate_p95": SEED_FILL_P95,
    "rtt_p95": SEED_RTT_P95,
    "provenance": SEED_PROVENANCE,
    "policy_p99": SEED_POLICY_P99,
}

# --- durations and selectors ---------------------------------------------------------------

_PROM_DURATION = re.compile(r"^(?:[0-9]+y)?(?:[0-9]+w)?(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?"
                            r"(?:[0-9]+s)?(?:[0-9]+ms)?$")


def prom_duration(seconds: float) -> str:
    """``seconds`` as a Prometheus duration, e.g. ``5m``, ``1h30m``, ``2s500ms``."""
    total_ms = round(seconds * 1000)
    if total_ms <= 0:
        raise ValueError(f"a PromQL range must be positive, not {seconds}s")
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000),
                       ("ms", 1)):
        if total_ms >= size:
            parts.append(f"{total_ms // size}{unit}")
            total_ms %= size
    return "".join(parts)


def is_prom_duration(text: str) -> bool:
    return bool(text) and _PROM_DURATION.match(text) is not None


def le_matcher(bound: float) -> str:
    """A matcher for the bucket whose upper bound is ``bound``, whichever way it is written."""
    if float(bound).is_integer():
        whole = str(int(bound))
        return f'le=~"{whole}(\\\\.0)?"'
    return f'le="{bound!r}"'


def selector(metric: str, *matchers: str, treaty_id: str | None = None) -> str:
    """``metric{...}``; with ``treaty_id`` restricted to that treaty."""
    parts = ([f'treaty_id="{treaty_id}"'] if treaty_id else []) + list(matchers)
    return f"{metric}{{{','.join(parts)}}}" if parts else metric


REQUESTS_TOTAL = n.total(n.REQUESTS)
DROPPED_TOTAL = n.total(n.DROPPED_REQUESTS)
ADMITTED = 'outcome=~"filled|dropped"'  # orders the gateway itself answers for
FILLED = 'outcome="filled"'
DROPPED = 'outcome="dropped"'

# --- quantiles ------------------------------------------------------------------------------


def quantile(q: float, histogram: str, window: str, treaty_id: str | None = None, *,
             by: str = "treaty_id") -> str:
    """``q``-quantile of ``histogram`` (base name) over ``window``, per treaty (or ``by``).

    ``rate`` and ``increase`` give the same quantile; ``rate`` matches the recording rules.
    """
    series = selector(n.bucket(histogram), treaty_id=treaty_id)
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({series}[{window}])))"


FILL_RATE_WINDOW = "1h"  # one fill-rate observation per minute: 60 per quantile
LATENCY_WINDOW = "5m"

# the strict reading of a higher-is-better "p95 >= x": the level met in 95 % of windows
FILL_STRICT_Q = quantile_for(95, higher_is_better=True)


def fill_p50(window: str = FILL_RATE_WINDOW, treaty_id: str | None = None) -> str:
    return quantile(0.5, n.FILL_RATE, window, treaty_id)


def fill_p95_literal(window: str = FILL_RATE_WINDOW, treaty_id: str | None = None) -> str:
    return quantile(0.95, n.FILL_RATE, window, treaty_id)


def fill_p95_strict(window: str = FILL_RATE_WINDOW, treaty_id: str | None = None) -> str:
    return quantile(FILL_STRICT_Q, n.FILL_RATE, window, treaty_id)


def rtt_quantile(q: float, window: str = LATENCY_WINDOW, treaty_id: str | None = None) -> str:
    return quantile(q, n.RTT_MS, window, treaty_id)


def policy_p99(window: str = LATENCY_WINDOW, treaty_id: str | None = None) -> str:
    return quantile(0.99, n.POLICY_DECISION_MS, window, treaty_id)


# --- the seed's four alert conditions, without their thresholds (Grafana needs them apart) ---

FILL_RATE_NOW = f"min by (treaty_id) ({n.FILL_RATE})"
PROVENANCE_NOW = f"min by (treaty_id) ({n.PROVENANCE_COVERAGE})"
SEED_ALERT_SIGNALS: dict[BudgetKey, str] = {
    "fill": FILL_RATE_NOW,
    "rtt": rtt_quantile(0.95),
    "provenance": PROVENANCE_NOW,
    "policy": policy_p99(),
}

# Tampering: order records that no longer re-verify, or signed checkpoints that are not an
# append-only extension of the previous one (the bridge's provenance auditor counts both).
# The two increases have different label sets, so `or` keeps both and max takes the larger.
LEDGER_TAMPERING = (
    "max by (treaty_id) (\n"
    f'  increase({n.total(n.PROVENANCE_CHECKS)}{{result="failed"}}[{EVENT_WINDOW}])\n'
    "  or\n"
    f"  increase({n.total(n.LEDGER_CONSISTENCY_FAILURES)}[{EVENT_WINDOW}])\n"
    ")"
)
# Incidents recorded as breached (escalated) by the receiver, per SEV of the incident.
SLA_BREACHES = (f"sum by (sev) (increase({n.total(n.INCIDENTS_SLA_BREACHED)}"
                f"[{EVENT_WINDOW}]))")

# Every threshold alert's signal, by catalog.ThresholdAlert.signal_key.
ALERT_SIGNALS: dict[str, str] = {
    **{str(key): signal for key, signal in SEED_ALERT_SIGNALS.items()},
    "ledger_tampering": LEDGER_TAMPERING,
    "sla_breaches": SLA_BREACHES,
    # the canary controller's phase (aurora.canary.controller), 1 while it holds
    "canary_aborted": f'max by (rollout) ({n.CANARY_PHASE}{{phase="aborted"}})',
    "canary_inconclusive": f'max by (rollout) ({n.CANARY_PHASE}{{phase="inconclusive"}})',
}

# --- event SLIs: error ratios and event rates -----------------------------------------------


def _sum_rate(series: str, window: str, by: str = "treaty_id") -> str:
    return f"sum by ({by}) (rate({series}[{window}]))"


def error_ratio(key: BudgetKey, window: str) -> str:
    """Share of bad events of SLI ``key`` over ``window``, per treaty."""
    if key == "fill":
        admitted = _sum_rate(selector(REQUESTS_TOTAL, ADMITTED), window)
        dropped = _sum_rate(selector(REQUESTS_TOTAL, DROPPED), window)
        # no "dropped" series before the first drop: count it as zero, not as absent
        return f"(\n  {dropped}\n  or 0 * {admitted}\n)\n/\n{admitted}"
    if key == "provenance":
        return (f"1 - avg by (treaty_id) (avg_over_time({n.PROVENANCE_COVERAGE}"
                f"[{window}]))")
    histogram, bound = ((n.RTT_MS, RTT_GOOD_MS) if key == "rtt"
                        else (n.POLICY_DECISION_MS, POLICY_GOOD_MS))
    good = _sum_rate(selector(n.bucket(histogram), le_matcher(bound)), window)
    total = _sum_rate(n.count(histogram), window)
    return f"1 - (\n  {good}\n  /\n  {total}\n)"


def events_in(key: BudgetKey, window: str) -> str:
    """How many events of SLI ``key`` happened in ``window`` (the minimum-traffic guard)."""
    if key in ("fill", "provenance"):
        series = selector(REQUESTS_TOTAL, ADMITTED)
    else:
        series = n.count(n.RTT_MS if key == "rtt" else n.POLICY_DECISION_MS)
    return f"sum by (treaty_id) (increase({series}[{window}]))"


# --- recording-rule names ----------------------------------------------------------------------

FILL_P50_RECORD = "treaty:fill_rate:p50_rate1h"
FILL_P95_RECORD = "treaty:fill_rate:p95_rate1h"
FILL_P95_STRICT_RECORD = "treaty:fill_rate:p95_strict_rate1h"
RTT_P50_RECORD = "treaty:rtt_ms:p50_rate5m"
RTT_P95_RECORD = "treaty:rtt_ms:p95_rate5m"
POLICY_P99_RECORD = "treaty:policy_decision_ms:p99_rate5m"

QUANTILE_RECORDS: dict[str, str] = {
    FILL_P50_RECORD: fill_p50(),
    FILL_P95_RECORD: fill_p95_literal(),
    FILL_P95_STRICT_RECORD: fill_p95_strict(),
    RTT_P50_RECORD: rtt_quantile(0.5),
    RTT_P95_RECORD: rtt_quantile(0.95),
    POLICY_P99_RECORD: policy_p99(),
}


# Each SLO per track during a canary (the bridges' scrape targets carry `track` and
# `version`, aurora.slo.promconfig); outside a canary every series is track="stable".
def _track_records(by: str = "treaty_id, track, version") -> dict[str, str]:
    return {
        "track:fill_rate:p50_rate1h": quantile(0.5, n.FILL_RATE, FILL_RATE_WINDOW, by=by),
        "track:fill_rate:p95_rate1h": quantile(0.95, n.FILL_RATE, FILL_RATE_WINDOW, by=by),
        "track:rtt_ms:p50_rate5m": quantile(0.5, n.RTT_MS, LATENCY_WINDOW, by=by),
        "track:rtt_ms:p95_rate5m": quantile(0.95, n.RTT_MS, LATENCY_WINDOW, by=by),
        "track:policy_decision_ms:p99_rate5m": quantile(0.99, n.POLICY_DECISION_MS,
                                                        LATENCY_WINDOW, by=by),
        "track:provenance_coverage:min": f"min by ({by}) ({n.PROVENANCE_COVERAGE})",
        "track:requests:rate5m": f"sum by ({by}, outcome) (rate({REQUESTS_TOTAL}[5m]))",
    }


TRACK_RECORDS: dict[str, str] = _track_records()


def error_ratio_record(key: BudgetKey, window: str) -> str:
    return f"slo:{key}_errors:ratio_rate{window}"


def events_record(key: BudgetKey, window: str) -> str:
    return f"slo:{key}_events:increase{window}"


# --- traffic and target health -------------------------------------------------------------

REQUESTS_BY_OUTCOME = f"sum by (treaty_id, outcome) (rate({REQUESTS_TOTAL}[5m]))"
DROPPED_BY_REASON = f"sum by (treaty_id, reason) (rate({DROPPED_TOTAL}[5m]))"
FAILOVERS_BY_PROVIDER = ("sum by (treaty_id, provider, reason) "
                         f"(rate({n.total(n.FAILOVER_EVENTS)}[5m]))")
TARGETS_UP = "up"
PROMETHEUS_TIME = "time()"  # answers whenever the query engine does

NO_TRAFFIC = (
    'max by (treaty_id) (up{job="aurora-metrics"}) == 1\n'
    "unless on (treaty_id)\n"
    f"{_sum_rate(selector(REQUESTS_TOTAL, ADMITTED), NO_TRAFFIC_WINDOW)} > 0"
)
TARGET_DOWN = 'up{job=~"aurora-metrics|simulator-metrics|aurora-incidents"} == 0'

# --- providers (:9110) ---------------------------------------------------------------------

PROVIDER_ACTIVE = f"max by (provider) ({n.PROVIDER_ACTIVE})"
PROVIDER_LATENCY = f"max by (provider) ({n.PROVIDER_LATENCY})"
PROVIDER_CAPACITY = f"max by (provider) ({n.PROVIDER_CAPACITY})"
PROVIDER_PRICE = f"max by (provider) ({n.PROVIDER_PRICE})"
PROVIDER_REPUTATION = f"max by (provider) ({n.PROVIDER_REPUTATION})"
PROVIDER_ORDERS = f"sum by (provider, outcome) (rate({n.total(n.PROVIDER_ORDERS)}[5m]))"

# --- the reporter: whole-window values for one treaty ----------------------------------------


def increase_by(series: str, window: str, by: str = "treaty_id") -> str:
    return f"sum by ({by}) (increase({series}[{window}]))"


def requests_by_outcome(window: str, treaty_id: str) -> str:
    return increase_by(selector(REQUESTS_TOTAL, treaty_id=treaty_id), window,
                       "treaty_id, outcome")


def drops_by_reason(window: str, treaty_id: str) -> str:
    return increase_by(selector(DROPPED_TOTAL, treaty_id=treaty_id), window,
                       "treaty_id, reason")


def histogram_good(histogram: str, bound: float, window: str, treaty_id: str) -> str:
    return increase_by(selector(n.bucket(histogram), le_matcher(bound), treaty_id=treaty_id),
                       window)


def histogram_count(histogram: str, window: str, treaty_id: str) -> str:
    return increase_by(selector(n.count(histogram), treaty_id=treaty_id), window)


def fill_windows(window: str, treaty_id: str) -> str:
    """How many fill-rate observations (one per ``fill_bucket_every``) the window holds."""
    return increase_by(selector(n.bucket(n.FILL_RATE), 'le="+Inf"', treaty_id=treaty_id),
                       window)


def over_time(function: str, metric: str, window: str, treaty_id: str) -> str:
    """``avg``/``min``/``count`` of ``metric``'s samples over the window, per treaty."""
    aggregate = "sum" if function == "count" else function
    return (f"{aggregate} by (treaty_id) "
            f"({function}_over_time({selector(metric, treaty_id=treaty_id)}[{window}]))")


# --- the soak's tasks ----------------------------------------------------------------------

# `curl http://localhost:9109/metrics | grep -E 'treaty_fill_rate|treaty_rtt_ms'`
SEED_METRICS_GREP = (n.FILL_RATE, n.RTT_MS)


def dropped_rate(window: str) -> str:
    """The seed's anomaly query over another window (the soak's clock)."""
    return f"rate({DROPPED_TOTAL}[{window}])"


def dropped_share(window: str) -> str:
    """Dropped / admitted orders over ``window``, all treaties together."""
    return (f"sum(rate({selector(REQUESTS_TOTAL, DROPPED)}[{window}])) / "
            f"sum(rate({selector(REQUESTS_TOTAL, ADMITTED)}[{window}]))")


# the coverage gauge as recorded, for exports and warm-up checks
PROVENANCE_SERIES = n.PROVENANCE_COVERAGE
FILL_RATE_SERIES = n.FILL_RATE


# --- incidents (the receiver, :9111) -------------------------------------------------------

INCIDENTS_OPEN = f"sum by (sev) ({n.INCIDENTS_OPEN})"
INCIDENTS_OPENED = f"sum by (sev) (increase({n.total(n.INCIDENTS_OPENED)}[1h]))"
