"""The project's configuration files, validated.

``config/stack.json`` (ports), ``config/tenants.json``, ``config/providers.json``,
``config/workloads.json`` and ``config/scenarios.json``. A missing or invalid
file is a ``ConfigError`` naming the file and the first bad field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from aurora.durations import parse_duration
from aurora.errors import ConfigError
from aurora.home import Home
from aurora.keys import Ed25519PublicKey, load_public_key
from aurora.validation import first_error
from aurora.wire import PROVIDER_ID_PATTERN, REGION_PATTERN, TENANT_ID_PATTERN

Model = TypeVar("Model", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def load_json_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file is missing") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None


def load_model(path: Path, model: type[Model]) -> Model:
    document = load_json_file(path)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {first_error(exc)}") from None


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, Field(description="e.g. 90s, 15m, 1h")]


# --- stack.json ---------------------------------------------------------------------------

class StackConfig(_Strict):
    """Where the services listen. Every field can be overridden by ``AURORA_<FIELD>``."""

    bind: str = "127.0.0.1"
    bridge_port: int = 8080
    metrics_port: int = 9109
    providers_port: int = 9110
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    incidents_port: int = 9111
    provider_timeout_ms: float = 1500.0
    market_refresh_ms: float = 1000.0
    fill_window: Duration = "5m"
    fill_bucket_every: Duration = "1m"
    provenance_window: Duration = "1h"
    backup_every: Duration = "15m"
    traffic_rate: float | None = None
    # Replicas (`aurora up --replicas N`, PostgreSQL mode): replica 1 keeps metrics_port,
    # replica k >= 2 serves its metrics on replica_metrics_port + k - 2.
    replica_metrics_port: int = 9120
    # The canary split (`aurora canary start`): HAProxy takes bridge_port; stable's replicas
    # take orders on split_stable_port, the candidate's on split_canary_port; a group's
    # replica k serves metrics on split_metrics_port + k - 1 (stable) or + 8 + k - 1
    # (canary); the canary controller's own metrics are on canary_metrics_port.
    split_stable_port: int = 8081
    split_canary_port: int = 8082
    split_metrics_port: int = 9130
    canary_metrics_port: int = 9129
    # how long a replica's claim on a nonce and its GPU-hours holds before any replica may
    # resolve it against the ledger (a replica that died holding it)
    treaty_lease: Duration = "60s"
    # the signed-note key name: no spaces, no "+"
    ledger_origin: Annotated[str, StringConstraints(pattern=r"^[^\s+]+$")] = (
        "aurora.local/remembrancer")
    # where the ledger (and, with replicas, the treaty state) lives: "" = the SQLite file
    # ops/data/remembrancer.db (the embedded default); "postgresql://..." = PostgreSQL
    database_url: Annotated[str, StringConstraints(
        pattern=r"^(|postgres(ql)?://\S*)$")] = ""

    _durations = field_validator("fill_window", "fill_bucket_every", "provenance_window",
                                 "backup_every", "treaty_lease")(_check_duration)

    def url(self, port: int, path: str = "") -> str:
        return f"http://{self.bind}:{port}{path}"

    def replica_metrics(self, replica: int) -> int:
        """The metrics port of bridge replica ``replica`` (1-based)."""
        return self.metrics_port if replica <= 1 else self.replica_metrics_port + replica - 2

    @property
    def bridge_url(self) -> str:
        return self.url(self.bridge_port)

    @property
    def metrics_url(self) -> str:
        return self.url(self.metrics_port, "/metrics")

    @property
    def providers_url(self) -> str:
        return self.url(self.providers_port)

    @property
    def prometheus_url(self) -> str:
        return self.url(self.prometheus_port)

    @property
    def alertmanager_url(self) -> str:
        return self.url(self.alertmanager_port)

    @property
    def incidents_url(self) -> str:
        return self.url(self.incidents_port)


def load_stack(home: Home) -> StackConfig:
    path = home.config_dir / "stack.json"
    base: dict[str, Any] = load_json_file(path) if path.exists() else {}
    for name in StackConfig.model_fields:
        env = os.environ.get(f"AURORA_{name.upper()}")
        if env is not None:
            base[name] = env
    try:
        return StackConfig.model_validate(base)
    except ValidationError as exc:
        raise ConfigError(f"{path} (or AURORA_* env): {first_error(exc)}") from None


# --- tenants.json -------------------------------------------------------------------------

class RoutingWeights(_Strict):
    price: float = Field(0.25, ge=0)
    latency: float = Field(0.35, ge=0)
    reputation: float = Field(0.25, ge=0)
    availability: float = Field(0.15, ge=0)


class RoutingPrefs(_Strict):
    """How the router picks providers for this tenant's orders."""

    gpu_types: list[str] | None = None
    max_price_usd_per_gpu_hour: float | None = Field(None, gt=0)
    max_latency_ms: float | None = Field(None, gt=0)
    min_provider_reputation: float = Field(0, ge=0, le=100)
    weights: RoutingWeights = RoutingWeights()


