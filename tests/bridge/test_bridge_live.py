"""The bridge over real HTTP: every row of DESIGN.md's answer table, failover, drops,
replay after restart, the quota race, and 'rejected input changes nothing'."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aurora import procs
from aurora.keys import load_public_key
from aurora.ledger import Receipt
from aurora.ledger.note import Verifier
from aurora.provenance import ack_matches_order
from aurora.stack import UpOptions, services
from aurora.wire import format_rfc3339, verify_ack

from .conftest import TREATY, Live

pytestmark = pytest.mark.integration


def test_filled_order_carries_a_provider_signed_ack_and_a_verifiable_receipt(live: Live) -> None:
    order = live.order()
    response = live.post(order)
    assert response.status_code == 200, response.text
    body = response.json()
    ack = {k: v for k, v in body.items() if k != "receipt"}
    assert verify_ack(ack, load_public_key(live.home.provider_pub(ack["provider_id"])))
    assert ack_matches_order(ack, order) is None
    receipt = Receipt.from_json(body["receipt"])
    receipt.verify([Verifier.from_vkey(live.home.ledger_vkey.read_text().strip())],
                   live.stack.ledger_origin)
    assert receipt.entry["data"]["order"] == order and receipt.entry["data"]["ack"] == ack


ONE_MB = b"{" + b'"a":"' + b"x" * (1 << 20) + b'"}'


def _expired(live: Live) -> dict[str, Any]:
    past = format_rfc3339(datetime.now(UTC) - timedelta(seconds=5))
    return live.order(deadline_utc=past)


def _far(live: Live) -> dict[str, Any]:
    later = format_rfc3339(datetime.now(UTC) + timedelta(hours=25))
    return live.order(deadline_utc=later)


def _tampered(live: Live) -> dict[str, Any]:
    order = live.order()
    order["gpu_hours"] = 5
    return order


def _stranger(live: Live) -> dict[str, Any]:
    order = live.order()
    order["tenant_id"] = "nobody-here"
    return order


def _bad_b64(live: Live) -> dict[str, Any]:
    order = live.order()
    order["signature"] = "!" * 86 + "=="
    return order


def _malleable(live: Live) -> dict[str, Any]:
    """The same 64 signature bytes spelt differently: the unused low bits of the last
    character before ``==`` set (issue 13, defect 6)."""
    order = live.order()
    sig = order["signature"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(sig[-3])
    order["signature"] = sig[:-3] + alphabet[last | 0b0101] + "=="
    assert base64.b64decode(order["signature"]) == base64.b64decode(sig)
    assert order["signature"] != sig
    return order


# An otherwise well-formed, validly signed order whose deadline overflows date arithmetic
# once converted to UTC (issue 13, defect 1): a 4xx, never a 500.
EXTREME_DEADLINES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                     "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"]

REJECTIONS = [
    *((f"deadline {d}", lambda live, d=d: (live.order(deadline_utc=d), None), 422, "schema")
      for d in EXTREME_DEADLINES),
    ("non-canonical signature", lambda live: (_malleable(live), None), 401, "signature"),
    ("not json", lambda live: (None, b"{not json"), 400, "bad_json"),
    ("array", lambda live: ([], None), 400, "bad_json"),
    ("duplicate keys", lambda live: (None, b'{"nonce":"aaaaaaaa","nonce":"bbbbbbbb"}'), 400,
     "bad_json"),
    ("NaN", lambda live: (None, b'{"gpu_hours": NaN}'), 400, "bad_json"),
    ("bad utf-8", lambda live: (None, b'{"nonce":"\xff\xfe"}'), 400, "bad_json"),
    ("over 64 KiB", lambda live: (None, ONE_MB), 413, "too_large"),
    ("missing field", lambda live: ({k: v for k, v in live.order().items()
                                     if k != "region"}, None), 422, "schema"),
    ("extra field", lambda live: ({**live.order(), "priority": 1}, None), 422, "schema"),
    ("wrong type", lambda live: ({**live.order(), "gpu_hours": "1"}, None), 422, "schema"),
    ("bool as number", lambda live: ({**live.order(), "gpu_hours": True}, None), 422, "schema"),
    ("too few hours", lambda live: ({**live.order(), "gpu_hours": 0.01}, None), 422, "schema"),
    ("huge number", lambda live: (None, json.dumps(live.order()).replace(
        '"gpu_hours": 0.1', '"gpu_hours": 1' + "0" * 400).encode()), 422, "schema"),
    ("bad region format", lambda live: ({**live.order(), "region": "EU_WEST"}, None), 422,
     "schema"),
    ("bad base64", lambda live: (_bad_b64(live), None), 422, "schema"),
    ("expired", lambda live: (_expired(live), None), 422, "expired"),
    ("far future", lambda live: (_far(live), None), 422, "schema"),
    ("unknown tenant", lambda live: (_stranger(live), None), 401, "signature"),
    ("tampered", lambda live: (_tampered(live), None), 401, "signature"),
]


@pytest.mark.parametrize(("case", "make", "status", "code"), REJECTIONS,
                         ids=[r[0] for r in REJECTIONS])
def test_bad_input_gets_its_4xx_and_changes_nothing(live: Live, case, make, status, code) -> None:
    before = (live.ledger_size(), live.metric("treaty_quota_used_gpu_hours"))
    body, raw = make(live)
    response = live.post(body, raw=raw)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"] == code and answer["detail"]
    assert (live.ledger_size(), live.metric("treaty_quota_used_gpu_hours")) == before


def test_an_extreme_deadline_is_counted_as_rejected(live: Live) -> None:
    before = live.metric("treaty_requests_total", outcome="rejected")
    for deadline in EXTREME_DEADLINES:
        assert live.post(live.order(deadline_utc=deadline)).status_code == 422
    assert live.metric("treaty_requests_total", outcome="rejected") == before + len(
        EXTREME_DEADLINES)


def test_oversize_body_without_content_length_is_refused(live: Live) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(70):
            yield b" " * 1024
    response = live.client.post(live.order_url, content=chunks(),
                                headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "too_large"


@pytest.mark.parametrize(("tenant", "region", "treaty", "reason"), [
    ("tenant-42", "ap-southeast-1", TREATY, "region"),
    ("grey-miner", "us-west-2", TREATY, "reputation"),
    ("tenant-42", "eu-west-1", "AURORA-OTHER-002", "treaty"),
])
def test_policy_denials_are_403_and_recorded(live: Live, tenant, region, treaty, reason) -> None:
    order = live.order(tenant, region=region, treaty_id=treaty)
    quota = live.metric("treaty_quota_used_gpu_hours")
    response = live.post(order)
    assert response.status_code == 403
    assert response.json()["error"] == "policy" and response.json()["reason"] == reason
    decisions = [e for e in live.entries("decision") if e["subject"] == order["nonce"]]
    assert len(decisions) == 1 and decisions[0]["data"]["decision"]["reason"] == reason
    assert live.metric("treaty_quota_used_gpu_hours") == quota
    assert live.post(order).status_code == 409  # a signed, decided nonce is spent


def test_replay_is_refused_even_after_a_bridge_restart(live: Live) -> None:
    order = live.order()
    assert live.post(order).status_code == 200
    assert live.post(order).json()["error"] == "replay"
    bridge = next(s for s in services(UpOptions()) if s.name == "bridge")
    procs.stop(live.home, "bridge")
    procs.spawn(live.home, "bridge", bridge.argv(live.home, live.stack))
    procs.wait_http(f"{live.stack.bridge_url}/readyz", timeout=30)
    response = live.post(order)
    assert response.status_code == 409 and response.json()["error"] == "replay"


def test_failover_past_a_provider_whose_ack_does_not_verify(live: Live) -> None:
    first = live.bridges_choice()
    live.chaos(type="bad_ack", provider=first, **{"for": "2m"})
    try:
        before = live.metric("treaty_failover_events_total", provider=first, reason="bad_ack")
        order = live.order()
        response = live.post(order)
        assert response.status_code == 200, response.text
        assert response.json()["provider_id"] != first
        entry = next(e for e in live.entries("order") if e["subject"] == order["nonce"])
        attempt = entry["data"]["route"]["attempts"][0]
        assert attempt["provider"] == first and attempt["outcome"] == "bad_ack"
        assert "rejected_ack" in attempt  # the forged ACK is kept as evidence
        assert live.metric("treaty_failover_events_total", provider=first,
                           reason="bad_ack") == before + 1
    finally:
        live.clear_chaos()


def test_failover_after_a_provider_times_out(live: Live) -> None:
    first = live.bridges_choice()
    # silent: requests hang while the market feed still shows the provider as up
    live.chaos(type="outage", provider=first, mode="silent", **{"for": "2m"})
    try:
        before = live.metric("treaty_failover_events_total", provider=first, reason="timeout")
        order = live.order()
        response = live.post(order)
        assert response.status_code == 200
        entry = next(e for e in live.entries("order") if e["subject"] == order["nonce"])
        attempts = entry["data"]["route"]["attempts"]
        assert [a["outcome"] for a in attempts] == ["timeout", "acked"]
        assert attempts[0]["provider"] == first and attempts[1]["provider"] != first
        assert live.metric("treaty_failover_events_total", provider=first,
                           reason="timeout") == before + 1
    finally:
        live.clear_chaos()


def test_no_provider_means_503_a_drop_entry_and_the_hours_released(live: Live) -> None:
    feed = live.client.get(f"{live.stack.providers_url}/providers").json()["providers"]
    serving = [p["id"] for p in feed if "eu-west-1" in p["regions"]]
    for provider in serving:
        live.chaos(type="outage", provider=provider, mode="refuse", **{"for": "2m"})
    try:
        time.sleep(live.stack.market_refresh_ms / 1000 * 2.5)
        quota = live.metric("treaty_quota_used_gpu_hours")
        dropped = live.metric("treaty_dropped_requests_total", reason="no_provider")
        order = live.order(gpu_hours=3.0)
        response = live.post(order)
        assert response.status_code == 503 and response.json()["error"] == "no_provider"
        assert any(e["subject"] == order["nonce"] for e in live.entries("drop"))
        assert live.metric("treaty_quota_used_gpu_hours") == pytest.approx(quota)
        assert live.metric("treaty_dropped_requests_total", reason="no_provider") == dropped + 1
    finally:
        live.clear_chaos()


def test_two_hundred_concurrent_orders_never_overrun_the_daily_cap(live: Live) -> None:
    tenant = "quanta-ai"  # untouched by the other tests: its whole 100 GPU-h day is free
    orders = [live.order(tenant, region="us-west-2", gpu_hours=1.0) for _ in range(200)]

    async def fire() -> list[int]:
        async with aiohttp.ClientSession() as session:
            async def one(order: dict[str, Any]) -> int:
                async with session.post(live.order_url, json=order) as response:
                    await response.read()
                    return response.status
            return await asyncio.gather(*(one(o) for o in orders))

    statuses = asyncio.run(fire())
    filled_hours = sum(e["data"]["order"]["gpu_hours"] for e in live.entries("order")
                       if e["tenant_id"] == tenant)
    assert filled_hours <= 100.0
    assert statuses.count(200) == filled_hours
    assert statuses.count(200) + statuses.count(403) + statuses.count(503) == 200
    assert statuses.count(200) >= 90  # nearly the whole cap is used, none beyond it


def test_readiness_and_openapi(live: Live) -> None:
    assert live.client.get(f"{live.stack.bridge_url}/healthz").json()["status"] == "ok"
    assert live.client.get(f"{live.stack.bridge_url}/readyz").status_code == 200
    spec = live.client.get(f"{live.stack.bridge_url}/openapi.json").json()
    order_schema = json.loads((Path(live.home.order_schema_file)).read_text())
    assert spec["components"]["schemas"]["Order"]["required"] == order_schema["required"]
