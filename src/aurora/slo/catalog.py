"""The SLOs, their objectives, alert thresholds and burn-rate policy, defined once.

The treaty governs the SLOs: its ``slo.bridge_rtt_ms`` is the RTT p95 objective (and the
"good" bound of the RTT error budget), its ``kpi_targets.fill_rate`` and
``kpi_targets.provenance_coverage`` are the fill p50 and provenance objectives and their
error budgets. They are read from the treaty of the home this process serves
(``templates/aurora-treaty-akash.json``, :func:`aurora.treaty.load_treaty`) when this module
is imported; :func:`objectives`, :func:`budgets` and :func:`seed_alerts` build the same values
for any treaty. The other numbers are the seed's ("SLO Targets", "Alert if", "Success
Criteria": the alert thresholds stay as the seed wrote them) and the burn-rate policy of
issue 4. The rule files, the Grafana files, the reporter and the soak's checks derive from
them (``python -m aurora.slo.artifacts --write``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aurora.errors import ConfigError
from aurora.home import Home
from aurora.metricnames import RTT_BUCKETS_MS
from aurora.treaty import Treaty, load_treaty

Comparison = Literal[">=", "<="]
Severity = Literal["critical", "warning"]
BudgetKey = Literal["fill", "rtt", "policy", "provenance"]

DATASOURCE_UID = "aurora-prometheus"
RUNBOOK = "docs/RUNBOOK.md"


@dataclass(frozen=True)
class Objective:
    """One line of the seed's SLO table: ``value op target`` must hold over the window."""

    key: str
    title: str
    op: Comparison
    target: float
    unit: Literal["ratio", "ms"]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _percent(ratio: float) -> str:
    return f"{_number(round(ratio * 100, 4))} %"


def rtt_good_ms(treaty: Treaty) -> float:
    """The treaty's RTT objective, which must be a bucket bound of the bridge's histogram
    (the RTT error budget counts the orders in that bucket as good)."""
    bound = treaty.slo.bridge_rtt_ms
    if bound not in RTT_BUCKETS_MS:
        raise ConfigError(f"treaty slo.bridge_rtt_ms {_number(bound)} is not a bucket bound of "
                          f"treaty_rtt_ms ({', '.join(map(str, RTT_BUCKETS_MS))})")
    return float(bound)


def objectives(treaty: Treaty) -> tuple[Objective, ...]:
    """The seed's "Success Criteria / Technical" (fill p50 is there, not in the SLO table),
    with the treaty's RTT, fill and provenance targets."""
    kpi = treaty.kpi_targets
    return (
        Objective("fill_rate_p50", "Fill rate p50", ">=", kpi.fill_rate, "ratio"),
        Objective("fill_rate_p95", "Fill rate p95 (level met in 95 % of windows)", ">=", 0.80,
                  "ratio"),
        Objective("rtt_p50", "RTT p50", "<=", 280.0, "ms"),
        Objective("rtt_p95", "RTT p95", "<=", rtt_good_ms(treaty), "ms"),
        Objective("provenance", "Provenance coverage", ">=", kpi.provenance_coverage, "ratio"),
        Objective("policy_p99", "Policy decision p99", "<=", 25.0, "ms"),
    )


@dataclass(frozen=True)
class BudgetSLO:
    """An SLO read as good events / all events, for error budgets and burn-rate alerts.

    ``objective`` is the share of good events; the error budget is ``1 - objective``.
    """

    key: BudgetKey
    title: str
    objective: float
    good: str
    total: str
    alert: str  # name of the burn-rate alert
    anchor_slo: str  # the OBJECTIVES entry this budget protects

    @property
    def error_budget(self) -> float:
        """The share of bad events the SLO allows."""
        return round(1 - self.objective, 6)


# Bucket bound the policy SLI counts as "good" (a bucket bound of policy_decision_ms).
POLICY_GOOD_MS = 25.0


def budgets(treaty: Treaty) -> tuple[BudgetSLO, ...]:
    kpi, rtt = treaty.kpi_targets, _number(rtt_good_ms(treaty))
    return (
        # The treaty's fill target (kpi_targets.fill_rate, the seed's p50) as an event SLI.
        BudgetSLO("fill", "Fill rate", kpi.fill_rate, "filled orders",
                  "admitted orders (filled + dropped)", "TreatyFillBudgetBurn", "fill_rate_p50"),
        # "RTT p95 <= 350 ms" is "95 % of orders get their ACK within 350 ms".
        BudgetSLO("rtt", "RTT", 0.95, f"orders with RTT <= {rtt} ms", "orders with an ACK",
                  "TreatyRttBudgetBurn", "rtt_p95"),
        # "policy p99 <= 25 ms" is "99 % of decisions take at most 25 ms".
        BudgetSLO("policy", "Policy latency", 0.99, f"decisions <= {_number(POLICY_GOOD_MS)} ms",
                  "policy decisions", "PolicyLatencyBudgetBurn", "policy_p99"),
        # The coverage gauge already is good/total (re-verified / accepted orders); its
        # average over a window is the SLI.
        BudgetSLO("provenance", "Provenance", kpi.provenance_coverage,
                  "orders whose ledger record re-verifies", "provider-accepted orders",
                  "TreatyProvenanceBudgetBurn", "provenance"),
    )


