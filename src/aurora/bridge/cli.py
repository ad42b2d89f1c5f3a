"""`aurora bridge`, `aurora traffic` and `aurora smoke`."""

from __future__ import annotations

import asyncio
import json
import sys

import typer

from aurora.home import Home


def register(app: typer.Typer) -> None:
    @app.command()
    def bridge() -> None:
        """Serve the order API (bridge_port) and the treaty metrics (metrics_port)."""
        from aurora.bridge.server import serve

        serve(Home.discover())

    @app.command()
    def traffic(
        rate: float = typer.Option(None, help="Orders per second, all tenants together "
                                   "(default: stack traffic_rate, else workloads.json)."),
        duration: str = typer.Option(None, help="Stop after this long, e.g. 60s, 2h."),
        count: int = typer.Option(None, help="Stop after sending this many orders."),
        seed: int = typer.Option(None, help="Seed for reproducible arrivals and sizes."),
        pace: bool = typer.Option(True, help="Spread each tenant's daily budget over the UTC "
                                  "day (--no-pace: spend it as fast as the rate allows)."),
        tenant: list[str] = typer.Option(None, help="Only these tenants (repeatable)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Send signed orders from the simulated tenants with Poisson arrivals (open loop)."""
        from aurora.config import load_stack, load_workloads
        from aurora.durations import parse_duration
        from aurora.errors import AuroraError
        from aurora.traffic.plan import sustainable_rate
        from aurora.traffic.run import TrafficStats, run_traffic

        home = Home.discover()
        workloads = load_workloads(home)
        chosen = rate or load_stack(home).traffic_rate or workloads.default_rate_per_s
        if chosen <= 0:
            raise AuroraError("--rate must be positive")
        seconds = None
        if duration is not None:
            try:
                seconds = parse_duration(duration)
            except ValueError as exc:
                raise AuroraError(str(exc)) from None
        if pace:
            print(f"traffic: {chosen:g} orders/s offered, paced to the tenants' daily budgets "
                  f"(sustained about {sustainable_rate(workloads) * 60:.1f} orders/min); "
                  "--no-pace to lift", flush=True)

        def report(stats: TrafficStats) -> None:
            if not as_json and sys.stdout.isatty():
                print(f"\rsent {stats.sent}  {dict(stats.statuses)}", end="", flush=True)

        stats = asyncio.run(run_traffic(home, rate=chosen, duration=seconds, count=count,
                                        seed=seed, pace=pace, tenants=tenant or None,
                                        on_progress=report))
        if sys.stdout.isatty() and not as_json:
            print()
        print(json.dumps(stats.to_json(), indent=None if as_json else 2))

    @app.command()
    def smoke() -> None:
        """The morning smoke test (`make smoke-e2e`): PASS/FAIL per step, non-zero on failure."""
        from aurora.smoke import run_smoke

        if not run_smoke(Home.discover(), emit=lambda line: print(line, flush=True)):
            raise typer.Exit(1)
