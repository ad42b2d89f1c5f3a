"""`aurora incident ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def todo() -> None:
    """Not built yet."""
    raise typer.Exit(1)

