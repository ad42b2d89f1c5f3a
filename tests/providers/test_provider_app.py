"""The provider network over HTTP, in-process through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from aurora.config import load_providers, load_scenarios
from aurora.errors import ConfigError
from aurora.home import Home
from aurora.keys import load_private_key, load_public_key
from aurora.providers.app import create_app
from aurora.providers.server import NetworkOptions, build_app
from aurora.providers.sim import Network
from aurora.tokens import CHAOS, bearer_header, read_token
from aurora.wire import idempotency_key, order_sha256, parse_ack, verify_ack


class AppClient:
    """Blocking calls into an ASGI app (one event loop per request: the app keeps no
    loop-bound state between requests)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(call())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def post_body(self, url: str, body: Any) -> httpx.Response:
        """POST bytes as they are, anything else as JSON."""
        if isinstance(body, bytes):
            return self.post(url, content=body)
        return self.post(url, json=body)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


Client = Callable[..., AppClient]


@pytest.fixture
def client(home: Path, clock: Any) -> Client:
    """A client factory over a network with the home's provider keys and a fake clock."""
    h = Home(home)

    def make(config: Any = None, *, hold: float = 30.0, **options: Any) -> AppClient:
        providers = config or load_providers(h)
        keys = {p.id: load_private_key(h.provider_key(p.id)) for p in providers.providers}
        options.setdefault("seed", 1)
        network = Network(providers, keys, start=clock.now, **options)
        return AppClient(create_app(network, load_scenarios(h).scenarios, clock=clock,
                                     outage_hold_seconds=hold))

    return make


def post_order(client: AppClient, order: dict[str, Any], provider: str = "akash",
               gpu_type: str = "H100") -> httpx.Response:
    return client.post(f"/providers/{provider}/orders", json={"order": order,
                                                              "gpu_type": gpu_type})


def metric(client: AppClient, name: str, **labels: str) -> float:
    """One sample of the exposition, found by name and labels."""
    text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels}")


def chaos(client: AppClient, **body: Any) -> httpx.Response:
    return client.post("/chaos", json=body)


# --- orders ---------------------------------------------------------------------------------

def test_ack_verifies_with_the_published_provider_key(home: Path, client: Client,
                                                      make_order: Any) -> None:
    c = client(zero_delay=True)
    order = make_order(region="us-west-2", gpu_hours=1.5)
    response = post_order(c, order, provider="ionet", gpu_type="L40S")
    assert response.status_code == 200
    ack = response.json()
    parse_ack(ack)
    assert verify_ack(ack, load_public_key(Home(home).provider_pub("ionet")))
    assert not verify_ack(ack, load_public_key(Home(home).provider_pub("akash")))
    assert ack["order_sha256"] == order_sha256(order)
    assert re.fullmatch(r"IONET-JOB-[0-9]{4,}", ack["ack_id"])
    assert metric(c, "provider_orders_total", provider="ionet", outcome="acked") == 1.0
    assert metric(c, "provider_delay_ms_count", provider="ionet") == 1.0


def test_the_answer_carries_the_drawn_delay(client: Client, make_order: Any,
                                            tweak: Any) -> None:
    # sigma 0: the delay drawn is exactly the provider's latency; the ACK reports the time
    # the answer took (measured, so only its presence and sign are asserted, not a bound)
    c = client(tweak("akash", base_latency_ms=30.0, latency_sigma=0.0, error_rate=0.0))
    ack = post_order(c, make_order()).json()
    assert isinstance(ack["rtt_ms"], float) and ack["rtt_ms"] > 0
    assert metric(c, "provider_delay_ms_sum", provider="akash") == pytest.approx(30.0)
    assert metric(c, "provider_delay_ms_count", provider="akash") == 1.0


def test_bad_ack_does_not_verify(home: Path, client: Client, make_order: Any) -> None:
    c = client(zero_delay=True)
    assert chaos(c, type="bad_ack", provider="akash", **{"for": "2m"}).status_code == 201
    response = post_order(c, make_order())
    assert response.status_code == 200
    assert not verify_ack(response.json(), load_public_key(Home(home).provider_pub("akash")))
    assert metric(c, "provider_orders_total", provider="akash", outcome="bad_ack") == 1.0


