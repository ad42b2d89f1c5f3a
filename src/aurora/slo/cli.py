"""`aurora slo ...` and `aurora health-check` commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def todo() -> None:
    """Not built yet."""
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    pass

