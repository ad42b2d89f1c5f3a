"""The one client of the provider network's fault API (``/chaos``, ``/scenario``).

``aurora chaos``, the alert drills, the soak and the tests all inject and clear faults
through ``ChaosClient``; it sends the bearer token of ``secrets/chaos.token``
(``aurora.tokens``) and turns every failure into one AuroraError line: an unreachable
network is an UnreachableError (exit 2), a refused request an AuroraError naming the
network's answer.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from aurora.errors import AuroraError, UnreachableError
from aurora.home import Home
from aurora.tokens import CHAOS, bearer_header, read_token


class ChaosClient:
    def __init__(self, base_url: str, token: str | None, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout,
                                    headers=bearer_header(token))

    @classmethod
    def for_home(cls, home: Home, *, timeout: float = 10.0) -> ChaosClient:
        """The network of ``home``'s ``config/stack.json``, with its token."""
        from aurora.config import load_stack

        return cls(load_stack(home).providers_url, read_token(home, CHAOS), timeout=timeout)

    def __enter__(self) -> ChaosClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                allow: tuple[int, ...] = ()) -> Any:
        """One request; its JSON answer (None for an allowed error status), else an
        AuroraError saying what the network answered."""
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"provider network at {self.base_url} is unreachable "
                                   f"({type(exc).__name__}); is `aurora providers` running?"
                                   ) from None
        if response.status_code in allow:
            return None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 400:
            detail = (answer.get("detail") or answer.get("error")) \
                if isinstance(answer, dict) else None
            hint = " (check secrets/chaos.token)" if response.status_code == 401 else ""
            raise AuroraError(f"provider network answered {response.status_code}: "
                              f"{detail or response.text[:200]}{hint}")
        return answer

    def add(self, event: dict[str, Any]) -> dict[str, Any]:
        """``POST /chaos``: the event as the network scheduled it."""
        answer = self.request("POST", "/chaos", event)
        return dict(answer["event"])

    def events(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/chaos")["events"])

    def clear(self) -> int:
        """``DELETE /chaos``: every event; how many there were."""
        return int(self.request("DELETE", "/chaos")["cleared"])

    def remove(self, event_id: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        """``DELETE /chaos/{id}``: the event; None if it is gone and ``missing_ok``."""
        answer = self.request("DELETE", f"/chaos/{quote(event_id, safe='')}",
                              allow=(404,) if missing_ok else ())
        return None if answer is None else dict(answer["event"])

    def scenario(self, name: str) -> dict[str, Any]:
        return dict(self.request("POST", "/scenario", {"name": name}))
