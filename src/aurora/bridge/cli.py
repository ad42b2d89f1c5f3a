"""`aurora bridge`."""

from __future__ import annotations

import typer

from aurora.cliopts import PORT, REPLICAS
from aurora.home import Home


def register(app: typer.Typer) -> None:
    @app.command()
    def bridge(
        replica: int = typer.Option(1, parser=REPLICAS, help="Which replica this is (`aurora up "
                                    "--replicas N`): sets its metrics port."),
        order_port: int = typer.Option(None, parser=PORT, help="Take orders here instead of "
                                       "bridge_port (a canary's replicas, `aurora canary`)."),
        metrics_port: int = typer.Option(None, parser=PORT,
                                         help="Serve metrics here instead of the replica's "
                                         "port."),
    ) -> None:
        """Serve the order API (bridge_port) and the treaty metrics (metrics_port)."""
        from aurora.bridge.server import serve

        serve(Home.discover(), replica, order_port=order_port, metrics_port=metrics_port)
