"""Issue 13 #9: a retry after the bridge died between a provider's ACK and the ledger
append must not open a second provider job.

Real processes: the provider network and the bridge run as ``aurora up`` starts them; the
bridge is restarted with a fault hook that SIGKILLs it right after the ACK, the tenant
retries the same signed order against a fresh bridge, and the provider network's own
counters are compared with the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aurora import procs
from aurora.bridge.server import CRASH_AFTER_ACK_ENV
from aurora.config import load_providers
from aurora.home import Home
from aurora.ledger import Ledger
from aurora.providers.chaos import ChaosClient
from aurora.stack import AURORA, UpOptions, down, up
from support import make_home

from .conftest import Live

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROUNDS = 3
ONLY = "akash"  # the one provider left serving eu-west-1, so a retry cannot go elsewhere
LEASE = "3s"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    # a short lease: in PostgreSQL mode the dead bridge's claim is resolved after it
    home = Home(make_home(tmp_path_factory.mktemp("idempotency") / "home",
                          treaty_lease=LEASE))
    up(home, UpOptions(traffic=False, observatory=False, backups=False))
    try:
        yield Live(home)
    finally:
        down(home)


def restart_bridge(live: Live, env: dict[str, str] | None = None) -> None:
    procs.stop(live.home, "bridge")
    procs.spawn(live.home, "bridge", [*AURORA, "bridge"], env=env)
    procs.wait_http(live.stack.url(live.stack.bridge_port, "/readyz"), timeout=60,
                    pid_check=(live.home, "bridge"))


def gone(home: Home, name: str) -> bool:
    """Whether the service's process has died (the kernel may take a moment to reap it)."""
    for _ in range(200):
        if procs.running(home, name) is None:
            return True
        time.sleep(0.05)
    return False


def provider_orders(live: Live) -> dict[str, float]:
    """``provider_orders_total`` by outcome, summed over providers (the network's count)."""
    text = httpx.get(f"{live.stack.providers_url}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "provider_orders_total":
                outcome = sample.labels["outcome"]
                out[outcome] = out.get(outcome, 0.0) + sample.value
    return out


def ledger_orders(live: Live) -> list[dict[str, object]]:
    with Ledger.open(live.home, readonly=True) as ledger:
        return [row.data for row in ledger.scan(kinds=("order",))]


def retry_until_resolved(live: Live, order: dict[str, object]) -> httpx.Response:
    """The retry's answer once the dead bridge's claim is resolved.

    With the SQLite default the claim died with the bridge's memory: the first retry is
    taken. In PostgreSQL mode the claim outlives it, and until its lease ends a retry is
    told the nonce is held in flight (409, with when to come back), never taken twice.
    """
    deadline = time.monotonic() + 30
    while True:
        answer = live.post(order)
        if answer.status_code != 409 or time.monotonic() > deadline:
            return answer
        assert live.stack.database_url, answer.text  # SQLite: nothing outlives the crash
        assert answer.json()["error"] == "replay" and "in flight" in answer.json()["detail"]
        time.sleep(0.5)


def test_a_retry_after_a_crash_reuses_the_first_ack(stack: Live) -> None:
    with ChaosClient.for_home(stack.home) as chaos:
        for provider in load_providers(stack.home).providers:
            if provider.id != ONLY:
                chaos.add({"type": "outage", "provider": provider.id, "for": "1h",
                           "mode": "refuse"})
    acks = []
    for _ in range(ROUNDS):
        order = stack.order(gpu_hours=0.5)
        restart_bridge(stack, {CRASH_AFTER_ACK_ENV: "1"})
        with pytest.raises(httpx.HTTPError):  # the bridge died before it could answer
            stack.post(order)
        assert gone(stack.home, "bridge")
        restart_bridge(stack)
        retried = retry_until_resolved(stack, order)
        assert retried.status_code == 200, retried.text
        acks.append(retried.json()["ack_id"])
        assert stack.post(order).status_code == 409  # and now the nonce is spent
    counts = provider_orders(stack)
    recorded = ledger_orders(stack)
    # one provider job per order in the ledger: the retries got the jobs they had
    assert counts.get("acked") == len(recorded) == ROUNDS
    assert counts.get("replayed") == ROUNDS
    assert sorted(str(d["ack"]["ack_id"]) for d in recorded) == sorted(acks)  # type: ignore[index]
    assert len(set(acks)) == ROUNDS
