"""`aurora providers` (serve the simulated network) and `aurora chaos ...` (inject faults).

The chaos commands talk HTTP to the running network at ``load_stack(home).providers_url``;
an unreachable network is one error line and exit status 2, a request the network
rejects one error line and exit status 1.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from aurora.cliopts import DURATION, PORT, bounded, finite
from aurora.home import Home

if TYPE_CHECKING:
    from aurora.providers.chaos import ChaosClient

chaos_app = typer.Typer(no_args_is_help=True)

_PROVIDER = typer.Option(..., "--provider", "-p", help="Provider id, e.g. akash, ionet, render.")
_FOR = typer.Option(..., "--for", parser=DURATION, help="How long, e.g. 90s, 5m, 1h.")
_AT = typer.Option("0s", "--at", parser=DURATION, help="Start this long from now (default: now).")
_JSON = typer.Option(False, "--json", help="Print the network's JSON answer.")


def _client() -> ChaosClient:
    from aurora.providers.chaos import ChaosClient

    return ChaosClient.for_home(Home.discover())


def _event_line(event: dict[str, Any]) -> str:
    params = " ".join(f"{k}={event[k]}" for k in ("factor", "value", "mode") if k in event)
    return (f"{event['id']:<8} {event['type']:<16} {event['provider']:<8} "
            f"{event['starts_at']} -> {event['ends_at']}  {event['status']:<9} "
            f"{params}").rstrip()


def _inject(as_json: bool, **fields: Any) -> None:
    body = {k: v for k, v in fields.items() if v is not None}
    with _client() as client:
        event = client.add(body)
    print(json.dumps({"event": event}, indent=2) if as_json else _event_line(event))


@chaos_app.command()
def outage(
    provider: str = _PROVIDER, duration: str = _FOR, at: str = _AT,
    mode: str = typer.Option("timeout", "--mode",
                             help="timeout: orders hang until the client gives up; "
                                  "refuse: 503 at once."),
    as_json: bool = _JSON,
) -> None:
    """Take a provider down: inactive in the feed, orders hang or are refused."""
    _inject(as_json, type="outage", provider=provider, mode=mode, at=at, **{"for": duration})


def _factor_command(name: str, event_type: str, default: float, factor_help: str,
                    summary: str) -> None:
    """Register one of the commands whose fault is a multiplying ``--factor``."""
    def command(
        provider: str = _PROVIDER, duration: str = _FOR, at: str = _AT,
        factor: float = typer.Option(default, "--factor", parser=finite(0, 1e6),
                                     help=factor_help),
        as_json: bool = _JSON,
    ) -> None:
        _inject(as_json, type=event_type, provider=provider, factor=factor, at=at,
                **{"for": duration})

    command.__doc__ = summary
    chaos_app.command(name)(command)


_factor_command("latency-spike", "latency_spike", 3.0, "Multiply the median latency by this.",
                "Slow a provider down.")
_factor_command("price-spike", "price_spike", 2.0, "Multiply the USD price by this.",
                "Raise a provider's price.")
_factor_command("capacity-surge", "capacity_surge", 2.0,
                "Multiply the capacity pool's maximum and refill by this.",
                "Give a provider more (factor > 1) or less (factor < 1) capacity.")


@chaos_app.command("reputation-drop")
def reputation_drop(
    provider: str = _PROVIDER, duration: str = _FOR, at: str = _AT,
    to: float = typer.Option(..., "--to", parser=finite(-1e9, 1e9),  # the network judges 0-100
                             help="The reputation (0-100) to drop to."),
    as_json: bool = _JSON,
) -> None:
    """Lower a provider's reputation."""
    _inject(as_json, type="reputation_drop", provider=provider, value=to, at=at,
            **{"for": duration})


@chaos_app.command("bad-ack")
def bad_ack(
    provider: str = _PROVIDER, duration: str = _FOR, at: str = _AT, as_json: bool = _JSON,
) -> None:
    """Make a provider sign its ACKs with the wrong key (the bridge must fail over)."""
    _inject(as_json, type="bad_ack", provider=provider, at=at, **{"for": duration})


@chaos_app.command("list")
def list_events(as_json: bool = _JSON) -> None:
    """Show active and scheduled fault events."""
    with _client() as client:
        events = client.events()
    if as_json:
        print(json.dumps({"events": events}, indent=2))
        return
    if not events:
        print("no fault events")
    for event in events:
        print(_event_line(event))


@chaos_app.command()
def clear(
    event_id: str | None = typer.Argument(None, help="One event's id (default: every event)."),
) -> None:
    """End one fault event now, or all of them."""
    with _client() as client:
        if event_id is None:
            print(f"cleared {client.clear()} event(s)")
            return
        event = client.remove(event_id)
    assert event is not None  # a missing event is an AuroraError
    print(f"cleared {event['id']}")


@chaos_app.command()
def scenario(name: str = typer.Argument(..., help="A scenario of config/scenarios.json."),
             as_json: bool = _JSON) -> None:
    """Schedule a named scenario's events, relative to now."""
    with _client() as client:
        answer = client.scenario(name)
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    print(f"scenario {name}: {len(answer['events'])} event(s) scheduled")
    for event in answer["events"]:
        print(_event_line(event))


def register(app: typer.Typer) -> None:
    @app.command()
    def providers(
        scenario: str | None = typer.Option(None, "--scenario",
                                            help="Schedule this scenario at start-up."),
        seed: int | None = typer.Option(None, "--seed", parser=bounded(),
                                        help="Seed for delays and refusals."),
        port: int | None = typer.Option(None, "--port", parser=PORT,
                                        help="Listen here (default: providers_port of "
                                             "config/stack.json)."),
        zero_delay: bool = typer.Option(False, "--zero-delay",
                                        help="Benchmarks: answer at once, no random refusals."),
        unlimited_capacity: bool = typer.Option(False, "--unlimited-capacity",
                                                help="Benchmarks: never run out of GPU-hours."),
    ) -> None:
        """Serve the simulated provider network (seven DePIN networks) and its /metrics."""
        from aurora.providers.server import NetworkOptions, serve

        serve(Home.discover(), NetworkOptions(seed=seed, scenario=scenario, zero_delay=zero_delay,
                                              unlimited_capacity=unlimited_capacity), port=port)
