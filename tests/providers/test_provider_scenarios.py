"""Fault events: validation, scheduling of named scenarios, the event book."""

from __future__ import annotations

from typing import Any

import pytest

from aurora.config import Scenario, ScenarioEvent
from aurora.providers.scenarios import (
    EventBook,
    EventError,
    FaultEvent,
    check_scenarios,
    event_from_request,
    make_event,
    schedule_scenario,
)
from aurora.wire import rfc3339_at

PROVIDERS = ["akash", "ionet", "render", "flux", "aethir", "vastai", "salad"]


def request(document: Any, now: float = 1000.0) -> FaultEvent:
    return event_from_request(document, event_id="ev-1", now=now, providers=PROVIDERS)


def test_outage_defaults_to_timeout_and_lasts_for() -> None:
    event = request({"type": "outage", "provider": "akash", "for": "5m"})
    assert (event.type, event.provider, event.mode) == ("outage", "akash", "timeout")
    assert (event.starts_at, event.ends_at) == (1000.0, 1300.0)
    assert event.factor is None and event.value is None


def test_for_and_at_accept_numbers_of_seconds() -> None:
    event = request({"type": "bad_ack", "provider": "salad", "for": 90, "at": "1m"})
    assert (event.starts_at, event.ends_at) == (1060.0, 1150.0)


@pytest.mark.parametrize(("document", "field"), [
    ([], "body"),
    ({"type": "outage", "provider": "akash"}, "for"),
    ({"provider": "akash", "for": "1m"}, "type"),
    ({"type": "meteor", "provider": "akash", "for": "1m"}, "type"),
    ({"type": "outage", "provider": "aws", "for": "1m"}, "provider"),
    ({"type": "outage", "provider": "akash", "for": "soon"}, "for"),
    ({"type": "outage", "provider": "akash", "for": "0s"}, "for"),
    ({"type": "outage", "provider": "akash", "for": -5}, "for"),
    ({"type": "outage", "provider": "akash", "for": 1e300}, "for"),
    ({"type": "outage", "provider": "akash", "for": True}, "for"),
    ({"type": "outage", "provider": "akash", "for": "1m", "at": "-1m"}, "at"),
    ({"type": "outage", "provider": "akash", "for": "1m", "mode": "explode"}, "mode"),
    ({"type": "outage", "provider": "akash", "for": "1m", "mode": 1}, "mode"),
    ({"type": "outage", "provider": "akash", "for": "1m", "factor": 2}, "factor"),
    ({"type": "outage", "provider": "akash", "for": "1m", "colour": "red"}, "colour"),
    ({"type": "latency_spike", "provider": "akash", "for": "1m"}, "factor"),
    ({"type": "latency_spike", "provider": "akash", "for": "1m", "factor": 0}, "factor"),
    ({"type": "latency_spike", "provider": "akash", "for": "1m", "factor": "3"}, "factor"),
    ({"type": "price_spike", "provider": "akash", "for": "1m", "factor": True}, "factor"),
    ({"type": "capacity_surge", "provider": "akash", "for": "1m", "factor": 1e9}, "factor"),
    ({"type": "price_spike", "provider": "akash", "for": "1m", "factor": 2, "mode": "refuse"},
     "mode"),
    ({"type": "reputation_drop", "provider": "akash", "for": "1m"}, "value"),
    ({"type": "reputation_drop", "provider": "akash", "for": "1m", "value": 101}, "value"),
    ({"type": "bad_ack", "provider": "akash", "for": "1m", "value": 10}, "value"),
])
def test_bad_requests_name_the_field(document: Any, field: str) -> None:
    with pytest.raises(EventError, match=f"^{field}:"):
        request(document)


def test_each_type_carries_only_its_parameter() -> None:
    spike = request({"type": "latency_spike", "provider": "ionet", "for": "1m", "factor": 3})
    drop = request({"type": "reputation_drop", "provider": "flux", "for": "1m", "value": 40})
    assert (spike.factor, spike.value, spike.mode) == (3.0, None, None)
    assert (drop.factor, drop.value, drop.mode) == (None, 40.0, None)
    assert set(spike.to_json(1000.0)) == {"id", "type", "provider", "starts_at", "ends_at",
                                          "status", "source", "factor"}


def test_status_follows_time() -> None:
    event = make_event(event_id="ev-9", type="bad_ack", provider="akash", start=100.0,
                       duration=10.0)
    assert [event.to_json(t)["status"] for t in (99.9, 100.0, 109.9, 110.0)] == [
        "scheduled", "active", "active", "expired"]
    assert event.to_json(0)["starts_at"] == rfc3339_at(100.0) == "1970-01-01T00:01:40.000000Z"


def test_demo_scenario_is_scheduled_relative_to_start(scenarios: dict[str, Scenario]) -> None:
    ids = iter(f"ev-{n}" for n in range(1, 100))
    events = schedule_scenario("demo", scenarios["demo"], start=5000.0, providers=PROVIDERS,
                               ids=ids)
    assert [e.type for e in events] == ["latency_spike", "outage", "price_spike",
                                        "capacity_surge", "reputation_drop", "bad_ack"]
    first, outage = events[0], events[1]
    assert (first.provider, first.starts_at, first.ends_at, first.factor) == (
        "ionet", 5120.0, 5300.0, 3.0)
    assert (outage.mode, outage.starts_at) == ("timeout", 5360.0)
    assert all(e.source == "scenario:demo" for e in events)
    assert len({e.id for e in events}) == len(events)


def test_every_shipped_scenario_is_valid(scenarios: dict[str, Scenario]) -> None:
    check_scenarios(scenarios, PROVIDERS)


def test_a_scenario_with_an_unknown_provider_or_missing_factor_is_refused() -> None:
    stray = Scenario(events=[ScenarioEvent(at="0s", type="outage", provider="nobody",
                                           duration="1m")])
    with pytest.raises(EventError, match="scenario 'x' event 0: unknown provider"):
        check_scenarios({"x": stray}, PROVIDERS)
    no_factor = Scenario(events=[ScenarioEvent(at="0s", type="price_spike", provider="akash",
                                               duration="1m")])
    with pytest.raises(EventError, match="event 0: factor: price_spike needs a factor"):
        check_scenarios({"y": no_factor}, PROVIDERS)


def test_event_book_add_find_remove_clear_expire() -> None:
    book = EventBook()
    ids = book.new_ids()
    a = make_event(event_id=next(ids), type="bad_ack", provider="akash", start=0, duration=10)
    b = make_event(event_id=next(ids), type="outage", provider="akash", start=5, duration=100)
    c = make_event(event_id=book.next_id(), type="outage", provider="flux", start=1, duration=1)
    assert [a.id, b.id, c.id] == ["ev-1", "ev-2", "ev-3"]
    book.add([b, a, c])
    assert book.all() == [a, c, b]  # by start time
    assert book.of("akash") == [b, a] and book.of("salad") == []
    book.forget_expired(now=10.0)
    assert book.all() == [b]
    assert book.find("ev-2") is b and book.remove("ev-2") is b and book.remove("ev-2") is None
    book.add([a, c])
    assert book.clear() == 2 and book.all() == []
