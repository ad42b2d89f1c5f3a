"""`aurora init`, `aurora up`, `aurora down`, `aurora status` and `aurora smoke`: the stack's
own commands, which `make up`, `make down`, `make status` and `make smoke-e2e` run."""

from __future__ import annotations

import typer

from aurora.cliopts import RATE, REPLICAS
from aurora.home import Home
from aurora.provision import init_home


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        traffic: bool = typer.Option(True, help="Run simulated tenant traffic."),
        traffic_rate: float = typer.Option(None, "--traffic-rate", parser=RATE,
                                          help="Orders/s offered."),
        pace: bool = typer.Option(True, help="Pace traffic to the tenants' daily budgets."),
        observatory: bool = typer.Option(True, help="Start Prometheus and Alertmanager."),
        backups: bool = typer.Option(True, help="Run the 15-minute ledger backup loop."),
        scenario: str = typer.Option(None, help="Schedule a fault scenario "
                                     "(config/scenarios.json)."),
        replicas: int = typer.Option(1, parser=REPLICAS, help="Bridge processes sharing the "
                                     "order port (N > 1 needs a PostgreSQL database_url)."),
    ) -> None:
        """Start the stack in the background and wait until every service answers."""
        from rich.console import Console
        from rich.table import Table

        from aurora.config import load_stack
        from aurora.stack import UpOptions, check_replicas, urls
        from aurora.stack import up as start

        home = Home.discover()
        check_replicas(load_stack(home), replicas)  # before anything starts
        init_home(home)
        console = Console()
        options = UpOptions(traffic=traffic, traffic_rate=traffic_rate, pace=pace,
                            observatory=observatory, backups=backups, scenario=scenario,
                            replicas=replicas)
        with console.status("starting the stack") as status:
            results = start(home, options, on_step=lambda text: status.update(text))
        table = Table(title="Aurora stack", show_lines=False)
        table.add_column("service")
        table.add_column("pid", justify="right")
        table.add_column("state")
        for item in results:
            table.add_row(item.name, str(item.pid or "-"), item.note)
        console.print(table)
        for name, url in urls(load_stack(home)):
            console.print(f"  {name:<20} {url}")
        console.print(f"  logs: {home.logs_dir}/   stop: make down")

    @app.command()
    def down(service: list[str] = typer.Argument(None, help="Only these services.")) -> None:
        """Stop what `aurora up` started (by PID file only)."""
        from aurora.stack import down as stop

        for name, was_running in stop(Home.discover(), service or None):
            if was_running:
                print(f"stopped {name}")
        print("stack is down" if not service else "done")

    @app.command()
    def status(as_json: bool = typer.Option(False, "--json")) -> None:
        """Which services run, with their pids (each bridge replica with its metrics port)."""
        import json

        from aurora import procs
        from aurora.config import load_stack
        from aurora.stack import ALL_SERVICES, running_replicas

        home = Home.discover()
        stack = load_stack(home)
        names: list[str] = []
        from aurora.canary.live import split_services

        for name in ALL_SERVICES:
            names += running_replicas(home) if name == "bridge" else [name]
        names += [n for n in reversed(split_services(home)) if procs.running(home, n)]
        state = {name: procs.running(home, name) for name in names}
        if as_json:
            print(json.dumps(state))
            return
        for name, pid in state.items():
            where = ""
            if name.startswith("bridge"):
                replica = int(name[7:]) if name != "bridge" else 1
                where = f"  (replica {replica}, metrics :{stack.replica_metrics(replica)})"
            print(f"{name:<14} {'running pid ' + str(pid) if pid else 'stopped'}{where}")

    @app.command()
    def init(quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing.")) -> None:
        """Create dev keys for every tenant and provider, the ledger key and ops/ folders.

        Idempotent: existing keys are kept, never overwritten.
        """
        home = Home.discover()
        done = init_home(home)
        if not quiet:
            created = sum(1 for _, outcome in done if outcome == "created")
            print(f"aurora init: {created} key(s) created, {len(done) - created} kept "
                  f"in {home.root}")

    @app.command()
    def smoke() -> None:
        """The morning smoke test (`make smoke-e2e`): PASS/FAIL per step, non-zero on failure."""
        from aurora.smoke import run_smoke

        if not run_smoke(Home.discover(), emit=lambda line: print(line, flush=True)):
            raise typer.Exit(1)
