"""From the ledger's own order records to each comparison's matched pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from aurora.bridge.service import Attempt
from aurora.canary.analysis import COMPARISON, Decision, Thresholds, decide, pair_outcomes
from aurora.canary.observe import latency_values, observations
from aurora.canary.plan import bucket_of, matched_sequences
from aurora.home import Home
from aurora.ledger import Entry, Ledger

TREATY = "AURORA-AKASH-001"


def _route(*outcomes: str) -> dict[str, object]:
    return {"candidates": ["akash", "ionet", "render"][: len(outcomes)],
            "attempts": [Attempt("akash", "H100", o, 200.0).to_json() for o in outcomes]}


def _entries(tenant: str, i: int, bad_canary: bool) -> list[Entry]:
    """Orders as the bridge records them; a "bad" tenant's orders drop or fail over."""
    if bad_canary:
        return [Entry("drop", {"order": {}, "route": _route("timeout", "bad_ack"),
                               "reason": "every candidate failed", "policy_ms": 9.0},
                      TREATY, tenant, f"n-{tenant}-{i}")]
    return [Entry("order", {"order": {}, "ack": {}, "route": _route("acked"),
                            "rtt_ms": 250.0 + i, "policy_ms": 0.5}, TREATY, tenant,
                  f"n-{tenant}-{i}"),
            Entry("decision", {"order": {}, "decision": {}, "policy_ms": 0.4}, TREATY, tenant,
                  f"d-{tenant}-{i}")]


def test_a_canary_whose_orders_drop_fails_from_the_ledger_alone(home: Path) -> None:
    tenants = [f"tenant-{i:02d}" for i in range(60)]
    ledger = Ledger.open(Home(home))
    try:
        pending = [ledger.submit(entry) for i in range(60) for t in tenants
                   for entry in _entries(t, i, bad_canary=bucket_of(t) < 10)]
        for future in pending:
            future.result()
        ledger.append(Entry("note", {"text": "not an order"}, TREATY))
        rows = list(ledger.scan())
    finally:
        ledger.close()

    fill = observations(rows, "fill")
    assert len(fill) == 60 * 60  # decisions (403) are not fill events, the note is nothing
    canary, stable = matched_sequences(fill, 10)
    counts = pair_outcomes(canary, stable)
    assert counts.pairs == min(len(canary), len(stable)) > 0
    assert decide(COMPARISON["fill"], counts, Thresholds.of()).decision is Decision.FAIL

    for key in ("failover", "rejected_ack", "http_503"):
        bits = {(o.tenant_id, o.bad) for o in observations(rows, key)}
        assert all(bad == (bucket_of(t) < 10) for t, bad in bits), key

    threshold = max(latency_values(rows, "rtt_p95"))
    rtt = observations(rows, "rtt_p95", threshold)
    assert rtt and not any(o.bad for o in rtt)  # drops have no RTT: only filled orders count
    assert all(bucket_of(o.tenant_id) >= 10 for o in rtt)
    policy = observations(rows, "policy_p99", 1.0)
    assert {o.bad for o in policy if bucket_of(o.tenant_id) < 10} == {True}
    assert {o.bad for o in policy if bucket_of(o.tenant_id) >= 10} == {False}


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown comparison"):
        observations([], "latency")
    from aurora.ledger import LedgerRow

    row = LedgerRow(0, "2026-12-01T00:00:00Z", "order", TREATY, "tenant-1", "n",
                    b'{"data":{"rtt_ms":300.0}}', b"")
    with pytest.raises(ValueError, match="threshold"):
        observations([row], "rtt_p95")
