"""`aurora bridge`."""

from __future__ import annotations

import typer

from aurora.home import Home


def register(app: typer.Typer) -> None:
    @app.command()
    def bridge() -> None:
        """Serve the order API (bridge_port) and the treaty metrics (metrics_port)."""
        from aurora.bridge.server import serve

        serve(Home.discover())
