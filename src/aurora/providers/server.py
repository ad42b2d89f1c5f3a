"""Assemble the provider network from a home's files and serve it with uvicorn."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from starlette.applications import Starlette

from aurora.config import load_providers, load_scenarios, load_stack
from aurora.errors import AuroraError, ConfigError
from aurora.home import Home
from aurora.keys import load_private_key
from aurora.providers.app import OUTAGE_HOLD_SECONDS, create_app
from aurora.providers.scenarios import EventError, check_scenarios
from aurora.providers.sim import Network
from aurora.tokens import CHAOS, check_bind, read_token


@dataclass(frozen=True)
class NetworkOptions:
    """How to run the simulation; the defaults are the realistic network."""

    seed: int | None = None
    scenario: str | None = None
    zero_delay: bool = False
    unlimited_capacity: bool = False
    outage_hold_seconds: float = OUTAGE_HOLD_SECONDS


def build_app(home: Home, options: NetworkOptions = NetworkOptions()) -> Starlette:
    """The provider network's ASGI app for ``home``: keys, providers and scenarios loaded,
    ``options.scenario`` scheduled from now. ConfigError on a bad file or scenario."""
    providers = load_providers(home)
    scenarios = load_scenarios(home).scenarios
    ids = [p.id for p in providers.providers]
    scenarios_file = home.config_dir / "scenarios.json"
    try:
        check_scenarios(scenarios, ids)
    except EventError as exc:
        raise ConfigError(f"{scenarios_file}: {exc}") from None
    if options.scenario is not None and options.scenario not in scenarios:
        raise ConfigError(f"no scenario {options.scenario!r} in {scenarios_file} "
                          f"(known: {', '.join(scenarios)})")
    keys = {pid: load_private_key(home.provider_key(pid)) for pid in ids}
    now = time.time()
    network = Network(
        providers, keys, start=now, seed=options.seed,
        # Microseconds since the epoch: a restart always starts above any id issued
        # before it, as long as fewer than a million ACKs a second are issued.
        ack_counter_start=time.time_ns() // 1000,
        zero_delay=options.zero_delay, unlimited_capacity=options.unlimited_capacity,
    )
    if options.scenario is not None:
        network.schedule(options.scenario, scenarios[options.scenario], now)
    return create_app(network, scenarios, outage_hold_seconds=options.outage_hold_seconds,
                      chaos_token=read_token(home, CHAOS))


def _listen(host: str, port: int) -> socket.socket:
    """Bind before uvicorn does, so a busy port is one clear error line."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise AuroraError(f"cannot listen on {host}:{port}: {exc.strerror}", exit_code=2) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(home: Home, options: NetworkOptions = NetworkOptions(), *,
          port: int | None = None) -> None:
    """Serve the provider network until SIGINT/SIGTERM (uvloop, httptools, no access log)."""
    import uvicorn

    from aurora.gc_tuning import quiet_gc

    stack = load_stack(home)
    check_bind(stack.bind, read_token(home, CHAOS), "provider network's chaos API", CHAOS)
    app = build_app(home, options)
    port = stack.providers_port if port is None else port
    sock = _listen(stack.bind, port)
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", access_log=False, log_level="warning",
        # Orders held by a "timeout" outage must not delay a stop by 30 s.
        timeout_graceful_shutdown=2, backlog=2048, proxy_headers=False,
    )
    mode = ", ".join(name for name, on in (("zero delay", options.zero_delay),
                                           ("unlimited capacity", options.unlimited_capacity))
                     if on) or "realistic delays"
    print(f"aurora providers: listening on {stack.url(port)} ({mode}, seed "
          f"{options.seed if options.seed is not None else 'random'}, scenario "
          f"{options.scenario or 'none'})", flush=True)
    quiet_gc()
    uvicorn.Server(config).run(sockets=[sock])
