"""`aurora db up|down|init|status`: PostgreSQL for the replicated mode."""

from __future__ import annotations

from typing import Annotated

import typer

from aurora.cliopts import PORT

app = typer.Typer(no_args_is_help=True)

DEFAULT_PORT = 55432
UrlOption = Annotated[str | None, typer.Option(
    "--url", help="postgresql://... (default: database_url of config/stack.json, "
    "AURORA_DATABASE_URL)")]


def _url(given: str | None) -> str:
    from aurora.config import load_stack
    from aurora.db.postgres import is_postgres_url
    from aurora.errors import ConfigError
    from aurora.home import Home

    url = given or load_stack(Home.discover()).database_url
    if not is_postgres_url(url):
        raise ConfigError("no PostgreSQL URL: pass --url or set database_url in "
                          "config/stack.json (or AURORA_DATABASE_URL)")
    return url


@app.command()
def up(port: Annotated[int, typer.Option("--port", parser=PORT, help="Port on 127.0.0.1.")]
       = DEFAULT_PORT) -> None:
    """Start a local cluster in ops/data/pg (initdb on first use) and create the schema."""
    from aurora.db import cluster, schema
    from aurora.errors import AuroraError
    from aurora.home import Home

    home = Home.discover()
    if (pid := cluster.running(home)) is not None:
        raise AuroraError(f"PostgreSQL is already running (pid {pid}); `aurora db down` stops it")
    started = cluster.start(home, home.data_dir / "pg", port)
    url = started.url()
    schema.init(url)
    print(f"PostgreSQL running (pid {started.pid}), data in {started.datadir}")
    print(f"use it with:  export AURORA_DATABASE_URL={url}")


@app.command()
def down() -> None:
    """Stop the local cluster started by `aurora db up` (fast shutdown, by PID)."""
    from aurora.db import cluster
    from aurora.home import Home

    print("PostgreSQL stopped" if cluster.stop(Home.discover()) else "PostgreSQL was not running")


@app.command()
def init(url: UrlOption = None) -> None:
    """Create every table Aurora keeps in PostgreSQL (idempotent); refuse a foreign database."""
    from aurora.db import schema
    from aurora.db.postgres import redact

    target = _url(url)
    done = schema.init(target)
    print(f"{redact(target)}: schema ready ({', '.join(f'{s.name} v{s.version}' for s in done)})")


@app.command()
def status(url: UrlOption = None) -> None:
    """Whether the database answers and holds Aurora's schema."""
    from aurora.db import schema
    from aurora.db.postgres import redact

    target = _url(url)
    state = "initialised" if schema.is_initialised(target) else "not initialised (aurora db init)"
    print(f"{redact(target)}: reachable, {state}")
