"""`aurora providers` and `aurora chaos ...` commands."""

from __future__ import annotations

import typer

chaos_app = typer.Typer(no_args_is_help=True)


@chaos_app.command()
def todo() -> None:
    """Not built yet."""
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    pass

