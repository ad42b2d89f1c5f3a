"""The provider network over HTTP (Starlette) and its Prometheus metrics.

The HTTP API is the contract in docs/ARCHITECTURE.md ("Provider network HTTP
API"). All state lives in one ``aurora.providers.sim.Network``; every endpoint is
``async`` so the network is only ever touched from the event loop's thread, and
no lock is needed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aurora import metricnames as names
from aurora.canonical import StrictJSONError, parse_strict
from aurora.config import Scenario
from aurora.httpbody import BodyTooLarge, read_body
from aurora.providers.scenarios import EventError
from aurora.providers.sim import (
    OUTCOMES,
    Network,
    Outcome,
    ProviderView,
    Settlement,
    not_served,
)
from aurora.tokens import BearerAuth
from aurora.wire import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY,
    SchemaError,
    parse_order,
    rfc3339_at,
)

Clock = Callable[[], float]

MAX_BODY_BYTES: Final = 64 * 1024
# How long an order is held during a "timeout" outage: longer than any sane
# client timeout, so the client gives up first, as it would with a dead provider.
OUTAGE_HOLD_SECONDS: Final = 30.0
# Dense where the providers' latencies are (100-300 ms) and at 0 for zero-delay runs.
DELAY_BUCKETS_MS: Final = (0.0, 1, 5, 10, 25, 50, 75, 100, 125, 150, 175, 200, 225, 250, 275,
                           300, 350, 400, 500, 750, 1000, 2000, 5000)

_GAUGES: Final[tuple[tuple[str, str, Callable[[ProviderView], float]], ...]] = (
    (names.PROVIDER_ACTIVE, "1 while the provider takes orders, 0 during an outage",
     lambda v: 1.0 if v.effective.active else 0.0),
    (names.PROVIDER_CAPACITY, "GPU-hours left in the provider's capacity pool",
     lambda v: v.capacity_gpu_hours),
    (names.PROVIDER_LATENCY, "Current median answer delay (ms), latency spikes applied",
     lambda v: v.effective.latency_ms),
    (names.PROVIDER_PRICE, "Current USD price per GPU-hour, price spikes applied",
     lambda v: v.effective.price_usd_per_gpu_hour),
    (names.PROVIDER_REPUTATION, "Current provider reputation (0-100)",
     lambda v: v.effective.reputation),
)


class _NetworkCollector(Collector):
    """The per-provider gauges, read from the network at scrape time."""

    def __init__(self, network: Network, clock: Clock) -> None:
        self._network = network
        self._clock = clock

    def _families(self, views: list[ProviderView]) -> Iterator[GaugeMetricFamily]:
        for name, doc, read in _GAUGES:
            family = GaugeMetricFamily(name, doc, labels=["provider"])
            for view in views:
                family.add_metric([view.config.id], read(view))
            yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self._families([])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return self._families(self._network.views(self._clock()))


class ProviderMetrics:
    """The network's own registry: gauges from the sim, order outcomes, drawn delays."""

    def __init__(self, network: Network, clock: Clock) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_NetworkCollector(network, clock))
        orders = Counter(names.PROVIDER_ORDERS, "Orders answered, by outcome",
                         ["provider", "outcome"], registry=self.registry)
        delay = Histogram(names.PROVIDER_DELAY_MS, "Answer delay drawn per order (ms)",
                          ["provider"], buckets=DELAY_BUCKETS_MS, registry=self.registry)
        # Children made up front: every series exists from the first scrape (rate()
        # needs the zero), and the hot path does a dict lookup, not a label lookup.
        self._orders = {(p, o): orders.labels(p, o) for p in network.providers for o in OUTCOMES}
        self._delay = {p: delay.labels(p) for p in network.providers}

    def order(self, provider_id: str, outcome: Outcome) -> None:
        self._orders[provider_id, outcome].inc()

    def delay(self, provider_id: str, delay_ms: float) -> None:
        self._delay[provider_id].observe(delay_ms)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def error(status: int, code: str, detail: str | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


async def _read_json(request: Request) -> tuple[Any, Response | None]:
    """A small operator-sent JSON body, strictly parsed: ``(document, None)``, or
    ``(None, the error answer)`` when it is too large, not JSON, or never arrived."""
    try:
        return parse_strict(await read_body(request.scope, request.receive,
                                            MAX_BODY_BYTES)), None
    except BodyTooLarge as exc:
        return None, error(413, "too_large", str(exc))
    except ClientDisconnect:
        return None, Response(status_code=400)
    except StrictJSONError as exc:
        return None, error(400, "bad_json", str(exc))


class ProviderService:
    """The endpoints over one network."""

    def __init__(self, network: Network, scenarios: Mapping[str, Scenario], *, clock: Clock,
                 outage_hold_seconds: float) -> None:
        self.network = network
        self.scenarios = dict(scenarios)
        self.metrics = ProviderMetrics(network, clock)
        self._clock = clock
        self._hold_seconds = outage_hold_seconds

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def feed(self, request: Request) -> Response:
        return JSONResponse(self.network.feed(self._clock()))

    # --- orders: the hot path ---------------------------------------------------------

    async def order(self, request: Request) -> Response:
        received = time.perf_counter()
        provider_id = request.path_params["provider_id"]
        if provider_id not in self.network.providers:
            return error(404, "unknown_provider", f"no provider {provider_id!r}")
        try:
            body = await read_body(request.scope, request.receive, MAX_BODY_BYTES)
        except ClientDisconnect:
            return Response(status_code=400)
        except BodyTooLarge as exc:
            return error(413, "too_large", str(exc))
        # The bridge is the only client and sends what it has validated already:
        # plain json.loads is enough here, the order model catches the rest.
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return error(400, "bad_json", "body is not JSON")
        if not isinstance(document, dict):
            return error(400, "bad_request", 'body must be {"order": {...}, "gpu_type": "..."}')
        order_document, gpu_type = document.get("order"), document.get("gpu_type")
        if not isinstance(gpu_type, str):
            return error(400, "bad_request", "gpu_type: must be a string")
        try:
            order = parse_order(order_document)
        except SchemaError as exc:
            return error(400, "bad_order", f"order.{exc}")
        assert isinstance(order_document, dict)  # parse_order accepts only objects
        why = not_served(self.network.providers[provider_id], order.region, gpu_type)
        if why is not None:
            return error(422, "not_served", why)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            return error(400, "bad_request", f"{IDEMPOTENCY_HEADER}: 1-128 of A-Z a-z 0-9 - _ : .")
        if key is not None and (known := self.network.replay(provider_id, key, order_document,
                                                             self._clock())):
            return self._settled(provider_id, known)

        arrival = self.network.arrive(provider_id, self._clock())
        if arrival.outage_mode is not None:
            if arrival.outage_mode in ("timeout", "silent"):
                await self._hold(request)
            self.metrics.order(provider_id, "outage")
            return error(503, "outage", f"{provider_id} is in an outage")
        self.metrics.delay(provider_id, arrival.delay_ms)
        if arrival.delay_ms > 0:
            await asyncio.sleep(arrival.delay_ms / 1000)
        settled = self.network.settle(
            provider_id, order_document, order, gpu_type,
            rtt_ms=(time.perf_counter() - received) * 1000, now=self._clock(),
            idempotency_key=key)
        return self._settled(provider_id, settled)

    def _settled(self, provider_id: str, settled: Settlement) -> Response:
        self.metrics.order(provider_id, settled.outcome)
        if settled.outcome == "conflict":
            return error(409, "idempotency_conflict", "this idempotency key was used for "
                         "another order")
        if settled.ack is None:
            return error(503, settled.error or "unavailable")
        return JSONResponse(settled.ack)

    async def _hold(self, request: Request) -> None:
        """Hang like a dead provider: until the client disconnects or the hold time ends.

        Cancel-safe: the watcher task never outlives the hold. uvicorn cancels
        requests still held when a graceful stop times out; such a request ends
        like a finished hold (503 outage) rather than as a 500 and a traceback in
        the log. The handler is a leaf: nothing above it needs the cancellation.
        """
        async def disconnected() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        watcher = asyncio.ensure_future(disconnected())
        try:
            await asyncio.wait({watcher}, timeout=self._hold_seconds)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            watcher.cancel()

    # --- chaos ------------------------------------------------------------------------

    async def chaos_list(self, request: Request) -> Response:
        now = self._clock()
        self.network.expire(now)
        return JSONResponse({"time": rfc3339_at(now),
                             "events": [e.to_json(now) for e in self.network.events.all()]})

    async def chaos_add(self, request: Request) -> Response:
        document, refused = await _read_json(request)
        if refused is not None:
            return refused
        now = self._clock()
        try:
            event = self.network.inject(document, now)
        except EventError as exc:
            return error(422, "invalid", str(exc))
        return JSONResponse({"event": event.to_json(now)}, status_code=201)

    async def chaos_clear(self, request: Request) -> Response:
        return JSONResponse({"cleared": self.network.clear_events(self._clock())})

    async def chaos_remove(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        now = self._clock()
        event = self.network.remove_event(event_id, now)
        if event is None:
            return error(404, "not_found", f"no event {event_id!r}")
        return JSONResponse({"cleared": 1, "event": event.to_json(now)})

    async def scenario(self, request: Request) -> Response:
        document, refused = await _read_json(request)
        if refused is not None:
            return refused
        name = document.get("name") if isinstance(document, dict) else None
        if not isinstance(name, str):
            return error(422, "invalid", 'body must be {"name": "<scenario>"}')
        if name not in self.scenarios:
            return error(404, "unknown_scenario",
                         f"no scenario {name!r} (known: {', '.join(self.scenarios)})")
        now = self._clock()
        try:
            events = self.network.schedule(name, self.scenarios[name], now)
        except EventError as exc:
            return error(422, "invalid", str(exc))
        return JSONResponse({"scenario": name, "events": [e.to_json(now) for e in events]},
                            status_code=201)


def _is_fault_api(path: str) -> bool:
    return path == "/scenario" or path == "/chaos" or path.startswith("/chaos/")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error(exc.status_code, code, exc.detail)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return error(500, "internal", type(exc).__name__)


def create_app(
    network: Network,
    scenarios: Mapping[str, Scenario],
    *,
    clock: Clock = time.time,
    outage_hold_seconds: float = OUTAGE_HOLD_SECONDS,
    chaos_token: str | None = None,
) -> Starlette:
    """The ASGI app over ``network``; ``clock`` gives the sim its POSIX ``now``.

    With ``chaos_token`` the fault API (``/chaos``, ``/scenario``) needs it as a bearer
    token; the market feed, orders, ``/healthz`` and ``/metrics`` stay open to the bridge
    and Prometheus."""
    service = ProviderService(network, scenarios, clock=clock,
                              outage_hold_seconds=outage_hold_seconds)
    routes = [
        Route("/healthz", service.healthz, methods=["GET"]),
        Route("/metrics", service.metrics_endpoint, methods=["GET"]),
        Route("/providers", service.feed, methods=["GET"]),
        Route("/providers/{provider_id}/orders", service.order, methods=["POST"]),
        Route("/chaos", service.chaos_list, methods=["GET"]),
        Route("/chaos", service.chaos_add, methods=["POST"]),
        Route("/chaos", service.chaos_clear, methods=["DELETE"]),
        Route("/chaos/{event_id}", service.chaos_remove, methods=["DELETE"]),
        Route("/scenario", service.scenario, methods=["POST"]),
    ]
    middleware = [] if chaos_token is None else [
        Middleware(BearerAuth, token=chaos_token, protected=_is_fault_api)]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={HTTPException: _http_error, Exception: _internal_error})
    app.state.service = service
    return app
