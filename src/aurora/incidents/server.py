"""Run the incident receiver with uvicorn (``aurora incident serve``).

``python -m aurora.incidents.server [--port N]`` does the same without the rest of the
CLI, which is how tests start it as a separate process.
"""

from __future__ import annotations

import argparse
import logging
import sys

from aurora.config import load_stack
from aurora.home import Home
from aurora.tokens import INCIDENTS, check_bind, read_token


def serve(home: Home | None = None, *, port: int | None = None, host: str | None = None,
          check_every: float = 15.0) -> None:
    """Serve until SIGINT/SIGTERM; the port defaults to ``incidents_port`` in stack.json."""
    import uvicorn

    from aurora.incidents.app import create_app
    from aurora.incidents.service import IncidentStore

    home = home or Home.discover()
    stack = load_stack(home)
    # open the store here, not in the lifespan, so that a missing ledger key or a bad
    # config file is one clear error line before the port is taken
    bind = host or stack.bind
    token = read_token(home, INCIDENTS)
    check_bind(bind, token, "incident receiver", INCIDENTS)
    store = IncidentStore.open(home, write=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    try:
        # the app closes the store on shutdown: after uvicorn.run the re-raised SIGTERM
        # would end the process before a `finally` here ran (closing twice is harmless)
        uvicorn.run(create_app(home, store=store, check_every=check_every, token=token,
                               owns_store=True),
                    host=bind, port=port or stack.incidents_port,
                    log_level="warning", access_log=False, lifespan="on")
    finally:
        store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m aurora.incidents.server")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--check-every", type=float, default=15.0,
                        help="seconds between SLA breach checks (default 15)")
    args = parser.parse_args(argv)
    from aurora.errors import AuroraError

    try:
        serve(port=args.port, check_every=args.check_every)
    except AuroraError as exc:  # one line, as the CLI prints it
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    main()