def test_outage_refuse_is_an_immediate_503(client: Client, make_order: Any) -> None:
    c = client(zero_delay=True)
    chaos(c, type="outage", provider="akash", mode="refuse", **{"for": "5m"})
    response = post_order(c, make_order())
    assert response.status_code == 503 and response.json()["error"] == "outage"
    assert post_order(c, make_order(), provider="aethir").status_code == 200


def test_outage_timeout_holds_then_gives_up(client: Client, make_order: Any) -> None:
    c = client(zero_delay=True, hold=0.05)  # the real hold is 30 s: clients time out first
    chaos(c, type="outage", provider="akash", **{"for": "5m"})
    response = post_order(c, make_order())
    assert response.status_code == 503 and response.json()["error"] == "outage"
    assert metric(c, "provider_orders_total", provider="akash", outcome="outage") == 1.0


def test_outage_hold_ends_when_the_client_disconnects(client: Client, make_order: Any) -> None:
    c = client(zero_delay=True)  # the full 30 s hold
    chaos(c, type="outage", provider="akash", **{"for": "5m"})
    body = json.dumps({"order": make_order(), "gpu_type": "H100"}).encode()
    messages = [{"type": "http.request", "body": body, "more_body": False},
                {"type": "http.disconnect"}]  # the client gives up right after sending
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # nothing more ever comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/providers/akash/orders",
             "raw_path": b"/providers/akash/orders", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    # Bounded: a hold that ignored the disconnect would last 30 s and fail here.
    asyncio.run(asyncio.wait_for(c.app(scope, receive, send), timeout=10))
    assert sent[0]["status"] == 503
    assert metric(c, "provider_orders_total", provider="akash", outcome="outage") == 1.0


def test_capacity_exhaustion_is_503_capacity(client: Client, make_order: Any, clock: Any) -> None:
    c = client(zero_delay=True)
    assert post_order(c, make_order(gpu_hours=150.0), provider="flux",
                      gpu_type="A100").status_code == 200
    response = post_order(c, make_order(gpu_hours=60.0), provider="flux", gpu_type="A100")
    assert response.status_code == 503 and response.json() == {"error": "capacity",
                                                               "detail": None}
    assert metric(c, "provider_capacity_gpu_hours", provider="flux") == 50.0
    clock.now += 5  # 5 ticks x 2 GPU-hours
    assert metric(c, "provider_capacity_gpu_hours", provider="flux") == 60.0
    assert post_order(c, make_order(gpu_hours=60.0), provider="flux",
                      gpu_type="A100").status_code == 200
    assert metric(c, "provider_orders_total", provider="flux", outcome="capacity") == 1.0


def test_random_refusals_are_503_unavailable(client: Client, make_order: Any,
                                             tweak: Any) -> None:
    c = client(tweak("salad", error_rate=1.0, base_latency_ms=1.0))
    response = post_order(c, make_order(region="us-east-1"), provider="salad",
                          gpu_type="RTX4090")
    assert (response.status_code, response.json()["error"]) == (503, "unavailable")
    assert metric(c, "provider_orders_total", provider="salad", outcome="refused") == 1.0


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/providers/aws/orders", {}, 404, "unknown_provider"),
    ("/providers/akash/orders", b"{not json", 400, "bad_json"),
    ("/providers/akash/orders", [1, 2], 400, "bad_request"),
    ("/providers/akash/orders", {"order": {}}, 400, "bad_request"),
    ("/providers/akash/orders", {"order": {"nonce": "x"}, "gpu_type": "H100"}, 400, "bad_order"),
    ("/providers/akash/orders", b"x" * 70_000, 413, "too_large"),
])
def test_bad_order_requests(client: Client, path: str, body: Any, status: int,
                            code: str) -> None:
    response = client(zero_delay=True).post_body(path, body)
    assert response.status_code == status
    assert response.json()["error"] == code and "detail" in response.json()


def test_unserved_gpu_type_or_region_is_422(client: Client, make_order: Any) -> None:
    c = client(zero_delay=True)
    gpu = post_order(c, make_order(), provider="salad", gpu_type="H100")
    region = post_order(c, make_order(region="ap-southeast-1"), provider="akash")
    assert (gpu.status_code, gpu.json()["error"]) == (422, "not_served")
    assert (region.status_code, region.json()["error"]) == (422, "not_served")
    assert "ap-southeast-1" in region.json()["detail"]


# --- feed and metrics -----------------------------------------------------------------------

