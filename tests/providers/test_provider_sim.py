"""The pure simulation: capacity, refill, effective values, delays, answers."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable
from typing import Any

import pytest

from aurora.keys import Ed25519PrivateKey
from aurora.providers.scenarios import make_event
from aurora.providers.sim import Network, UnknownProviderError, effective_values, not_served
from aurora.wire import ACK_ID_PATTERN, order_sha256, parse_ack, parse_order, verify_ack

MakeNetwork = Callable[..., Network]


_ids = itertools.count(1)


def event(kind: str, provider: str, start: float, duration: float, **params: Any) -> Any:
    return make_event(event_id=f"t-{next(_ids)}", type=kind, provider=provider, start=start,
                      duration=duration, **params)


def settle(net: Network, order: dict[str, Any], now: float, provider: str = "akash",
           gpu_type: str = "H100") -> Any:
    return net.settle(provider, order, parse_order(order), gpu_type, rtt_ms=12.5, now=now)


# --- capacity -------------------------------------------------------------------------------

def test_pool_starts_full_and_orders_consume_it(make_network: MakeNetwork, t0: float) -> None:
    net = make_network()
    assert net.capacity("akash", t0) == 400.0
    assert net.reserve("akash", 150.0, t0) and net.reserve("akash", 150.0, t0)
    assert not net.reserve("akash", 150.0, t0)  # 100 left: all or nothing
    assert net.capacity("akash", t0) == 100.0


def test_refill_per_whole_step_capped_at_max(make_network: MakeNetwork, t0: float) -> None:
    net = make_network()  # akash: 400 max, +4 per 1 s step
    net.reserve("akash", 100.0, t0)
    assert net.capacity("akash", t0 + 0.5) == 300.0  # no tick yet
    assert net.capacity("akash", t0 + 1.0) == 304.0
    assert net.capacity("akash", t0 + 2.5) == 308.0
    assert net.capacity("akash", t0 + 2.9) == 308.0  # asking often changes nothing
    assert net.capacity("akash", t0 + 10.0) == 340.0
    assert net.capacity("akash", t0 + 3600.0) == 400.0


def test_refill_is_the_same_whether_looked_at_often_or_once(make_network: MakeNetwork,
                                                            t0: float) -> None:
    often, once = make_network(), make_network()
    for net in (often, once):
        net.reserve("salad", 300.0, t0)
        net.add_events([event("capacity_surge", "salad", t0 + 3.5, 4.0, factor=3.0)], t0)
    for k in range(1, 200):
        often.capacity("salad", t0 + k * 0.1)
    assert often.capacity("salad", t0 + 20.0) == once.capacity("salad", t0 + 20.0)
    # ticks 1-3 at 3.5, ticks 4-7 at 3 x 3.5, ticks 8-20 at 3.5
    assert once.capacity("salad", t0 + 20.0) == pytest.approx(50 + 16 * 3.5 + 4 * 10.5)


def test_capacity_surge_raises_max_and_refill_then_clamps(make_network: MakeNetwork,
                                                          t0: float) -> None:
    net = make_network()
    net.add_events([event("capacity_surge", "vastai", t0, 60.0, factor=2.0)], t0)
    assert net.capacity("vastai", t0) == 600.0  # the pool grows by refill, not at once
    assert net.capacity("vastai", t0 + 10) == 720.0  # 600 + 10 x 6 x 2
    assert net.capacity("vastai", t0 + 59) == 1200.0  # capped at 2 x 600
    assert net.capacity("vastai", t0 + 61) == 600.0  # surge over: back under the normal max
    assert net.effective("vastai", t0 + 30).capacity_factor == 2.0


def test_unlimited_capacity_never_refuses(make_network: MakeNetwork, t0: float) -> None:
    net = make_network(unlimited_capacity=True)
    assert all(net.reserve("flux", 150.0, t0) for _ in range(50))
    assert net.capacity("flux", t0) == 200.0


# --- effective values -----------------------------------------------------------------------

def test_overlapping_events_combine(make_network: MakeNetwork, t0: float) -> None:
    net = make_network()
    net.add_events([
        event("latency_spike", "ionet", t0, 100, factor=2.0),
        event("latency_spike", "ionet", t0 + 50, 100, factor=3.0),
        event("price_spike", "ionet", t0, 100, factor=1.5),
        event("reputation_drop", "ionet", t0, 100, value=60),
        event("reputation_drop", "ionet", t0 + 50, 20, value=40),
        event("reputation_drop", "ionet", t0, 100, value=99),  # a "drop" never raises it
        event("bad_ack", "ionet", t0 + 90, 5),
    ], t0)
    at_10, at_60, at_92, at_120 = (net.effective("ionet", t0 + d) for d in (10, 60, 92, 120))
    assert (at_10.latency_ms, at_60.latency_ms, at_120.latency_ms) == (250.0, 750.0, 375.0)
    assert at_10.price_usd_per_gpu_hour == pytest.approx(1.65 * 1.5)
    assert at_120.price_usd_per_gpu_hour == 1.65
    assert (at_10.reputation, at_60.reputation, at_92.reputation, at_120.reputation) == (
        60, 40, 60, 86)
    assert (at_60.bad_ack, at_92.bad_ack, at_120.bad_ack) == (False, True, False)
    assert all(e.active for e in (at_10, at_60, at_92, at_120))


def test_outages_make_inactive_and_timeout_beats_refuse(make_network: MakeNetwork,
                                                         t0: float) -> None:
    net = make_network()
    net.add_events([event("outage", "akash", t0, 10, mode="refuse"),
                    event("outage", "akash", t0 + 5, 10, mode="timeout")], t0)
    modes = [net.effective("akash", t0 + d).outage_mode for d in (1, 6, 12, 20)]
    assert modes == ["refuse", "timeout", "timeout", None]
    assert not net.effective("akash", t0 + 1).active and net.effective("akash", t0 + 20).active
    assert net.effective("render", t0 + 1).active  # other providers are untouched


def test_events_only_count_inside_their_window(providers_file: Any, t0: float) -> None:
    akash = providers_file.providers[0]
    spike = event("price_spike", "akash", t0 + 10, 10, factor=4.0)
    prices = [effective_values(akash, [spike], t0 + d).price_usd_per_gpu_hour
              for d in (9.99, 10, 19.99, 20)]
    assert prices == [1.85, pytest.approx(7.4), pytest.approx(7.4), 1.85]


def test_expired_events_are_forgotten_by_views_not_before(make_network: MakeNetwork,
                                                         t0: float) -> None:
    net = make_network()
    net.add_events([event("outage", "akash", t0, 10), event("bad_ack", "flux", t0, 100)], t0)
    first = {v.config.id: v for v in net.views(t0 + 5)}
    assert not first["akash"].effective.active and len(first["akash"].events) == 1
    later = {v.config.id: v for v in net.views(t0 + 11)}
    assert later["akash"].effective.active and later["akash"].events == ()
    assert [e.type for e in later["flux"].events] == ["bad_ack"]
    assert [e.provider for e in net.events.all()] == ["flux"]


def test_remove_and_clear_end_events(make_network: MakeNetwork, t0: float) -> None:
    net = make_network()
    net.add_events([event("outage", "akash", t0, 100), event("outage", "flux", t0, 100)], t0)
    first = net.events.all()[0].id
    assert net.remove_event(first, t0 + 1) is not None
    assert net.remove_event(first, t0 + 1) is None
    assert net.clear_events(t0 + 2) == 1
    assert all(v.effective.active for v in net.views(t0 + 3))


def test_feed_has_the_contract_fields(make_network: MakeNetwork, t0: float) -> None:
    net = make_network()
    net.add_events([event("outage", "render", t0, 60)], t0)
    feed = net.feed(t0 + 1)
    assert feed["time"].endswith("Z")
    assert [p["id"] for p in feed["providers"]] == [
        "akash", "ionet", "render", "flux", "aethir", "vastai", "salad"]
    render = feed["providers"][2]
    assert set(render) == {"id", "name", "active", "regions", "gpu_types",
                           "price_usd_per_gpu_hour", "latency_ms", "capacity_gpu_hours",
                           "reputation", "events"}
    assert render["active"] is False and render["events"][0]["type"] == "outage"
    assert feed["providers"][0]["active"] is True


# --- delays ---------------------------------------------------------------------------------

def test_delays_are_lognormal_around_the_latency(make_network: MakeNetwork, t0: float) -> None:
    net = make_network(seed=42)
    draws = [net.arrive("vastai", t0).delay_ms for _ in range(4000)]  # median 170, sigma 0.2
    logs = [math.log(d) for d in draws]
    assert statistics.median(draws) == pytest.approx(170.0, rel=0.03)
    assert statistics.stdev(logs) == pytest.approx(0.2, rel=0.05)
    assert min(draws) > 0


def test_latency_spike_scales_the_delay_median(make_network: MakeNetwork, t0: float) -> None:
    net = make_network(seed=3)
    net.add_events([event("latency_spike", "akash", t0, 60, factor=3.0)], t0)
    draws = [net.arrive("akash", t0 + 1).delay_ms for _ in range(2000)]
    assert statistics.median(draws) == pytest.approx(450.0, rel=0.03)


def test_same_seed_same_draws(make_network: MakeNetwork, t0: float) -> None:
    a, b, c = make_network(seed=9), make_network(seed=9), make_network(seed=10)
    draw = lambda net: [net.arrive("salad", t0).delay_ms for _ in range(20)]  # noqa: E731
    assert draw(a) == draw(b) != draw(c)


def test_zero_delay_keeps_the_modelled_latency_in_the_feed(make_network: MakeNetwork,
                                                           t0: float) -> None:
    net = make_network(zero_delay=True)
    assert {net.arrive(p, t0).delay_ms for p in net.providers} == {0.0}
    assert net.effective("akash", t0).latency_ms == 150.0  # the router scores by it
    assert net.effective("salad", t0).error_rate == 0.0


def test_outage_answers_on_arrival_without_a_delay(make_network: MakeNetwork, t0: float) -> None:
    net = make_network()
    net.add_events([event("outage", "akash", t0, 60, mode="refuse")], t0)
    arrival = net.arrive("akash", t0 + 1)
    assert (arrival.outage_mode, arrival.delay_ms) == ("refuse", 0.0)


# --- answers --------------------------------------------------------------------------------

def test_ack_is_a_valid_signed_wire_ack(make_network: MakeNetwork, make_order: Any,
                                        provider_keys: dict[str, Ed25519PrivateKey],
                                        t0: float) -> None:
    net = make_network(ack_counter_start=5000)
    order = make_order(region="us-west-2", gpu_hours=2.5)
    result = settle(net, order, t0, provider="aethir")
    assert result.outcome == "acked" and result.error is None
    ack = result.ack
    parse_ack(ack)  # exactly the wire model: no extra or missing field
    assert verify_ack(ack, provider_keys["aethir"].public_key())
    assert ack["ack_id"] == "AETHIR-JOB-5001"
    assert ack["order_sha256"] == order_sha256(order) and ack["nonce"] == order["nonce"]
    assert (ack["provider_id"], ack["gpu_type"], ack["gpu_hours"], ack["rtt_ms"]) == (
        "aethir", "H100", 2.5, 12.5)
    assert ack["price_usd"] == round(2.5 * 2.05, 2)
    assert ack["issued_at"] == "2027-01-15T08:00:00.000000Z"
    assert net.capacity("aethir", t0) == 447.5


def test_ack_ids_are_unique_and_match_the_wire_pattern(make_network: MakeNetwork,
                                                       make_order: Any, t0: float) -> None:
    import re

    net = make_network(zero_delay=True)  # no random refusals
    ids = [settle(net, make_order(gpu_hours=0.1), t0, provider=p, gpu_type="RTX4090").ack["ack_id"]
           for p in ("akash", "render", "flux", "akash") for _ in range(5)]
    assert len(set(ids)) == len(ids)
    assert all(re.match(ACK_ID_PATTERN, i) for i in ids)
    assert ids[0].startswith("AKASH-JOB-") and ids[5].startswith("RENDER-JOB-")


def test_price_spike_is_in_the_ack_price(make_network: MakeNetwork, make_order: Any,
                                         t0: float) -> None:
    net = make_network()
    net.add_events([event("price_spike", "render", t0, 60, factor=2.5)], t0)
    result = settle(net, make_order(gpu_hours=3.0), t0 + 1, provider="render", gpu_type="L40S")
    assert result.ack["price_usd"] == round(3.0 * 0.95 * 2.5, 2)


def test_bad_ack_fails_verification_and_consumes_nothing(
    make_network: MakeNetwork, make_order: Any, provider_keys: dict[str, Ed25519PrivateKey],
    t0: float,
) -> None:
    net = make_network()
    net.add_events([event("bad_ack", "akash", t0, 60)], t0)
    result = settle(net, make_order(gpu_hours=5.0), t0 + 1)
    assert result.outcome == "bad_ack"
    parse_ack(result.ack)  # well-formed: only the signature is wrong
    assert not verify_ack(result.ack, provider_keys["akash"].public_key())
    assert net.capacity("akash", t0 + 1) == 400.0


def test_out_of_capacity_is_a_capacity_answer(make_network: MakeNetwork, make_order: Any,
                                              t0: float) -> None:
    net = make_network()
    assert settle(net, make_order(gpu_hours=399.0), t0).outcome == "acked"
    result = settle(net, make_order(gpu_hours=2.0), t0)
    assert (result.outcome, result.error, result.ack) == ("capacity", "capacity", None)


def test_error_rate_refuses(make_network: MakeNetwork, make_order: Any, t0: float,
                            tweak: Any) -> None:
    always = make_network(tweak("akash", error_rate=1.0))
    assert settle(always, make_order(), t0).error == "unavailable"
    assert settle(always, make_order(), t0).outcome == "refused"
    benchmark = make_network(tweak("akash", error_rate=1.0), zero_delay=True)
    assert settle(benchmark, make_order(), t0).outcome == "acked"


def test_error_rate_is_about_right(make_network: MakeNetwork, make_order: Any, t0: float,
                                   tweak: Any) -> None:
    net = make_network(tweak("akash", error_rate=0.2), seed=5, unlimited_capacity=True)
    order = make_order(gpu_hours=0.1)
    parsed = parse_order(order)
    outcomes = [net.settle("akash", order, parsed, "H100", rtt_ms=0, now=t0).outcome
                for _ in range(3000)]
    assert outcomes.count("refused") / len(outcomes) == pytest.approx(0.2, abs=0.03)


def test_an_outage_that_starts_during_the_delay_refuses(make_network: MakeNetwork,
                                                        make_order: Any, t0: float) -> None:
    net = make_network()
    assert net.arrive("akash", t0).outage_mode is None
    net.add_events([event("outage", "akash", t0 + 0.1, 60)], t0)
    assert settle(net, make_order(), t0 + 0.2).error == "outage"


def test_lookups(make_network: MakeNetwork, providers_file: Any) -> None:
    net = make_network()
    with pytest.raises(UnknownProviderError):
        net.provider("aws")
    flux = net.provider("flux")
    assert not_served(flux, "eu-west-1", "A100") is None
    assert "has no H100" in (not_served(flux, "eu-west-1", "H100") or "")
    assert "does not serve us-west-2" in (not_served(flux, "us-west-2", "A100") or "")
    with pytest.raises(ValueError, match="no signing key"):
        Network(providers_file, {}, start=0.0)
