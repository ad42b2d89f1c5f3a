"""`aurora bridge`, `aurora traffic` and `aurora smoke` commands."""

from __future__ import annotations

import typer

def register(app: typer.Typer) -> None:
    pass