class TenantConfig(_Strict):
    id: Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN)]
    name: str = ""
    reputation: float = Field(ge=0, le=100)
    public_key: str | None = None
    routing: RoutingPrefs = RoutingPrefs()

    def public_key_path(self, home: Home) -> Path:
        return home.root / self.public_key if self.public_key else home.tenant_pub(self.id)


class TenantsFile(_Strict):
    tenants: list[TenantConfig]

    @field_validator("tenants")
    @classmethod
    def _unique(cls, tenants: list[TenantConfig]) -> list[TenantConfig]:
        ids = [t.id for t in tenants]
        if len(set(ids)) != len(ids):
            raise ValueError("tenant ids must be unique")
        return tenants


def load_tenants(home: Home) -> list[TenantConfig]:
    return load_model(home.config_dir / "tenants.json", TenantsFile).tenants


# --- providers.json -----------------------------------------------------------------------

class Credit(_Strict):
    symbol: str
    per_gpu_hour: float = Field(gt=0)


class ProviderConfig(_Strict):
    id: Annotated[str, StringConstraints(pattern=PROVIDER_ID_PATTERN)]
    name: str
    ack_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]*$")]
    regions: list[Annotated[str, StringConstraints(pattern=REGION_PATTERN)]] = Field(min_length=1)
    gpu_types: list[str] = Field(min_length=1)
    price_usd_per_gpu_hour: float = Field(gt=0)
    credit: Credit
    base_latency_ms: float = Field(gt=0)
    latency_sigma: float = Field(0.15, ge=0, le=2)
    capacity_gpu_hours: float = Field(gt=0)
    capacity_per_step: float = Field(gt=0)
    reputation: float = Field(ge=0, le=100)
    error_rate: float = Field(0.0, ge=0, le=1)


class ProvidersFile(_Strict):
    step_seconds: float = Field(1.0, gt=0)
    providers: list[ProviderConfig] = Field(min_length=1)

    @field_validator("providers")
    @classmethod
    def _unique(cls, providers: list[ProviderConfig]) -> list[ProviderConfig]:
        ids = [p.id for p in providers]
        if len(set(ids)) != len(ids):
            raise ValueError("provider ids must be unique")
        return providers


def load_providers(home: Home) -> ProvidersFile:
    return load_model(home.config_dir / "providers.json", ProvidersFile)


# --- workloads.json -----------------------------------------------------------------------

class WorkloadKind(_Strict):
    name: str
    weight: float = Field(gt=0)
    gpu_hours_min: float = Field(ge=0.1)
    gpu_hours_max: float = Field(ge=0.1)


class TenantWorkload(_Strict):
    tenant: Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN)]
    regions: list[Annotated[str, StringConstraints(pattern=REGION_PATTERN)]] = Field(min_length=1)
    share: float = Field(gt=0, description="this tenant's share of the traffic rate")
    daily_budget_gpu_hours: float = Field(gt=0)
    mix: list[WorkloadKind] = Field(min_length=1)


class WorkloadsFile(_Strict):
    default_rate_per_s: float = Field(gt=0)
    order_ttl: Duration = "5m"
    tenants: list[TenantWorkload] = Field(min_length=1)

    _ttl = field_validator("order_ttl")(_check_duration)


def load_workloads(home: Home) -> WorkloadsFile:
    return load_model(home.config_dir / "workloads.json", WorkloadsFile)


# --- scenarios.json -----------------------------------------------------------------------

EventType = Literal[
    "outage", "latency_spike", "price_spike", "capacity_surge", "reputation_drop", "bad_ack"
]


class ScenarioEvent(_Strict):
    at: Duration
    type: EventType
    provider: Annotated[str, StringConstraints(pattern=PROVIDER_ID_PATTERN)]
    duration: Duration = Field(alias="for")
    factor: float | None = Field(None, gt=0)
    value: float | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    _durations = field_validator("at", "duration")(_check_duration)


class Scenario(_Strict):
    description: str = ""
    events: list[ScenarioEvent] = []


class ScenariosFile(_Strict):
    scenarios: dict[str, Scenario]


def load_scenarios(home: Home) -> ScenariosFile:
    return load_model(home.config_dir / "scenarios.json", ScenariosFile)


def load_order_keys(home: Home) -> tuple[dict[str, Ed25519PublicKey], dict[str, Ed25519PublicKey]]:
    """The tenants' and the providers' public keys on file, by id: what an order's and an
    ACK's signatures are checked with (the bridge, the auditor, ``verify-proof``)."""
    tenants = {t.id: load_public_key(t.public_key_path(home)) for t in load_tenants(home)}
    providers = {p.id: load_public_key(home.provider_pub(p.id))
                 for p in load_providers(home).providers}
    return tenants, providers
