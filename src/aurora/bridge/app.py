"""The bridge's HTTP surface (Starlette): ``POST /aurora/order``, health, OpenAPI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aurora.bridge.service import MAX_BODY_BYTES, BridgeService, error


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
                    status_code=status, media_type="application/json")


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


def create_app(service: BridgeService, openapi: dict[str, Any],
               *, manage_service: bool = True) -> Starlette:
    async def order(request: Request) -> Response:
        try:
            body = await _read_limited(request)
        except ClientDisconnect:
            return Response(status_code=400)
        if body is None:
            service.metrics.requests.labels(service.treaty.treaty_id, "rejected").inc()
            return _json(*error(413, "too_large", f"body over {MAX_BODY_BYTES} bytes"))
        return _json(*await service.handle_order(body))

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

    return Starlette(
        routes=[
            Route("/aurora/order", order, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
