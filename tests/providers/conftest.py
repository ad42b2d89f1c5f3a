"""Fixtures for the provider network: configs, in-memory keys, networks, signed orders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aurora.config import ProvidersFile, Scenario, load_providers, load_scenarios
from aurora.home import Home
from aurora.keys import Ed25519PrivateKey
from aurora.providers.sim import Network
from aurora.wire import new_order, sign_order

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0  # a fixed "now" for pure tests: POSIX seconds


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def t0() -> float:
    return T0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def providers_file() -> ProvidersFile:
    return load_providers(Home(REPO))


@pytest.fixture(scope="session")
def scenarios() -> dict[str, Scenario]:
    return load_scenarios(Home(REPO)).scenarios


@pytest.fixture(scope="session")
def provider_keys(providers_file: ProvidersFile) -> dict[str, Ed25519PrivateKey]:
    return {p.id: Ed25519PrivateKey.generate() for p in providers_file.providers}


@pytest.fixture(scope="session")
def tenant_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def make_network(
    providers_file: ProvidersFile, provider_keys: dict[str, Ed25519PrivateKey]
) -> Callable[..., Network]:
    def make(config: ProvidersFile | None = None, **options: Any) -> Network:
        options.setdefault("start", T0)
        options.setdefault("seed", 1)
        return Network(config or providers_file, provider_keys, **options)

    return make


@pytest.fixture
def make_order(tenant_key: Ed25519PrivateKey) -> Callable[..., dict[str, Any]]:
    def make(region: str = "eu-west-1", gpu_hours: float = 1.0,
             key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
        fields = new_order(treaty_id="AURORA-AKASH-001", tenant_id="tenant-42", region=region,
                           gpu_hours=gpu_hours)
        return sign_order(fields, key or tenant_key)

    return make


@pytest.fixture
def tweak(providers_file: ProvidersFile) -> Callable[..., ProvidersFile]:
    """A copy of the providers config with one provider's fields changed."""
    def change(provider_id: str, **changes: Any) -> ProvidersFile:
        providers = [p.model_copy(update=changes) if p.id == provider_id else p
                     for p in providers_file.providers]
        return providers_file.model_copy(update={"providers": providers})

    return change
