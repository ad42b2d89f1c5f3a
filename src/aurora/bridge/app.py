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


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(_encode(body), status_code=status, media_type="application/json")


async def _read_limited(request: Request) -> bytes | None:
    """The body, or None once it passes the limit (the rest is never read into memory)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


_JSON_HEADER = (b"content-type", b"application/json")


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


async def _receive_limited(scope: Scope, receive: Receive) -> bytes | None:
    """The body, or None past the limit; raises ClientDisconnect if the client went away."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > MAX_BODY_BYTES:
                return None
            break
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def create_app(service: BridgeService, openapi: dict[str, Any],
               *, manage_service: bool = True) -> ASGIApp:
    async def order(request: Request) -> Response:
        try:
            body = await _read_limited(request)
        except ClientDisconnect:
            return Response(status_code=400)
        if body is None:
            service.metrics.requests.labels(service.treaty.treaty_id, "rejected").inc()
            return _json(*error(413, "too_large", f"body over {MAX_BODY_BYTES} bytes"))
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
        try:
            body = await _receive_limited(scope, receive)
        except ClientDisconnect:
            return
        answer: dict[str, Any] | bytes
        if body is None:
            service.metrics.requests.labels(service.treaty.treaty_id, "rejected").inc()
            status, answer = error(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
        else:
            status, answer = await service.handle_order(body)
        payload = answer if isinstance(answer, bytes) else _encode(answer)
        await send({"type": "http.response.start", "status": status,
                    "headers": [_JSON_HEADER, (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return app
