"""The Grafana dashboard, built with Grafana's own SDK (``grafana-foundation-sdk``).

One stat and one time series per seed SLO with its objective and alert threshold as
coloured steps, the error-budget burn rate, traffic, incidents and the providers. Queries
come from :mod:`aurora.slo.queries`, thresholds from :mod:`aurora.slo.catalog`; the SDK
builds the panels and lays them out on Grafana's 24-column grid. :mod:`aurora.slo.artifacts`
writes it twice: as the body of the seed's ``POST /api/dashboards/db`` call
(``grafana-kpi-panels-patch.json``) and for file provisioning (``dashboards/aurora-kpi.json``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus as gp
from grafana_foundation_sdk.builders import stat as gs
from grafana_foundation_sdk.builders import timeseries as gt
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    FieldColorModeId,
    Panel,
    Threshold,
    ThresholdsMode,
)

from aurora import metricnames as n
from aurora.slo import queries as q
from aurora.slo.catalog import (
    BUDGETS,
    BURN_WINDOWS,
    DATASOURCE_UID,
    OBJECTIVE,
    SEED_ALERTS,
    BudgetKey,
)
from aurora.slo.rules import number

UID = "aurora-kpi"
TITLE = "Aurora — treaty KPIs"
Steps = list[tuple[str, float | None]]
Exprs = list[tuple[str, str]]


def _datasource() -> DataSourceRef:
    return DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)


def _targets(exprs: Exprs) -> list[gp.Dataquery]:
    return [gp.Dataquery().ref_id(chr(ord("A") + i)).datasource(_datasource()).expr(expr)
            .legend_format(legend).range() for i, (expr, legend) in enumerate(exprs)]


def _thresholds(steps: Steps) -> gd.ThresholdsConfig:
    return gd.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=v, color=c) for c, v in steps])


def _alert_threshold(slo: BudgetKey) -> float:
    return next(a.threshold for a in SEED_ALERTS if a.slo == slo)


def _ratio(value: float) -> str:
    """A ratio as the seed writes them: two decimals at least (0.80, 0.975)."""
    return f"{value:.2f}" if round(value, 2) == value else repr(value)


def _target(objective_key: str) -> str:
    objective = OBJECTIVE[objective_key]
    return _ratio(objective.target) if objective.unit == "ratio" else number(objective.target)


def _steps(objective_key: str, alert_at: float) -> Steps:
    """Colours for an SLO: red beyond the alert, orange beyond the objective, green within."""
    target = OBJECTIVE[objective_key].target
    if OBJECTIVE[objective_key].op == ">=":
        return [("red", None), ("orange", alert_at), ("green", target)]
    return [("green", None), ("orange", target), ("red", alert_at)]


def _stat(title: str, exprs: Exprs, *, unit: str, steps: Steps, description: str = ""
          ) -> gs.Panel:
    panel = (gs.Panel().title(title).description(description).datasource(_datasource())
             .span(6).height(4).unit(unit).thresholds(_thresholds(steps))
             .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).fields("")
                             .values(False))
             .color_mode(common.BigValueColorMode.BACKGROUND)
             .graph_mode(common.BigValueGraphMode.AREA)
             .text_mode(common.BigValueTextMode.VALUE_AND_NAME))
    for target in _targets(exprs):
        panel = panel.with_target(target)
    return panel


def _series(title: str, exprs: Exprs, *, width: int, height: int, unit: str,
            description: str = "", steps: Steps | None = None,
            minmax: tuple[float, float] | None = None) -> gt.Panel:
    panel = (gt.Panel().title(title).description(description).datasource(_datasource())
             .span(width).height(height).unit(unit)
             .color_scheme(gd.FieldColor().mode(FieldColorModeId.PALETTE_CLASSIC))
             .draw_style(common.GraphDrawStyle.LINE).line_width(1).fill_opacity(10)
             .show_points(common.VisibilityMode.NEVER).span_nulls(False)
             .thresholds_style(GraphThresholdsStyleConfig().mode(
                 common.GraphThresholdsStyleMode.LINE if steps
                 else common.GraphThresholdsStyleMode.OFF))
             .legend(VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True))
             .tooltip(VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.NONE)))
    if steps:
        panel = panel.thresholds(_thresholds(steps))
    if minmax:
        panel = panel.min(minmax[0]).max(minmax[1])
    for target in _targets(exprs):
        panel = panel.with_target(target)
    return panel


def _add(board: gd.Dashboard, *panels: Builder[Panel]) -> gd.Dashboard:
    for panel in panels:  # the SDK places each on the grid after the one before
        board = board.with_panel(panel)
    return board


def build() -> gd.Dashboard:
    """The dashboard as an SDK builder."""
    fill_alert, rtt_alert = _alert_threshold("fill"), _alert_threshold("rtt")
    prov_alert, policy_alert = _alert_threshold("provenance"), _alert_threshold("policy")
    board = (gd.Dashboard(TITLE).uid(UID)
             .description("Generated by python -m aurora.slo.artifacts --write with Grafana's "
                          "SDK (aurora.slo.dashboard); see docs/OBSERVATORY.md")
             .tags(["aurora", "slo"]).timezone("utc").editable().refresh("30s")
             .time("now-6h", "now"))
    board = board.with_row(gd.Row("SLOs now"))
    board = _add(board,
        _stat("Fill rate (sliding window)", [(q.FILL_RATE_NOW, "{{treaty_id}}")],
              unit="percentunit", steps=_steps("fill_rate_p95", fill_alert),
              description="treaty_fill_rate: filled / (filled + dropped) over fill_window."),
        _stat("RTT p95 (5m)", [(q.RTT_P95_RECORD, "{{treaty_id}}")], unit="ms",
              steps=_steps("rtt_p95", rtt_alert)),
        _stat("Provenance coverage", [(q.PROVENANCE_NOW, "{{treaty_id}}")],
              unit="percentunit", steps=_steps("provenance", prov_alert)),
        _stat("Policy decision p99 (5m)", [(q.POLICY_P99_RECORD, "{{treaty_id}}")], unit="ms",
              steps=_steps("policy_p99", policy_alert)),
    )
    board = board.with_row(gd.Row("SLOs over time"))
    burn_steps: Steps = [("green", None), ("orange", min(w.factor for w in BURN_WINDOWS)),
                         ("red", max(w.factor for w in BURN_WINDOWS))]
    board = _add(board,
        _series("Fill rate", [
            (q.FILL_RATE_NOW, "{{treaty_id}} now"),
            (q.FILL_P50_RECORD, "{{treaty_id}} p50 (1h)"),
            (q.FILL_P95_STRICT_RECORD, "{{treaty_id}} level met in 95 % of windows (1h)"),
            (q.FILL_P95_RECORD, "{{treaty_id}} p95, seed's literal reading (1h)"),
        ], width=12, height=8, unit="percentunit", minmax=(0, 1),
            steps=_steps("fill_rate_p95", fill_alert),
            description=f"SLO: p50 >= {_target('fill_rate_p50')} and the level met in 95 % "
                        f"of windows >= {_target('fill_rate_p95')}; alert below "
                        f"{_ratio(fill_alert)} for 15 m."),
        _series("Order RTT", [(q.RTT_P50_RECORD, "{{treaty_id}} p50"),
                              (q.RTT_P95_RECORD, "{{treaty_id}} p95")],
                width=12, height=8, unit="ms", steps=_steps("rtt_p95", rtt_alert),
                description=f"SLO: p50 <= {_target('rtt_p50')} ms, p95 <= "
                            f"{_target('rtt_p95')} ms; alert p95 > {number(rtt_alert)} ms "
                            "for 15 m."),
        _series("Provenance coverage", [(q.PROVENANCE_NOW, "{{treaty_id}}")], width=12,
                height=8, unit="percentunit", minmax=(0, 1),
                steps=_steps("provenance", prov_alert),
                description=f"SLO >= {_target('provenance')}; alert below "
                            f"{_ratio(prov_alert)} for 5 m."),
        _series("Policy decision latency p99", [(q.POLICY_P99_RECORD, "{{treaty_id}}")],
                width=12, height=8, unit="ms", steps=_steps("policy_p99", policy_alert),
                description=f"SLO: p99 <= {_target('policy_p99')} ms; alert above "
                            f"{number(policy_alert)} ms for 5 m."),
        _series("Error-budget burn rate (1h)", [
            (f"{q.error_ratio_record(b.key, '1h')} / {number(b.error_budget)}",
             f"{{{{treaty_id}}}} {b.key}") for b in BUDGETS
        ], width=24, height=8, unit="suffix:×", steps=burn_steps,
            description="1 = spending the 7-day budget exactly over 7 days; pages at 16.8x "
                        "(1h) and 5.6x (6h), tickets at 2.8x (1d)."),
    )
    board = board.with_row(gd.Row("Traffic and incidents"))
    board = _add(board,
        _series("Orders by outcome", [(q.REQUESTS_BY_OUTCOME, "{{outcome}}")], width=8,
                height=8, unit="reqps"),
        _series("Dropped requests", [(q.DROPPED_BY_REASON, "{{reason}}"),
                                     (q.SEED_DROPPED_RATE, "seed query")],
                width=8, height=8, unit="reqps",
                description="Admitted orders no provider filled (the seed's anomaly query)."),
        _series("Failovers", [(q.FAILOVERS_BY_PROVIDER, "{{provider}} {{reason}}")], width=8,
                height=8, unit="ops",
                description="A candidate provider failed and the next was tried."),
        _series("Open incidents", [(q.INCIDENTS_OPEN, "{{sev}}")], width=8, height=8,
                unit="short", description="Incidents not yet resolved, per SEV (drills "
                "included): aurora incident list --open."),
        _series("Incidents opened (1h)", [(q.INCIDENTS_OPENED, "{{sev}}")], width=8,
                height=8, unit="short"),
        _series("SLA breaches (10m)", [(q.SLA_BREACHES, "{{sev}}")], width=8, height=8,
                unit="short", steps=[("green", None), ("red", 1.0)],
                description="Incidents nobody acknowledged within their SEV's response "
                            "SLA; AuroraIncidentSlaBreached fires on any."),
    )
    # Side by side during a canary (aurora canary start); one "stable" line otherwise.
    track = "{{track}} {{version}}"
    records = q.TRACK_RECORDS
    board = board.with_row(gd.Row("Canary: stable vs canary (per track)"))
    board = _add(board,
        _series("Fill rate p50 by track", [(records["track:fill_rate:p50_rate1h"], track)],
                width=8, height=8, unit="percentunit", minmax=(0, 1),
                steps=_steps("fill_rate_p50", fill_alert)),
        _series("RTT p95 by track", [(records["track:rtt_ms:p95_rate5m"], track)], width=8,
                height=8, unit="ms", steps=_steps("rtt_p95", rtt_alert)),
        _series("Policy decision p99 by track",
                [(records["track:policy_decision_ms:p99_rate5m"], track)], width=8,
                height=8, unit="ms", steps=_steps("policy_p99", policy_alert)),
        _series("Provenance coverage by track",
                [(records["track:provenance_coverage:min"], track)], width=8, height=8,
                unit="percentunit", minmax=(0, 1), steps=_steps("provenance", prov_alert),
                description="The canary's must stay at 1: below it the rollout aborts."),
        _series("Orders by track and outcome",
                [(records["track:requests:rate5m"], "{{track}} {{outcome}}")], width=8,
                height=8, unit="reqps"),
        _series("Canary weight and verdicts", [
            (f"max by (rollout) ({n.CANARY_WEIGHT})", "weight % {{rollout}}"),
            (f"max by (rollout, phase) ({n.CANARY_PHASE}) > 0", "{{phase}}")],
                width=8, height=8, unit="short",
                description="The controller's weight and phase (aurora canary status)."),
    )
    board = board.with_row(gd.Row("Providers (:9110)"))
    board = _add(board,
        _series("Active", [(q.PROVIDER_ACTIVE, "{{provider}}")], width=8, height=8,
                unit="bool", minmax=(0, 1)),
        _series("Latency", [(q.PROVIDER_LATENCY, "{{provider}}")], width=8, height=8,
                unit="ms"),
        _series("Orders", [(q.PROVIDER_ORDERS, "{{provider}} {{outcome}}")], width=8,
                height=8, unit="reqps"),
        _series("Capacity (GPU-hours)", [(q.PROVIDER_CAPACITY, "{{provider}}")], width=8,
                height=8, unit="short"),
        _series("Price (USD / GPU-hour)", [(q.PROVIDER_PRICE, "{{provider}}")], width=8,
                height=8, unit="currencyUSD"),
        _series("Reputation", [(q.PROVIDER_REPUTATION, "{{provider}}")], width=8, height=8,
                unit="short"),
        _series("Scrape targets up", [(q.TARGETS_UP, "{{job}}")], width=24, height=6,
                unit="bool", minmax=(0, 1)),
    )
    return board


def dashboard() -> dict[str, Any]:
    """The dashboard JSON; ``id`` null so that an import creates or overwrites by ``uid``."""
    document: dict[str, Any] = json.loads(json.dumps(build().build(), cls=JSONEncoder))
    for panel_id, panel in enumerate(document["panels"], start=1):
        panel["id"] = panel_id
    return {"id": None, **document}


def dashboard_import() -> dict[str, Any]:
    """The envelope of Grafana's ``POST /api/dashboards/db`` (the seed's curl)."""
    return {"dashboard": dashboard(), "overwrite": True,
            "message": "Aurora treaty KPIs (aurora.slo.dashboard, Grafana foundation SDK)"}


def iter_dashboard_exprs(document: dict[str, Any]) -> Iterator[str]:
    """Every PromQL ``expr`` of a dashboard (panels nested in rows included)."""
    for panel in document.get("panels", []):
        yield from (t["expr"] for t in panel.get("targets", []) if "expr" in t)
        yield from iter_dashboard_exprs(panel)
