"""A tiny real HTTP server standing in for one track's bridge: ``python standin.py PORT TRACK``.

It answers every POST with the track that served it and the order's tenant, after a short
delay so that orders are in flight while the proxy's weight changes.
"""

from __future__ import annotations

import asyncio
import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TRACK = sys.argv[2] if len(sys.argv) > 2 else "stable"


async def order(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    await asyncio.sleep(0.02)
    tenant = body.get("tenant_id") if isinstance(body, dict) else None
    return JSONResponse({"track": TRACK, "tenant_id": tenant})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "track": TRACK})


app = Starlette(routes=[Route("/aurora/order", order, methods=["POST"]),
                        Route("/healthz", healthz)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
