"""`aurora bridge`."""

from __future__ import annotations

import typer

from aurora.cliopts import REPLICAS
from aurora.home import Home


def register(app: typer.Typer) -> None:
    @app.command()
    def bridge(
        replica: int = typer.Option(1, parser=REPLICAS, help="Which replica this is (`aurora up "
                                    "--replicas N`): sets its metrics port."),
    ) -> None:
        """Serve the order API (bridge_port) and the treaty metrics (metrics_port)."""
        from aurora.bridge.server import serve

        serve(Home.discover(), replica)