@dataclass(frozen=True)
class BurnWindow:
    """A multiwindow burn-rate pair: both windows must burn faster than ``factor``."""

    long: str
    short: str
    factor: float
    severity: Severity
    action: Literal["page", "ticket"]


# The SRE workbook's pairs scaled to the soak's 7-day SLO period: 16.8x for 1 h spends
# 10 % of a 7-day budget, 5.6x for 6 h spends 20 %, 2.8x for 1 d spends 40 %.
SLO_PERIOD = "7d"
BURN_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow("1h", "5m", 16.8, "critical", "page"),
    BurnWindow("6h", "30m", 5.6, "critical", "page"),
    BurnWindow("1d", "2h", 2.8, "warning", "ticket"),
)
# A quiet treaty must not page on three failed orders: a burn-rate alert needs at least this
# many events of its SLI in its long window.
MIN_EVENTS_IN_LONG_WINDOW = 100


@dataclass(frozen=True)
class ThresholdAlert:
    """An alert that compares one signal with a threshold: ``signal op threshold``.

    The signal is ``queries.ALERT_SIGNALS[alert.signal_key]`` (Grafana needs it apart from
    the threshold); ``hold`` is Prometheus' ``for:`` (None: fire at the first evaluation).
    """

    name: str
    slo: str  # the `slo` label, as on the burn-rate alerts (Alertmanager inhibits by it)
    op: Literal["<", ">"]
    threshold: float
    hold: str | None
    severity: Severity
    summary: str
    description: str
    signal: str | None = None  # key of queries.ALERT_SIGNALS; default: the `slo` label

    @property
    def signal_key(self) -> str:
        return self.signal or self.slo



def seed_alerts(treaty: Treaty) -> tuple[ThresholdAlert, ...]:
    """The seed's four alerts: its thresholds, the treaty's objectives in their text."""
    target = {o.key: o.target for o in objectives(treaty)}
    fill, rtt, prov = target["fill_rate_p50"], target["rtt_p95"], target["provenance"]
    return (
        ThresholdAlert("TreatyFillRateLow", "fill", "<", 0.75, "15m", "critical",
                       "Fill rate below 0.75 for 15 minutes on {{ $labels.treaty_id }}",
                       "treaty_fill_rate is {{ $value | humanizePercentage }} (alert below 75 %, "
                       f"SLO p50 >= {_percent(fill)}): admitted orders are being dropped."),
        ThresholdAlert("TreatyRttP95High", "rtt", ">", 400.0, "15m", "warning",
                       "RTT p95 above 400 ms for 15 minutes on {{ $labels.treaty_id }}",
                       "p95 order-to-ACK round trip over 5m is {{ $value | printf \"%.0f\" }} "
                       f"ms (alert above 400 ms, SLO <= {_number(rtt)} ms)."),
        ThresholdAlert("TreatyProvenanceLow", "provenance", "<", 0.90, "5m", "critical",
                       "Provenance coverage below 0.90 for 5 minutes on {{ $labels.treaty_id }}",
                       "treaty_provenance_coverage is {{ $value | humanizePercentage }} (alert "
                       f"below 90 %, SLO >= {_percent(prov)}): accepted orders whose ledger "
                       "record does not re-verify."),
        ThresholdAlert("PolicyLatencyP99High", "policy", ">", 50.0, "5m", "warning",
                       "Policy decision p99 above 50 ms for 5 minutes on {{ $labels.treaty_id }}",
                       "p99 vault-law decision time over 5m is {{ $value | printf \"%.1f\" }} "
                       "ms (alert above 50 ms, SLO <= 25 ms)."),
    )


# How far back the tampering and SLA-breach alerts look for a new failure: a counter that
# went up in this window keeps the alert firing for that long after the event.
EVENT_WINDOW = "10m"

