"""The bridge's HTTP surface: ``POST /aurora/order``, health, OpenAPI.

The order endpoint is served straight from ASGI messages (it is the hot path
and needs none of Starlette's middleware); everything else, lifespan included,
goes through a small Starlette app.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from aurora.bridge.service import MAX_BODY_BYTES, BridgeService, error
from aurora.httpbody import BodyTooLarge, read_body


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(_encode(body), status_code=status, media_type="application/json")


_JSON_HEADER = (b"content-type", b"application/json")


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def create_app(service: BridgeService, openapi: dict[str, Any],
               *, manage_service: bool = True) -> ASGIApp:
    async def order(request: Request) -> Response:
        # only reached by a request the raw path below did not take
        try:
            body = await read_body(request.scope, request.receive, MAX_BODY_BYTES)
        except ClientDisconnect:
            return Response(status_code=400)
        except BodyTooLarge as exc:
            service.metrics.requests.labels(service.treaty.treaty_id, "rejected").inc()
            return _json(*error(413, "too_large", str(exc)))
        status, answer = await service.handle_order(body)
        if isinstance(answer, bytes):
            return Response(answer, status_code=status, media_type="application/json")
        return _json(status, answer)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "treaty_id": service.treaty.treaty_id})

    async def readyz(_: Request) -> Response:
        problems = service.readiness()
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def openapi_json(_: Request) -> Response:
        return JSONResponse(openapi)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if manage_service:
            await service.start()
        try:
            yield
        finally:
            if manage_service:
                await service.close()

    rest = Starlette(
        routes=[
            Route("/aurora/order", order, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
        ],
        lifespan=lifespan,
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/aurora/order" \
                or scope["method"] != "POST":
            await rest(scope, receive, send)
            return
        answer: dict[str, Any] | bytes
        try:
            body = await read_body(scope, receive, MAX_BODY_BYTES)
        except ClientDisconnect:
            return
        except BodyTooLarge as exc:
            service.metrics.requests.labels(service.treaty.treaty_id, "rejected").inc()
            status, answer = error(413, "too_large", str(exc))
        else:
            status, answer = await service.handle_order(body)
        payload = answer if isinstance(answer, bytes) else _encode(answer)
        await send({"type": "http.response.start", "status": status,
                    "headers": [_JSON_HEADER, (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return app
