"""`aurora canary`: ``plan`` (what each comparison needs before a rollout can decide) and
``replay``.

``replay`` runs a rollout step's analysis on past ledger data. Errors are
``AuroraError``s (one ``error: ...`` line, non-zero exit).
"""

from __future__ import annotations

import json
import math
from typing import Any

import typer

from aurora.cliopts import DURATION, SINCE, bounded, finite
from aurora.errors import AuroraError
from aurora.terminal import shown_markup

app = typer.Typer(no_args_is_help=True)


def _hours(h: float | None) -> str:
    if h is None or math.isinf(h):
        return "never"
    return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} d"


@app.command("plan")
def plan_command(
    rate: float = typer.Option(None, parser=finite(0, 1e6),
                               help="Orders per minute (default: the rate at which the "
                               "tenants' daily budgets last the day, config/workloads.json)."),
    steps: str = typer.Option("10,50,100", help="Canary weights in percent, ending at 100."),
    alpha: float = typer.Option(0.05, parser=finite(0, 1),
                               help="False-fail rate of a step, all comparisons."),
    beta: float = typer.Option(0.10, parser=finite(0, 1),
                               help="False-pass rate of a canary worse by the effect."),
    power: float = typer.Option(0.80, parser=finite(0, 1),
                               help="Chance of a verdict by the printed time."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Samples each comparison needs and the expected time to a verdict per step."""
    from rich.console import Console
    from rich.table import Table

    from aurora.canary.analysis import COMPARISONS, Thresholds, size
    from aurora.canary.plan import parse_steps

    try:
        weights = parse_steps(steps)
        thresholds = Thresholds.of(alpha=alpha, beta=beta, comparisons=len(COMPARISONS))
        if not 0 < power < 1:
            raise ValueError("--power must be between 0 and 1")
    except ValueError as exc:
        raise AuroraError(str(exc), exit_code=2) from None
    if rate is None:
        from aurora.config import load_workloads
        from aurora.home import Home
        from aurora.traffic.plan import sustainable_rate

        rate = sustainable_rate(load_workloads(Home.discover())) * 60.0
    if not rate > 0:
        raise AuroraError("--rate must be positive (orders per minute)", exit_code=2)

    console = Console(stderr=True)
    with console.status("simulating the sequential tests…"):
        sizes = [size(c, rate_per_min=rate, weight=0.5, thresholds=thresholds, power=power)
                 for c in COMPARISONS]
    rows: list[dict[str, Any]] = []
    for w in weights:
        for c, s in zip(COMPARISONS, sizes, strict=True):
            per_hour = rate * 60.0 * min(w, 100 - w) / 100.0
            rows.append({
                "weight": w, "comparison": c.key, "bad": c.bad, "baseline": c.baseline,
                "effect": c.effect, "pairs_to_fail": s.pairs_to_fail,
                "pairs_to_pass": s.pairs_to_pass, "pairs_per_hour": round(per_hour, 3),
                "hours_to_fail": _div(s.pairs_to_fail, per_hour),
                "hours_to_pass": _div(s.pairs_to_pass, per_hour),
            })
    if as_json:
        print(json.dumps({"rate_per_min": rate, "alpha": alpha, "beta": beta, "power": power,
                          "rows": rows}, indent=2))
        return
    table = Table(title=f"canary plan at {rate:.2f} orders/min (alpha {alpha:g} per step, "
                  f"beta {beta:g}, power {power:g})")
    for col in ("step", "comparison", "stable rate", "effect", "pairs to fail",
                "pairs to pass", "time to fail", "time to pass"):
        table.add_column(col, justify="left" if col == "comparison" else "right")
    for r in rows:
        if r["weight"] == 100:
            continue
        table.add_row(f"{r['weight']} %", r["comparison"], f"{r['baseline']:g}",
                      f"+{r['effect']:g}", str(r["pairs_to_fail"] or "-"),
                      str(r["pairs_to_pass"] or "-"), _hours(r["hours_to_fail"]),
                      _hours(r["hours_to_pass"]))
    Console().print(table)
    print("At 100 % no stable slice is left to compare with: the step promotes after its "
          "hold if the hard gates stay clean.\nA pair is one canary order matched with one "
          "order of the stable slice of the same weight; times are at the given rate.")


def _div(pairs: int | None, per_hour: float) -> float | None:
    if pairs is None or per_hour <= 0:
        return None
    return round(pairs / per_hour, 2)


@app.command("replay")
def replay_command(
    since: str = typer.Option("24h", "--since", parser=SINCE,
                              help="Judge the ledger's orders from this long ago (or this "
                              "RFC 3339 time) until now."),
    weight: int = typer.Option(10, parser=bounded(1, 99),
                               help="The canary weight to replay, in percent."),
    baseline: str = typer.Option("1h", parser=DURATION,
                                 help="The span before --since whose stable latency fixes "
                                 "the RTT and policy thresholds."),
    alpha: float = typer.Option(0.05, parser=finite(0, 1),
                               help="False-fail rate of a step, all comparisons."),
    beta: float = typer.Option(0.10, parser=finite(0, 1),
                               help="False-pass rate of a canary worse by the effect."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The rollout's analysis on past ledger data, moving no traffic.

    The tenants a canary of --weight would hold are compared with the matched stable slice,
    exactly as a rollout step would be judged; with one release running everywhere this
    is an A/A test of the rules: a FAIL here is a rule that would abort a good candidate.
    """
    import time
    from datetime import UTC, datetime

    from rich.console import Console

    from aurora.canary.analysis import Thresholds
    from aurora.canary.display import measurement_table
    from aurora.canary.step import judge_window
    from aurora.config import load_stack
    from aurora.durations import parse_duration, parse_since
    from aurora.home import Home
    from aurora.ledger.ledger import Ledger
    from aurora.slo.prometheus import PrometheusClient

    home = Home.discover()
    now = time.time()
    start = parse_since(since, datetime.fromtimestamp(now, UTC)).timestamp()
    if start >= now:
        raise AuroraError(f"--since {since} is not in the past", exit_code=2)
    thresholds = Thresholds.of(alpha=alpha, beta=beta)
    with Ledger.open(home, readonly=True) as ledger, \
            PrometheusClient(load_stack(home).prometheus_url) as prom, \
            Console(stderr=True).status("judging the window…"):
        result = judge_window(ledger, prom, start=start, end=now, weight=weight, stable_from=0,
                              step=0, baseline_s=parse_duration(baseline), track=None,
                              thresholds=thresholds)
    measurements = [m.ledger_data() for m in result.measurements]
    document = {
        "window": {"start": result.window.start, "end": result.window.end},
        "weight": weight, "orders": result.orders, "baseline": result.baseline,
        "measurements": measurements,
        "judgement": {"decision": result.judgement.decision.value,
                      "reasons": list(result.judgement.reasons)},
    }
    if as_json:
        print(json.dumps(document, indent=2))
        return
    console = Console()
    console.print(measurement_table(
        measurements,
        f"replay of a {weight} % canary over {result.window.start} … {result.window.end} "
        f"({result.orders} ledger rows)"))
    console.print(f"judgement: {result.judgement.decision.value}")
    for reason in result.judgement.reasons:
        console.print(f"  - {shown_markup(reason)}")