def test_feed_and_metrics_reflect_injected_faults(client: Client) -> None:
    c = client()
    for body in (
        {"type": "outage", "provider": "akash", "for": "5m"},
        {"type": "latency_spike", "provider": "ionet", "for": "5m", "factor": 3},
        {"type": "price_spike", "provider": "render", "for": "5m", "factor": 2.5},
        {"type": "reputation_drop", "provider": "flux", "for": "5m", "value": 40},
        {"type": "capacity_surge", "provider": "vastai", "for": "5m", "factor": 2},
    ):
        assert chaos(c, **body).status_code == 201
    feed = {p["id"]: p for p in c.get("/providers").json()["providers"]}
    assert feed["akash"]["active"] is False and feed["ionet"]["active"] is True
    assert feed["ionet"]["latency_ms"] == 375.0
    assert feed["render"]["price_usd_per_gpu_hour"] == pytest.approx(2.375)
    assert feed["flux"]["reputation"] == 40
    assert [e["type"] for e in feed["akash"]["events"]] == ["outage"]
    assert metric(c, "provider_active", provider="akash") == 0.0
    assert metric(c, "provider_active", provider="ionet") == 1.0
    assert metric(c, "provider_latency_ms", provider="ionet") == 375.0
    assert metric(c, "provider_price_usd", provider="render") == pytest.approx(2.375)
    assert metric(c, "provider_reputation", provider="flux") == 40.0
    assert metric(c, "provider_capacity_gpu_hours", provider="vastai") == 600.0
    assert c.delete("/chaos").json() == {"cleared": 5}
    assert metric(c, "provider_active", provider="akash") == 1.0
    assert metric(c, "provider_reputation", provider="flux") == 74.0


def test_events_expire_with_time(client: Client, clock: Any) -> None:
    c = client()
    chaos(c, type="outage", provider="akash", mode="refuse", **{"for": "1m"})
    assert metric(c, "provider_active", provider="akash") == 0.0
    clock.now += 61
    assert metric(c, "provider_active", provider="akash") == 1.0
    assert c.get("/chaos").json()["events"] == []


def test_metrics_carry_every_seed_metric(client: Client) -> None:
    text = client().get("/metrics").text
    for name in ("provider_active", "provider_capacity_gpu_hours", "provider_latency_ms",
                 "provider_price_usd", "provider_reputation", "provider_orders_total",
                 "provider_delay_ms_bucket"):
        assert f"\n{name}{{" in text, name
    assert text.count("provider_active{") == 7


def test_healthz(client: Client) -> None:
    assert client().get("/healthz").json() == {"status": "ok"}


# --- chaos API ------------------------------------------------------------------------------

def test_chaos_lifecycle(client: Client, clock: Any) -> None:
    c = client()
    made = chaos(c, type="latency_spike", provider="ionet", factor=2, at="1m", **{"for": 30})
    assert made.status_code == 201
    event = made.json()["event"]
    assert {"id", "type", "provider", "starts_at", "ends_at", "factor"} <= set(event)
    assert event["status"] == "scheduled"
    listed = c.get("/chaos").json()
    assert [e["id"] for e in listed["events"]] == [event["id"]] and listed["time"].endswith("Z")
    clock.now += 61
    assert c.get("/chaos").json()["events"][0]["status"] == "active"
    removed = c.delete(f"/chaos/{event['id']}")
    assert removed.status_code == 200 and removed.json()["event"]["id"] == event["id"]
    gone = c.delete(f"/chaos/{event['id']}")
    assert (gone.status_code, gone.json()["error"]) == (404, "not_found")


@pytest.mark.parametrize(("body", "status", "fragment"), [
    (b"{oops", 400, "bad_json"),
    (b"x" * 70_000, 413, "too_large"),
    (b'{"type": "outage", "type": "outage"}', 400, "duplicate"),
    ({"type": "outage", "provider": "aws", "for": "1m"}, 422, "provider"),
    ({"type": "comet", "provider": "akash", "for": "1m"}, 422, "type"),
    ({"type": "outage", "provider": "akash", "for": "later"}, 422, "for"),
    ({"type": "price_spike", "provider": "akash", "for": "1m"}, 422, "factor"),
    ({"type": "reputation_drop", "provider": "akash", "for": "1m", "value": -1}, 422, "value"),
    ({"type": "outage", "provider": "akash", "for": "1m", "mode": "sulk"}, 422, "mode"),
])
def test_chaos_validation_errors(client: Client, body: Any, status: int, fragment: str) -> None:
    c = client()
    response = c.post_body("/chaos", body)
    assert response.status_code == status
    answer = response.json()
    assert fragment in f"{answer['error']} {answer['detail']}"
    assert c.get("/chaos").json()["events"] == []


