"""One size-limited request body reader for Aurora's ASGI apps (bridge, providers, incidents).

The limit is checked against ``Content-Length`` before anything is read and again while
the body streams in, so an oversized or lying client never gets more than ``limit`` bytes
into memory.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope


class BodyTooLarge(ValueError):
    """The body is over the limit (by its Content-Length or while streaming)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body; BodyTooLarge past ``limit``, ClientDisconnect if the client left."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise BodyTooLarge(limit)
            break
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
