"""`aurora traffic` and `aurora order`: the simulated tenants' side of the order API."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading

import typer

from aurora.cliopts import DURATION, RATE, bounded, finite
from aurora.home import Home


def register(app: typer.Typer) -> None:
    @app.command()
    def traffic(
        rate: float = typer.Option(None, parser=RATE,
                                   help="Orders per second, all tenants together "
                                   "(default: stack traffic_rate, else workloads.json)."),
        duration: str = typer.Option(None, parser=DURATION,
                                     help="Stop after this long, e.g. 60s, 2h."),
        count: int = typer.Option(None, parser=bounded(),
                                 help="Stop after sending this many orders."),
        seed: int = typer.Option(None, parser=bounded(),
                                help="Seed for reproducible arrivals and sizes."),
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

        seen: list[TrafficStats] = []  # the run's stats (one object, updated as it goes)

        def report(stats: TrafficStats) -> None:
            seen[:] = [stats]
            if not as_json and sys.stdout.isatty():
                print(f"\rsent {stats.sent}  {dict(stats.statuses)}", end="", flush=True)

        # The first Ctrl-C stops sending and lets the orders in flight be answered (their
        # answers are in the summary); a second one stops at once.
        stopping = threading.Event()

        def on_sigint(signum: int, frame: object) -> None:
            if stopping.is_set():
                raise KeyboardInterrupt
            stopping.set()

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            stats = asyncio.run(run_traffic(home, rate=chosen, duration=seconds, count=count,
                                            seed=seed, pace=pace, tenants=tenant or None,
                                            on_progress=report, stop=stopping.is_set))
        except KeyboardInterrupt:  # the second Ctrl-C: say what was sent, no traceback
            stats = seen[0] if seen else TrafficStats()
        finally:
            signal.signal(signal.SIGINT, previous)
        if sys.stdout.isatty() and not as_json:
            print()
        print(json.dumps(stats.to_json(), indent=None if as_json else 2))

    @app.command()
    def order(
        tenant: str = typer.Option("tenant-42", help="Tenant whose key signs the order."),
        region: str = typer.Option("eu-west-1"),
        gpu_hours: float = typer.Option(0.5, "--gpu-hours", parser=finite(0, 1e6)),
        show_order: bool = typer.Option(False, "--show-order", help="Print the signed order too."),
    ) -> None:
        """Sign one order with a tenant's key, submit it, print the answer (ACK + receipt)."""
        import httpx

        from aurora.config import load_stack
        from aurora.errors import AuroraError, UnreachableError
        from aurora.keys import load_private_key
        from aurora.treaty import load_treaty
        from aurora.wire import new_order, sign_order

        home = Home.discover()
        stack = load_stack(home)
        signed = sign_order(new_order(treaty_id=load_treaty(home).treaty_id, tenant_id=tenant,
                                      region=region, gpu_hours=gpu_hours),
                            load_private_key(home.tenant_key(tenant)))
        if show_order:
            print(json.dumps(signed, indent=2))
        try:
            response = httpx.post(f"{stack.bridge_url}/aurora/order", json=signed, timeout=30)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"bridge at {stack.bridge_url} did not answer "
                                   f"({type(exc).__name__}); is the stack up? (make up)") from None
        print(json.dumps(response.json(), indent=2))
        if response.status_code != 200:
            raise AuroraError(f"HTTP {response.status_code}", exit_code=1)