def test_scenario_schedules_events_from_now(client: Client) -> None:
    c = client()
    made = c.post("/scenario", json={"name": "regional-outage"})
    assert made.status_code == 201
    assert len(made.json()["events"]) == 5
    feed = {p["id"]: p["active"] for p in c.get("/providers").json()["providers"]}
    assert feed == {"akash": False, "ionet": True, "render": False, "flux": False,
                    "aethir": False, "vastai": False, "salad": True}
    unknown = c.post("/scenario", json={"name": "apocalypse"})
    assert unknown.status_code == 404 and "demo" in unknown.json()["detail"]
    assert c.post("/scenario", json={"scenario": "demo"}).status_code == 422
    for body, status, code in ((b"{oops", 400, "bad_json"), (b"x" * 70_000, 413, "too_large")):
        refused = c.post_body("/scenario", body)
        assert (refused.status_code, refused.json()["error"]) == (status, code)


def test_unknown_routes_and_methods_answer_json(client: Client) -> None:
    c = client()
    assert c.get("/nowhere").json()["error"] == "not_found"
    assert c.put("/chaos").status_code == 405


# --- assembling from a home -----------------------------------------------------------------

def test_build_app_schedules_the_start_up_scenario(home: Path) -> None:
    app = build_app(Home(home), NetworkOptions(seed=1, scenario="demo"))
    assert AppClient(app).get("/chaos").status_code == 401  # the home's chaos token guards it
    token = read_token(Home(home), CHAOS)
    events = AppClient(app).get("/chaos", headers=bearer_header(token)).json()["events"]
    assert len(events) == 6 and {e["status"] for e in events} == {"scheduled"}


def test_build_app_refuses_an_unknown_scenario(home: Path) -> None:
    with pytest.raises(ConfigError, match="no scenario 'nope'"):
        build_app(Home(home), NetworkOptions(scenario="nope"))


def test_build_app_refuses_a_bad_scenarios_file(home: Path) -> None:
    path = home / "config" / "scenarios.json"
    path.write_text('{"scenarios": {"x": {"events": [{"at": "0s", "type": "outage", '
                    '"provider": "aws", "for": "1m"}]}}}')
    with pytest.raises(ConfigError, match="unknown provider 'aws'"):
        build_app(Home(home))


def test_an_idempotency_key_gets_the_first_ack_and_no_second_job(client: Client,
                                                                make_order: Any) -> None:
    c = client(zero_delay=True)
    order = make_order(gpu_hours=150.0)
    key = {"Idempotency-Key": idempotency_key(order)}
    body = {"order": order, "gpu_type": "A100"}
    first = c.post("/providers/flux/orders", json=body, headers=key)
    assert first.status_code == 200
    assert metric(c, "provider_capacity_gpu_hours", provider="flux") == 50.0
    # the retry (the bridge died before recording the first answer): same ACK, no capacity
    again = c.post("/providers/flux/orders", json=body, headers=key)
    assert again.status_code == 200 and again.json() == first.json()
    assert metric(c, "provider_capacity_gpu_hours", provider="flux") == 50.0
    assert metric(c, "provider_orders_total", provider="flux", outcome="acked") == 1.0
    assert metric(c, "provider_orders_total", provider="flux", outcome="replayed") == 1.0
    # the same key with another order is refused, and opens nothing
    other = {"order": make_order(gpu_hours=1.0), "gpu_type": "A100"}
    conflict = c.post("/providers/flux/orders", json=other, headers=key)
    assert conflict.status_code == 409 and conflict.json()["error"] == "idempotency_conflict"
    assert metric(c, "provider_capacity_gpu_hours", provider="flux") == 50.0
    # without a key every order is a new job, as before
    assert post_order(c, order, provider="flux", gpu_type="A100").status_code == 503
    bad = c.post("/providers/flux/orders", json=body, headers={"Idempotency-Key": "a b"})
    assert bad.status_code == 400
