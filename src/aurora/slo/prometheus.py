"""A thin client for Prometheus' HTTP API: instant and range queries, targets, rules.

Parsing is kept apart from the HTTP calls (``parse_*``) so that recorded API responses can
be read without a server. Prometheus down or unreachable is ``UnreachableError`` (exit 2);
an answer Prometheus refuses (a bad query) is ``PrometheusError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from aurora.errors import AuroraError, UnreachableError


class PrometheusError(AuroraError):
    """Prometheus answered, but with an error (bad query, bad parameters, not Prometheus)."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant-query result; ``value`` is ``None`` for NaN/±Inf."""

    labels: dict[str, str]
    value: float | None
    timestamp: float


@dataclass(frozen=True)
class RangeSeries:
    labels: dict[str, str]
    points: list[tuple[float, float | None]]


@dataclass(frozen=True)
class Target:
    job: str
    instance: str
    health: str  # "up", "down", "unknown"
    scrape_url: str
    last_error: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    group: str
    name: str
    kind: str  # "alerting" or "recording"
    health: str  # "ok", "err", "unknown"
    last_error: str
    state: str  # alerting rules: "inactive", "pending", "firing"


class QuerySource(Protocol):
    """What the report needs: instant queries at a given time."""

    def query(self, expr: str, at: float | None = None) -> list[Sample]: ...


class RangeSource(QuerySource, Protocol):
    """And range queries, for the series the report's charts draw."""

    def query_range(self, expr: str, start: float, end: float, step: float
                    ) -> list[RangeSeries]: ...


def _number(text: str) -> float | None:
    value = float(text)  # Prometheus writes "NaN", "+Inf", "-Inf" too
    return None if math.isnan(value) or math.isinf(value) else value


def _data(document: Any) -> Any:
    if not isinstance(document, dict) or "status" not in document:
        raise PrometheusError("the answer is not a Prometheus API response")
    if document["status"] != "success":
        raise PrometheusError(f"{document.get('errorType', 'error')}: "
                              f"{document.get('error', 'no detail')}")
    return document.get("data")


def parse_query(document: Any) -> list[Sample]:
    """The samples of an ``/api/v1/query`` answer (vector or scalar)."""
    data = _data(document)
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector":
        return [Sample(dict(item["metric"]), _number(item["value"][1]), float(item["value"][0]))
                for item in result]
    if kind == "scalar":
        return [Sample({}, _number(result[1]), float(result[0]))]
    raise PrometheusError(f"unexpected result type {kind!r} for an instant query")


def parse_query_range(document: Any) -> list[RangeSeries]:
    data = _data(document)
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"unexpected result type {data.get('resultType')!r} "
                              "for a range query")
    return [RangeSeries(dict(item["metric"]),
                        [(float(t), _number(v)) for t, v in item["values"]])
            for item in data["result"]]


def parse_targets(document: Any) -> list[Target]:
    return [Target(job=t.get("labels", {}).get("job", t.get("scrapePool", "")),
                   instance=t.get("labels", {}).get("instance", ""),
                   health=t.get("health", "unknown"), scrape_url=t.get("scrapeUrl", ""),
                   last_error=t.get("lastError", ""), labels=dict(t.get("labels", {})))
            for t in _data(document).get("activeTargets", [])]


def parse_rules(document: Any) -> list[Rule]:
    return [Rule(group=g["name"], name=r["name"], kind=r.get("type", ""),
                 health=r.get("health", "unknown"), last_error=r.get("lastError", ""),
                 state=r.get("state", ""))
            for g in _data(document).get("groups", []) for r in g.get("rules", [])]


def _timestamp(at: float | datetime | None) -> str | None:
    if at is None:
        return None
    return f"{at.timestamp() if isinstance(at, datetime) else at:.3f}"


class PrometheusClient:
    """``with PrometheusClient(url) as prom: prom.query("up")``."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"Prometheus at {self.base_url} is unreachable "
                                   f"({type(exc).__name__}: {exc or 'no answer'})") from None
        try:
            document = response.json()
        except ValueError:
            if response.status_code >= 500:  # starting up, shutting down, or a proxy's error
                raise UnreachableError(f"Prometheus at {self.base_url} is not serving "
                                       f"(HTTP {response.status_code})") from None
            raise PrometheusError(f"{self.base_url}{path} answered HTTP {response.status_code} "
                                  "without JSON: is this Prometheus?") from None
        return document

    def raw_query(self, expr: str, at: float | datetime | None = None) -> Any:
        """The decoded JSON answer of ``/api/v1/query`` (fixtures record these)."""
        params = {"query": expr}
        if (stamp := _timestamp(at)) is not None:
            params["time"] = stamp
        return self._get("/api/v1/query", params)

    def query(self, expr: str, at: float | datetime | None = None) -> list[Sample]:
        try:
            return parse_query(self.raw_query(expr, at))
        except PrometheusError as exc:
            raise PrometheusError(f"query {expr!r}: {exc}") from None

    def raw_query_range(self, expr: str, start: float | datetime, end: float | datetime,
                        step: float) -> Any:
        """The decoded JSON answer of ``/api/v1/query_range`` (fixtures record these)."""
        params = {"query": expr, "start": _timestamp(start) or "", "end": _timestamp(end) or "",
                  "step": f"{step}"}
        return self._get("/api/v1/query_range", params)

    def query_range(self, expr: str, start: float | datetime, end: float | datetime,
                    step: float) -> list[RangeSeries]:
        try:
            return parse_query_range(self.raw_query_range(expr, start, end, step))
        except PrometheusError as exc:
            raise PrometheusError(f"range query {expr!r}: {exc}") from None

    def targets(self) -> list[Target]:
        return parse_targets(self._get("/api/v1/targets", {"state": "active"}))

    def rules(self) -> list[Rule]:
        return parse_rules(self._get("/api/v1/rules"))

    def ready(self) -> bool:
        try:
            return self._http.get("/-/ready").is_success
        except httpx.HTTPError:
            return False
