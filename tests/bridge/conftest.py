"""The live bridge stack shared by this folder's tests (providers + bridge, real HTTP)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aurora.config import StackConfig, load_stack, load_tenants
from aurora.home import Home
from aurora.keys import Ed25519PrivateKey, load_private_key
from aurora.ledger import Ledger
from aurora.providers.chaos import ChaosClient
from aurora.stack import UpOptions, down, up
from aurora.wire import new_order, sign_order
from support import make_home

TREATY = "AURORA-AKASH-001"


class Live:
    def __init__(self, home: Home) -> None:
        self.home = home
        self.stack: StackConfig = load_stack(home)
        self.client = httpx.Client(timeout=15.0)
        self.keys: dict[str, Ed25519PrivateKey] = {
            t.id: load_private_key(home.tenant_key(t.id)) for t in load_tenants(home)}

    @property
    def order_url(self) -> str:
        return f"{self.stack.bridge_url}/aurora/order"

    def order(self, tenant: str = "tenant-42", *, region: str = "eu-west-1",
              gpu_hours: float = 0.1, **overrides: Any) -> dict[str, Any]:
        fields = new_order(treaty_id=TREATY, tenant_id=tenant, region=region,
                           gpu_hours=gpu_hours)
        fields.update(overrides)
        return sign_order(fields, self.keys[tenant])

    def post(self, body: Any, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        content = raw if raw is not None else json.dumps(body).encode()
        return self.client.post(self.order_url, content=content,
                                headers=headers or {"content-type": "application/json"})

    def ledger_size(self) -> int:
        with Ledger.open(self.home, readonly=True) as ledger:
            return ledger.tree_head().size

    def entries(self, kind: str) -> list[dict[str, Any]]:
        with Ledger.open(self.home, readonly=True) as ledger:
            return [row.entry for row in ledger.scan(kinds=(kind,))]

    def metric(self, name: str, **labels: str) -> float:
        text = self.client.get(self.stack.metrics_url).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line
                                                    for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def chaos(self, **event: Any) -> str:
        with ChaosClient.for_home(self.home) as chaos:
            return str(chaos.add(event)["id"])

    def clear_chaos(self) -> None:
        with ChaosClient.for_home(self.home) as chaos:
            chaos.clear()
        time.sleep(self.stack.market_refresh_ms / 1000 * 2.5)  # the bridge re-reads the feed

    def bridges_choice(self) -> str:
        """The provider the bridge picks for tenant-42 in eu-west-1 right now.

        Its ranking also weighs recent successes (circuit breaker), so ask it: a
        success only raises the chosen provider's score, so the next order goes there too.
        """
        response = self.post(self.order())
        assert response.status_code == 200, response.text
        return str(response.json()["provider_id"])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home = Home(make_home(tmp_path_factory.mktemp("bridge") / "home"))
    up(home, UpOptions(traffic=False, observatory=False, backups=False))
    try:
        yield Live(home)
    finally:
        down(home)
