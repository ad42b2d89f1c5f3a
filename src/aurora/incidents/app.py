"""The incident receiver (ASGI): Alertmanager's webhook in, incidents out.

- ``POST /alerts``: one Alertmanager notification (webhook version 4). 200 with what it
  did (``opened``, ``joined``, ``alerts_resolved``, ``resolved``, ``duplicates``,
  ``stale``). A body that is not JSON, not version 4 or not the schema gets 4xx
  ``{"error", "detail"}`` and changes nothing
  (Alertmanager does not retry 4xx). If the ledger cannot record the change: 503, which
  Alertmanager retries — the idempotent store makes the retry safe.
- ``GET /incidents[?open=1&since=7d&alertname=X&offset=0&limit=100]``: one page, newest
  order as the store gives it, with ``total`` and ``next_offset`` (null on the last page;
  ``limit`` at most 1000); ``GET /incidents/{id}``: JSON.
- Every path but ``/healthz`` and ``/metrics`` needs the bearer token of
  ``secrets/incidents.token`` when the receiver has one (``aurora.tokens``).
- ``GET /healthz``: 200 ``{"status": "ok", "open": N}``.
- ``GET /openapi.json``: the OpenAPI document (``aurora.incidents.openapi``).
- ``GET /metrics``: see ``aurora.incidents.metrics``; SLA breaches due are recorded
  first, so a scrape alone keeps the breach counter true.
Breaches are also checked every ``check_every`` seconds while the receiver runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aurora.durations import parse_since
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.httpbody import BodyTooLarge, read_body
from aurora.incidents import metrics
from aurora.incidents.model import IncidentError, IncidentNotFound
from aurora.incidents.openapi import openapi_document
from aurora.incidents.service import IncidentStore
from aurora.incidents.webhook import MAX_BODY_BYTES, WebhookError, parse_webhook
from aurora.tokens import BearerAuth

log = logging.getLogger("aurora.incidents")


PAGE_DEFAULT = 100
PAGE_MAX = 1000


def _count(text: str | None, name: str, default: int, maximum: int | None) -> int:
    """A non-negative integer query parameter (at most ``maximum``); ValueError saying why."""
    if text is None:
        return default
    if not text.isdigit() or len(text) > 9:  # isdigit: no sign, no spaces; 9: no overflow
        raise ValueError(f"{name}: a whole number from 0" +
                         (f" to {maximum}" if maximum is not None else "") + f", not {text!r}")
    value = int(text)
    if maximum is not None and not 1 <= value <= maximum:
        raise ValueError(f"{name}: from 1 to {maximum}, not {value}")
    return value


def _error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


class Receiver:
    def __init__(self, home: Home, store: IncidentStore | None, check_every: float,
                 owns_store: bool | None = None) -> None:
        self.home = home
        self.store = store
        self._owns_store = store is None if owns_store is None else owns_store
        self.check_every = check_every
        self.webhooks = metrics.WebhookCounts()
        self._ingest_turn = asyncio.Lock()

    def _store(self) -> IncidentStore:
        assert self.store is not None, "the receiver is not started"
        return self.store

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        if self.store is None:
            self.store = await run_in_threadpool(IncidentStore.open, self.home, write=True)
        task = asyncio.create_task(self._breach_loop()) if self.check_every > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._owns_store and self.store is not None:
                self.store.close()
                self.store = None

    async def _breach_loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            try:
                for incident in await run_in_threadpool(self._store().check_breaches):
                    log.warning("%s (%s) breached its response SLA", incident.id, incident.sev)
            except Exception:  # keep checking: the next round may find the ledger back
                log.exception("SLA breach check failed")

    # --- handlers ------------------------------------------------------------------------

    async def alerts(self, request: Request) -> Response:
        try:
            body = await read_body(request.scope, request.receive, MAX_BODY_BYTES)
        except BodyTooLarge as exc:
            self.webhooks.inc("rejected")
            return _error(413, "too_large", str(exc))
        except ClientDisconnect:
            return Response(status_code=400)
        try:
            # off the loop: validating a few MB of alerts must not stall /healthz
            payload = await run_in_threadpool(parse_webhook, body)
        except WebhookError as exc:
            self.webhooks.inc("rejected")
            log.warning("rejected webhook: %s", exc)
            return _error(exc.status, exc.error, exc.detail)
        try:
            # one ingest at a time, queued here on the loop (FIFO) rather than as threads
            # waiting on SQLite's write lock: a burst of webhooks cannot take every worker
            # thread, so /healthz and reads still get one, and nobody waits into a
            # "database is locked"
            async with self._ingest_turn:
                result = await run_in_threadpool(self._store().ingest, payload)
        except Exception as exc:  # ledger or index down: 503 so that Alertmanager retries
            self.webhooks.inc("failed")
            log.exception("webhook for %s not recorded", payload.group_key)
            detail = str(exc) if isinstance(exc, AuroraError) else type(exc).__name__
            return _error(503, "unavailable", f"not recorded, retry: {detail}")
        self.webhooks.inc("accepted")
        if payload.truncated_alerts:
            log.warning("%s: Alertmanager left out %d alert(s) (max_alerts)",
                        payload.group_key, payload.truncated_alerts)
        return JSONResponse({"status": "ok", **result.to_json()})

    async def list_incidents(self, request: Request) -> Response:
        store = self._store()
        query = request.query_params
        since = None
        if (text := query.get("since")) is not None:
            try:
                since = parse_since(text, store.clock())
            except ValueError as exc:
                return _error(400, "bad_query", str(exc))
        try:
            offset = _count(query.get("offset"), "offset", 0, None)
            limit = _count(query.get("limit"), "limit", PAGE_DEFAULT, PAGE_MAX)
        except ValueError as exc:
            return _error(400, "bad_query", str(exc))
        found = await run_in_threadpool(
            store.incidents, open_only=query.get("open", "") in ("1", "true", "yes"),
            since=since, alertname=query.get("alertname"))
        now = store.clock()
        page = found[offset:offset + limit]
        following = offset + limit if offset + limit < len(found) else None
        return JSONResponse({"incidents": [i.to_json(now) for i in page],
                             "total": len(found), "offset": offset, "limit": limit,
                             "next_offset": following})

    async def show_incident(self, request: Request) -> Response:
        store = self._store()
        incident_id = request.path_params["incident_id"]
        try:
            incident = await run_in_threadpool(store.get, incident_id)
            timeline = await run_in_threadpool(store.timeline, incident_id)
        except IncidentNotFound as exc:
            return _error(404, "not_found", str(exc))
        except IncidentError as exc:
            return _error(400, "bad_id", str(exc))
        body: dict[str, Any] = incident.to_json(store.clock())
        body["events"] = [{"ledger_seq": seq, **event.to_data()} for seq, event in timeline]
        return JSONResponse(body)

    async def healthz(self, _: Request) -> Response:
        try:
            found = await run_in_threadpool(self._store().incidents, open_only=True)
        except AuroraError as exc:
            return _error(503, "unavailable", str(exc))
        return JSONResponse({"status": "ok", "open": len(found)})

    async def metrics(self, _: Request) -> Response:
        store = self._store()
        try:
            await run_in_threadpool(store.check_breaches)
        except AuroraError as exc:  # still export what is stored
            log.warning("SLA breach check at scrape failed: %s", exc)
        incidents = await run_in_threadpool(store.incidents)
        return Response(metrics.render(incidents, self.webhooks),
                        media_type=CONTENT_TYPE_LATEST)


async def _openapi(_: Request) -> Response:
    return JSONResponse(openapi_document())


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, "http", str(exc.detail))


def _needs_token(path: str) -> bool:
    return path not in ("/healthz", "/metrics")  # Prometheus scrapes these, unauthenticated


def create_app(home: Home, *, store: IncidentStore | None = None,
               check_every: float = 15.0, token: str | None = None,
               owns_store: bool | None = None) -> Starlette:
    """The receiver; it opens (and closes) its own store unless one is given (tests).

    With ``token`` every path but ``/healthz`` and ``/metrics`` needs it as a bearer token
    (Alertmanager sends it, see ``aurora.incidents.alertmanager``). ``owns_store``: close a
    given store at shutdown too (the lifespan's exit is the last moment: uvicorn re-raises
    SIGTERM once it has shut down)."""
    receiver = Receiver(home, store, check_every, owns_store)
    middleware = [] if token is None else [
        Middleware(BearerAuth, token=token, protected=_needs_token)]
    app = Starlette(routes=[
        Route("/alerts", receiver.alerts, methods=["POST"]),
        Route("/incidents", receiver.list_incidents, methods=["GET"]),
        Route("/incidents/{incident_id}", receiver.show_incident, methods=["GET"]),
        Route("/healthz", receiver.healthz, methods=["GET"]),
        Route("/metrics", receiver.metrics, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
    ], lifespan=receiver.lifespan, middleware=middleware,
        exception_handlers={HTTPException: _http_error})
    app.state.receiver = receiver
    return app
