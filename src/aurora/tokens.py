"""Bearer tokens for the services beside the bridge: the chaos API and the incident receiver.

``aurora init`` creates ``secrets/chaos.token`` and ``secrets/incidents.token`` (random,
mode 0600, never overwritten). The provider network requires the first on ``/chaos`` and
``/scenario``; the incident receiver the second on everything but ``/healthz`` and
``/metrics``, which Prometheus scrapes without credentials (they carry no secrets and
change nothing). Clients read the same files: ``aurora chaos`` and the drills
(``aurora.providers.chaos``), Alertmanager through ``http_config.authorization.
credentials_file`` in its rendered config. Tokens are compared in constant time.

A service whose token file is missing serves unauthenticated on a loopback address only
(a home initialised before tokens existed keeps working on one machine); on any other
address it refuses to start.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from aurora.errors import ConfigError
from aurora.home import Home
from aurora.keys import write_new_file

CHAOS = "chaos"
INCIDENTS = "incidents"
NAMES = (CHAOS, INCIDENTS)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def token_path(home: Home, name: str) -> Path:
    return home.secrets_dir / f"{name}.token"


def ensure_token(home: Home, name: str) -> bool:
    """Create ``secrets/<name>.token`` unless it exists; True if created."""
    path = token_path(home, name)
    if path.exists():
        return False
    write_new_file(path, (secrets.token_urlsafe(32) + "\n").encode(), mode=0o600)
    return True


def read_token(home: Home, name: str) -> str | None:
    """The token in ``secrets/<name>.token``; None if there is no such file."""
    path = token_path(home, name)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is unreadable: {exc}") from None
    if len(token) < 16:
        raise ConfigError(f"{path} holds no usable token (at least 16 characters); "
                          f"delete it and run `aurora init`")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, service: str, name: str) -> None:
    """Refuse to serve ``service`` on a non-loopback address without its token."""
    if token is None and not is_loopback(host):
        raise ConfigError(f"refusing to serve the {service} on {host} without a token: "
                          f"secrets/{name}.token is missing (run `aurora init`)")


def authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant time)."""
    scheme, _, given = (header or "").partition(" ")
    return hmac.compare_digest(given.strip().encode(), token.encode()) and \
        scheme.lower() == "bearer"


def bearer_header(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


class BearerAuth:
    """ASGI middleware: HTTP requests to a protected path need ``Bearer <token>``; others
    get 401 ``{"error": "unauthorized"}`` before the app sees them."""

    def __init__(self, app: ASGIApp, token: str,
                 protected: Callable[[str], bool]) -> None:
        self.app = app
        self.token = token
        self.protected = protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", [])
                       if k == b"authorization"), None)
        if authorized(header, self.token):
            await self.app(scope, receive, send)
            return
        body = (b'{"error":"unauthorized","detail":"a bearer token is required '
                b'(secrets/ on the service\'s machine)"}')
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})
