"""Which orders of a window were "bad" for each comparison, read from the ledger's records.

Pure: it takes rows as ``aurora.ledger.Ledger.scan`` yields them (anything with ``ts``,
``kind``, ``tenant_id`` and ``data``) and returns ``plan.Observation``s. The bridge writes
one row per admitted or denied order: ``order`` (filled: route attempts, ``rtt_ms``,
``policy_ms``), ``drop`` (503 ``no_provider``: attempts, ``policy_ms``), ``decision``
(403 policy denial: ``policy_ms``). A row that does not bear on a comparison gives nothing
(a denial is not a fill failure; a drop has no RTT).

What the ledger cannot see: a 503 ``ledger`` answer leaves no row (nothing durable saw
the order), so from the ledger alone the 5xx and the 503 ratio are the same (drops); the
Prometheus counters per track (``treaty_dropped_requests_total{reason="ledger"}``) will
add the rest once the metrics carry a ``track`` label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from aurora.canary.plan import Observation


class Row(Protocol):
    @property
    def ts(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def tenant_id(self) -> str | None: ...
    @property
    def data(self) -> Any: ...


KINDS = ("order", "drop", "decision")
Bad = Callable[[str, Mapping[str, Any], float | None], bool | None]


def _attempts(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    route = data.get("route") or {}
    return list(route.get("attempts") or [])


def _fill(kind: str, data: Mapping[str, Any], _: float | None) -> bool | None:
    return {"order": False, "drop": True}.get(kind)


def _server_error(kind: str, data: Mapping[str, Any], _: float | None) -> bool | None:
    return kind == "drop"  # the only 5xx the ledger records is the 503 no_provider


def _failover(kind: str, data: Mapping[str, Any], _: float | None) -> bool | None:
    if kind == "decision":
        return None
    return any(a.get("outcome") != "acked" for a in _attempts(data))


def _rejected_ack(kind: str, data: Mapping[str, Any], _: float | None) -> bool | None:
    if kind == "decision":
        return None
    return any(a.get("outcome") == "bad_ack" for a in _attempts(data))


def _above(field: str, kinds: tuple[str, ...]) -> Bad:
    def bad(kind: str, data: Mapping[str, Any], threshold: float | None) -> bool | None:
        if kind not in kinds or data.get(field) is None:
            return None
        if threshold is None:
            raise ValueError(f"{field}: a latency comparison needs its threshold")
        return float(data[field]) > threshold
    return bad


BAD: dict[str, Bad] = {
    "fill": _fill,
    "http_5xx": _server_error,
    "http_503": _server_error,
    "failover": _failover,
    "rejected_ack": _rejected_ack,
    "rtt_p95": _above("rtt_ms", ("order",)),
    "policy_p99": _above("policy_ms", KINDS),
}
# the value a latency comparison's threshold is a quantile of
LATENCY_FIELD = {"rtt_p95": ("rtt_ms", 0.95), "policy_p99": ("policy_ms", 0.99)}


def observations(rows: Iterable[Row], comparison: str,
                 threshold: float | None = None) -> list[Observation]:
    """The rows' orders that bear on ``comparison``, each with its "bad" bit."""
    try:
        bad = BAD[comparison]
    except KeyError:
        raise ValueError(f"unknown comparison {comparison!r}") from None
    out = []
    for row in rows:
        if row.kind not in KINDS or not row.tenant_id or not isinstance(row.data, Mapping):
            continue
        bit = bad(row.kind, row.data, threshold)
        if bit is not None:
            out.append(Observation(row.ts, row.tenant_id, bit))
    return out


def latency_values(rows: Iterable[Row], comparison: str) -> list[float]:
    """The values a latency comparison's threshold is taken from (the previous window)."""
    field, _ = LATENCY_FIELD[comparison]
    kinds = ("order",) if comparison == "rtt_p95" else KINDS
    return [float(r.data[field]) for r in rows
            if r.kind in kinds and isinstance(r.data, Mapping) and r.data.get(field) is not None]
