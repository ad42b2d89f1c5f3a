"""`aurora canary`: ``plan`` (what each comparison needs before a rollout can decide) and
``replay``.

``replay`` runs a rollout step's analysis on past ledger data. Errors are
``AuroraError``s (one ``error: ...`` line, non-zero exit).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import typer

from aurora.cliopts import DURATION, SINCE, bounded, finite
from aurora.errors import AuroraError
from aurora.terminal import shown_markup

if TYPE_CHECKING:
    from aurora.canary.analysis import Thresholds
    from aurora.canary.candidate import Candidate
    from aurora.canary.plan import Plan
    from aurora.home import Home

app = typer.Typer(no_args_is_help=True)

# the error rates of the sequential tests, the same for planning and replaying a rollout
ALPHA = typer.Option(0.05, parser=finite(0, 1), help="False-fail rate of a step, all comparisons.")
BETA = typer.Option(0.10, parser=finite(0, 1),
                    help="False-pass rate of a canary worse by the effect.")


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
    alpha: float = ALPHA,
    beta: float = BETA,
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
    alpha: float = ALPHA,
    beta: float = BETA,
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


@app.command("start")
def start_command(
    candidate: str = typer.Option(..., "--candidate",
                                  help="The release to roll out: a git ref or a directory."),
    steps: str = typer.Option("10,50,100", help="Canary weights in percent, ending at 100."),
    hold: str = typer.Option("30m", parser=DURATION, help="The least time per step."),
    settle: str = typer.Option("60s", parser=DURATION,
                               help="After each weight change, this long is not judged "
                               "(the hard gates still are): the groups' connections settle."),
    decide_within: str = typer.Option("72h", parser=DURATION,
                                      help="A step undecided this long is inconclusive."),
    baseline: str = typer.Option("1h", parser=DURATION,
                                 help="The span before each step whose stable latency fixes "
                                 "the RTT and policy thresholds."),
    interval: str = typer.Option("60s", parser=DURATION, help="Time between measurements."),
    run_for: str = typer.Option(None, "--for", parser=DURATION,
                                help="Dry run: stop watching after this long (the rollout's "
                                "state stays in the ledger)."),
    linger: str = typer.Option("10m", parser=DURATION,
                               help="The controller keeps its metrics up this long after "
                               "the end, so the canary alert is seen."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Judge the would-be split on live traffic, move nothing."),
    force: bool = typer.Option(False, "--force", help="Start without a passed Day-7 gate."),
    reason: str = typer.Option(None, "--reason", help="Why --force (recorded in the ledger)."),
    rate: float = typer.Option(None, parser=finite(0, 1e6),
                               help="Orders per minute for the printed sample sizes "
                               "(default: the treaty's sustainable rate)."),
) -> None:
    """Start a canary rollout after the Day-7 gate (its signed verdict re-verified).

    The candidate runs as its own replica group beside stable's behind HAProxy on the order
    port (replicated mode); a controller (`canary-controller`) judges each step and moves
    the traffic. With --dry-run nothing moves: the would-be split is judged in the foreground.

    Every measurement, its query, value, threshold and sample size, and every verdict is a
    ``deploy`` ledger entry; `aurora canary status` and `report` read them back.
    """
    import time

    from rich.console import Console

    from aurora.canary.analysis import Thresholds, sizes_record, step_sizes
    from aurora.canary.candidate import resolve
    from aurora.canary.display import measurement_table
    from aurora.canary.plan import Plan, parse_steps
    from aurora.canary.rollout import (
        Settings,
        begin,
        gate_path,
        load,
        tick,
        verify_gate,
        would_be_split,
    )
    from aurora.config import load_stack, load_workloads
    from aurora.durations import parse_duration
    from aurora.home import Home
    from aurora.ledger.ledger import Ledger
    from aurora.slo.prometheus import PrometheusClient
    from aurora.traffic.plan import sustainable_rate
    from aurora.treaty import load_treaty

    home = Home.discover()
    try:
        plan = Plan(steps=parse_steps(steps), hold_s=parse_duration(hold),
                    settle_s=parse_duration(settle),
                    decide_within_s=parse_duration(decide_within))
    except ValueError as exc:
        raise AuroraError(str(exc), exit_code=2) from None
    if force and not (reason or "").strip():
        raise AuroraError("--force needs --reason TEXT (it is recorded in the ledger)",
                          exit_code=2)
    gate: dict[str, Any] = ({"forced": True, "reason": reason} if force
                            else verify_gate(gate_path(home)))
    with Console(stderr=True).status(f"preparing the candidate {candidate}…"):
        chosen = resolve(home, candidate)
    rate_per_min = rate if rate is not None else sustainable_rate(load_workloads(home)) * 60
    thresholds = Thresholds.of()
    console = Console(stderr=True)
    with console.status("sizing the sequential tests…"):
        sized = step_sizes(rate_per_min, plan.steps[0], thresholds)
    sizes = sizes_record(sized, rate_per_min, plan.steps[0])
    out = Console()
    for s in sized:
        out.print(f"{s.key}: {s.pairs_to_pass or '-'} pairs to pass, {s.pairs_to_fail or '-'} "
                  f"to fail a canary worse by {s.effect:g}; at {rate_per_min:.2f} orders/min "
                  f"and {plan.steps[0]} %: {_hours(s.hours(s.pairs_to_pass))} to pass, "
                  f"{_hours(s.hours(s.pairs_to_fail))} to fail")
    treaty_id = load_treaty(home).treaty_id
    settings = Settings(thresholds, parse_duration(baseline), None)
    stack = load_stack(home)
    every = parse_duration(interval)
    until = None if run_for is None else time.time() + parse_duration(run_for)
    if not dry_run:
        _start_live(home, chosen, plan=plan, gate=gate, sizes=sizes, thresholds=thresholds,
                    baseline_s=parse_duration(baseline), interval_s=every,
                    linger_s=parse_duration(linger), treaty_id=treaty_id)
        return
    with Ledger.open(home) as ledger, PrometheusClient(stack.prometheus_url) as prom:
        rollout = begin(ledger, treaty_id=treaty_id, plan=plan, candidate=chosen.describe(),
                        gate=gate, dry_run=True, sizes=sizes, settings=settings)
        out.print(f"rollout {rollout.rollout} started (dry run: no traffic moves)")
        while True:
            time.sleep(min(every, max(0.0, (until or time.time() + every) - time.time())))
            state = rollout.state
            served = would_be_split(ledger, state.step_started_at, state.weight)
            after, result = tick(ledger, prom, rollout, treaty_id=treaty_id, served=served)
            out.print(measurement_table([m.ledger_data() for m in result.measurements],
                                        f"step {state.weight} %: {result.orders} orders"))
            out.print(f"→ {after.phase.value} at {after.weight} %: {shown_markup(after.reason)}")
            rollout = load(ledger, rollout.rollout)
            if after.done or (until is not None and time.time() >= until):
                break
    if rollout.state.phase.value == "aborted":
        raise typer.Exit(1)


def _start_live(home: Home, candidate: Candidate, *, plan: Plan, gate: dict[str, Any],
                sizes: list[dict[str, Any]], thresholds: Thresholds, baseline_s: float,
                interval_s: float, linger_s: float, treaty_id: str) -> None:
    from rich.console import Console

    from aurora.canary.live import launch

    with Console(stderr=True).status("putting the split in front of the bridge…") as status:
        rollout = launch(home, candidate, plan=plan, gate=gate, sizes=sizes,
                         thresholds=thresholds, baseline_s=baseline_s, interval_s=interval_s,
                         linger_s=linger_s, treaty_id=treaty_id, on_step=status.update)
    print(f"rollout {rollout.rollout}: candidate {candidate.version} takes "
          f"{plan.steps[0]} % of tenants; watch it with `aurora canary status`")


@app.command("run", hidden=True)
def run_command(
    rollout_id: str = typer.Option(..., "--rollout"),
    interval: str = typer.Option("60s", parser=DURATION),
    linger: str = typer.Option("10m", parser=DURATION),
) -> None:
    """The controller (started by `aurora canary start`)."""
    from aurora.canary.controller import run
    from aurora.canary.plan import Phase
    from aurora.durations import parse_duration
    from aurora.home import Home

    phase = run(Home.discover(), rollout_id, interval_s=parse_duration(interval),
                linger_s=parse_duration(linger))
    if phase is Phase.ABORTED:
        raise typer.Exit(1)


@app.command("abort")
def abort_command(
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the ledger)."),
) -> None:
    """Abort the running rollout by hand: weight 0 (measured), candidate stopped."""
    import time

    from aurora import procs
    from aurora.canary.analysis import Decision, StepJudgement
    from aurora.canary.evidence import EvidenceError, verdict_entry, weight_entry
    from aurora.canary.live import CONTROLLER, Split
    from aurora.canary.plan import Phase, check_split
    from aurora.canary.rollout import load
    from aurora.home import Home
    from aurora.ledger.ledger import Ledger
    from aurora.treaty import load_treaty
    from aurora.wire import rfc3339_at

    if not reason.strip():
        raise AuroraError("--reason must say why", exit_code=2)
    home = Home.discover()
    treaty_id = load_treaty(home).treaty_id
    split = Split.of(home)
    procs.stop(home, CONTROLLER, timeout=30)  # it would act on the old state
    with Ledger.open(home) as ledger:
        try:
            rollout = load(ledger)
        except EvidenceError as exc:
            raise AuroraError(str(exc)) from None
        if rollout.state.done:
            raise AuroraError(f"rollout {rollout.rollout} is already "
                              f"{rollout.state.phase.value}")
        from dataclasses import replace

        state = rollout.state
        after = replace(state, phase=Phase.ABORTED, weight=0,
                        reason=f"abort by hand: {reason}")
        judgement = StepJudgement(Decision.FAIL, (f"operator: {reason}",), False)
        now = time.time()
        ledger.append(verdict_entry(rollout.rollout, treaty_id, at=rfc3339_at(now),
                                    before=state, after=after, judgement=judgement,
                                    split=check_split(0, 0, state.weight, rollout.plan)))
        if rollout.dry_run:
            print(f"rollout {rollout.rollout} (dry run) aborted")
            return
        counts = split.retire_canary()
        ledger.append(weight_entry(rollout.rollout, treaty_id, at=rfc3339_at(time.time()),
                                   weight=0, why=f"abort by hand confirmed: no order reached "
                                   f"the candidate at weight 0 (HAProxy served canary "
                                   f"{counts['canary']}, stable {counts['stable']} in all); "
                                   f"candidate stopped"))
    print(f"rollout {rollout.rollout} aborted: weight 0, candidate stopped")


@app.command("status")
def status_command(
    rollout_id: str = typer.Option(None, "--rollout", help="Default: the latest rollout."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """The rollout as the ledger records it: steps, measured split, every comparison."""
    from rich.console import Console

    from aurora.canary.display import measurement_table
    from aurora.canary.evidence import EvidenceError, state_json
    from aurora.canary.rollout import load
    from aurora.home import Home
    from aurora.ledger.ledger import Ledger

    with Ledger.open(Home.discover(), readonly=True) as ledger:
        try:
            rollout = load(ledger, rollout_id)
        except EvidenceError as exc:
            raise AuroraError(str(exc)) from None
    state, plan = rollout.state, rollout.plan
    split = rollout.verdicts[-1]["split"] if rollout.verdicts else None
    if as_json:
        print(json.dumps({"rollout": rollout.rollout, "dry_run": rollout.dry_run,
                          "state": state_json(state), "steps": list(plan.steps),
                          "split": split, "measurements": rollout.latest_measurements(),
                          "deploy_entries": rollout.seqs}, indent=2))
        return
    console = Console()
    steps = " → ".join(f"[bold]{w} %[/]" if i == state.step else f"{w} %"
                       for i, w in enumerate(plan.steps))
    console.print(f"rollout {rollout.rollout}{' (dry run)' if rollout.dry_run else ''}: "
                  f"{state.phase.value}, weight {state.weight} %   steps {steps}")
    console.print(f"why: {shown_markup(state.reason)}")
    if split is not None:
        total = split["canary"] + split["stable"]
        share = f"{split['canary'] / total:.3f}" if total else "—"
        console.print(f"measured split: {split['canary']} canary / {split['stable']} stable "
                      f"orders (share {share} vs {split['weight']} %, p = "
                      f"{split['p_value']:.2g}{', drifted' if split['drifted'] else ''})")
    console.print(measurement_table(rollout.latest_measurements(),
                                    f"latest measurements of step {plan.steps[state.step]} %"))
    console.print(f"{len(rollout.seqs)} deploy ledger entries: seq {rollout.seqs[0]} … "
                  f"{rollout.seqs[-1]} (`aurora ledger inclusion-proof --seq N` proves each)")


@app.command("report")
def report_command(
    rollout_id: str = typer.Option(None, "--rollout", help="Default: the latest rollout."),
    key: str = typer.Option(None, "--key", help="GnuPG key to sign with (default: "
                            "$AURORA_GPG_KEY; none: unsigned)."),
    output: str = typer.Option(None, "--output", "-o",
                               help="Default: reports/<rollout>.json."),
) -> None:
    """Write the rollout as canonical JSON with its .sha256, signed with GnuPG."""
    from pathlib import Path

    from aurora.canary.evidence import EvidenceError
    from aurora.canary.rollout import load, write_report
    from aurora.gpg import chosen_key
    from aurora.home import Home
    from aurora.ledger.ledger import Ledger

    home = Home.discover()
    with Ledger.open(home, readonly=True) as ledger:
        try:
            rollout = load(ledger, rollout_id)
        except EvidenceError as exc:
            raise AuroraError(str(exc)) from None
        published = write_report(home, rollout, ledger, key=chosen_key(key),
                                 output=Path(output) if output else None)
    signed = (f"signed: {published.signature}" if published.signature
              else "unsigned: no key (--key or $AURORA_GPG_KEY)")
    print(f"{published.path} ({rollout.state.phase.value}; {signed})")


@app.command("rehearse")
def rehearse_command(
    scenario: str = typer.Option("both", "--scenario",
                                 help="good (promoted to 100 %), bad (aborted) or both."),
    home_dir: str = typer.Option(None, "--home",
                                 help="Where the isolated homes go (default: a new temporary "
                                 "directory, removed afterwards)."),
    rate: float = typer.Option(25.0, parser=finite(1, 500), help="Orders per second."),
    hold: str = typer.Option("15s", parser=DURATION, help="The least time per step."),
    timeout: str = typer.Option("10m", parser=DURATION, help="Give up on a scenario after."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a summary."),
) -> None:
    """The whole rollout on a compressed clock in an isolated home, with real PostgreSQL,
    replicas, HAProxy and Prometheus: a good candidate is promoted, a bad one aborted, and
    no acknowledged order is lost or spent twice. Exit 0 only if both happen as expected."""
    import shutil
    import signal
    import tempfile
    from pathlib import Path

    from rich.console import Console

    from aurora.canary.rehearse import SCENARIOS, RehearsalOptions, rehearse_scenario
    from aurora.durations import parse_duration

    chosen = list(SCENARIOS) if scenario == "both" else [scenario]
    if any(s not in SCENARIOS for s in chosen):
        raise AuroraError(f"--scenario must be good, bad or both, not {scenario!r}",
                          exit_code=2)
    root = Path(home_dir).resolve() if home_dir else Path(tempfile.mkdtemp(
        prefix="aurora-canary-rehearsal-"))
    options = RehearsalOptions(rate=rate, hold_s=parse_duration(hold),
                               timeout_s=parse_duration(timeout))
    results = []
    console = Console(stderr=True)

    def terminated(signum: int, frame: object) -> None:
        # SIGTERM stops the rehearsal like Ctrl-C: each scenario's processes and PostgreSQL
        # cluster are stopped on the way out; a second SIGTERM ends it at once
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, terminated)
    try:
        for name in chosen:
            with console.status(f"{name}: starting…") as status:
                results.append(rehearse_scenario(name, root, options, on_step=status.update))
        document = json.dumps([r.to_json() for r in results], indent=2)
        if home_dir:
            (root / "rehearsal.json").write_text(document + "\n")
    finally:
        if not home_dir:
            shutil.rmtree(root, ignore_errors=True)
    if as_json:
        print(document)
    else:
        for r in results:
            mark = "✔" if r.ok else "✘"
            print(f"{mark} {r.scenario}: {r.phase} (expected {r.expected}) after steps "
                  f"{r.steps_reached} in {r.seconds:.0f} s — {shown_markup(r.reason)}")
            inv = r.invariants
            print(f"  {inv.acked} orders acknowledged, {len(inv.lost)} missing from the "
                  f"ledger, {len(inv.duplicated)} nonces recorded twice; "
                  f"{r.deploy_entries} deploy entries; report {r.report}")
        if home_dir:
            print(f"results: {root / 'rehearsal.json'}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)