# The treaty this process serves, and the SLOs it sets.
TREATY: Treaty = load_treaty(Home.discover())
DEFAULT_TREATY_ID = TREATY.treaty_id
OBJECTIVES: tuple[Objective, ...] = objectives(TREATY)
OBJECTIVE = {o.key: o for o in OBJECTIVES}
BUDGETS: tuple[BudgetSLO, ...] = budgets(TREATY)
BUDGET = {b.key: b for b in BUDGETS}
# Bucket bound the RTT SLI counts as "good".
RTT_GOOD_MS = rtt_good_ms(TREATY)
SEED_ALERTS: tuple[ThresholdAlert, ...] = seed_alerts(TREATY)

# Beyond the seed: the record at risk (SEV1 in config/incidents.json) and incident response
# itself failing (an unacknowledged incident past its SLA, issue 6's breach metric).
INTEGRITY_ALERTS: tuple[ThresholdAlert, ...] = (
    ThresholdAlert("TreatyProvenanceCritical", "provenance", "<", 0.80, "5m", "critical",
                   "Provenance coverage below 0.80 for 5 minutes on {{ $labels.treaty_id }}",
                   "treaty_provenance_coverage is {{ $value | humanizePercentage }}: more than "
                   "one accepted order in five has no ledger record that re-verifies (SEV1, "
                   f"below the 0.90 alert and the {_number(OBJECTIVE['provenance'].target)} "
                   "SLO)."),
    ThresholdAlert("AuroraLedgerTampering", "ledger", ">", 0.0, None, "critical",
                   "Ledger records fail to re-verify on {{ $labels.treaty_id }}",
                   "{{ $value | printf \"%.0f\" }} order record(s) failed re-verification "
                   "(signature, leaf hash or inclusion) or a signed checkpoint was not an "
                   f"append-only extension of the previous one in the last {EVENT_WINDOW}: "
                   "the Remembrancer may have been altered.",
                   signal="ledger_tampering"),
    ThresholdAlert("AuroraIncidentSlaBreached", "incident_response", ">", 0.0, None, "critical",
                   "A {{ $labels.sev }} incident went unacknowledged past its response SLA",
                   "{{ $value | printf \"%.0f\" }} {{ $labels.sev }} incident(s) breached "
                   f"their response SLA in the last {EVENT_WINDOW} (aurora incident list "
                   "--open shows BREACHED): nobody acknowledged them in time.",
                   signal="sla_breaches"),
)
THRESHOLD_ALERTS: tuple[ThresholdAlert, ...] = SEED_ALERTS + INTEGRITY_ALERTS

# A canary's verdicts (aurora canary start): an abort or an undecided step is someone's to
# look at; the controller's metrics say why, the ledger's deploy entries prove it.
CANARY_ALERTS: tuple[ThresholdAlert, ...] = (
    ThresholdAlert("AuroraCanaryAborted", "canary", ">", 0.0, None, "warning",
                   "Canary rollout {{ $labels.rollout }} was aborted",
                   "The candidate failed a comparison or a hard gate (or an operator aborted "
                   "it): the split is back at weight 0 and the candidate stopped. `aurora "
                   "canary status` shows each measurement with its rule; `aurora canary "
                   "report` signs it.", signal="canary_aborted"),
    ThresholdAlert("AuroraCanaryInconclusive", "canary", ">", 0.0, None, "warning",
                   "Canary rollout {{ $labels.rollout }} cannot decide",
                   "The step could not be decided in time (not enough orders, a failed "
                   "query) or the measured split drifted from its weight: the weight is held "
                   "and the rollout aborts if it stays undecided.",
                   signal="canary_inconclusive"),
)

# Admitted traffic stopped while the exporter is up (a broken traffic path, not a quiet day).
NO_TRAFFIC_WINDOW = "10m"
NO_TRAFFIC_HOLD = "10m"
# A scrape target down.
TARGET_DOWN_HOLD = "5m"

# Data loss: the seed's RPO.
RPO_SECONDS = 15 * 60


def runbook_url(alert: str) -> str:
    """The runbook anchor of an alert (GitHub-style: the heading text, lower-cased)."""
    return f"{RUNBOOK}#{alert.lower()}"


# Which error budget and which seed alert each objective belongs to (the report's charts
# mark the alert's threshold and show the budget spent; RTT p50 has no alert of its own).
OBJECTIVE_BUDGET: dict[str, BudgetKey] = {
    "fill_rate_p50": "fill", "fill_rate_p95": "fill", "rtt_p50": "rtt", "rtt_p95": "rtt",
    "provenance": "provenance", "policy_p99": "policy",
}
OBJECTIVE_ALERT: dict[str, str | None] = {
    "fill_rate_p50": "TreatyFillRateLow", "fill_rate_p95": "TreatyFillRateLow",
    "rtt_p50": None, "rtt_p95": "TreatyRttP95High", "provenance": "TreatyProvenanceLow",
    "policy_p99": "PolicyLatencyP99High",
}
