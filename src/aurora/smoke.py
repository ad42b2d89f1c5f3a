"""The morning smoke test (`make smoke-e2e`): one signed order end to end, and the guards.

Starts the providers and the bridge if they are not running (and stops only
those it started), then checks, printing PASS/FAIL per step: a signed order
for tenant-42 is filled; its ACK is well formed, signed by the provider and
commits to the order; its ledger receipt proves inclusion under a checkpoint
signed by the ledger key; a replayed nonce gets 409 and a tampered order
401; a short burst of tenant traffic is filled; both metrics endpoints carry
every metric the seed names.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from aurora import metricnames as names
from aurora import procs
from aurora.config import StackConfig, load_stack, load_workloads
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.keys import load_private_key, load_public_key
from aurora.provenance import ack_matches_order
from aurora.stack import UpOptions, services
from aurora.treaty import load_treaty
from aurora.wire import SchemaError, new_order, parse_ack, sign_order, verify_ack

SMOKE_TENANT = "tenant-42"
TREATY_METRICS = (names.FILL_RATE, names.bucket(names.FILL_RATE), names.bucket(names.RTT_MS),
                  names.PROVENANCE_COVERAGE, names.bucket(names.POLICY_DECISION_MS),
                  names.total(names.DROPPED_REQUESTS), names.total(names.REQUESTS),
                  names.total(names.FAILOVER_EVENTS))
PROVIDER_METRICS = (names.PROVIDER_ACTIVE, names.PROVIDER_CAPACITY, names.PROVIDER_LATENCY,
                    names.PROVIDER_PRICE, names.PROVIDER_REPUTATION)
BURST_ORDERS = 20
BURST_RATE = 10.0
MIN_BURST_FILL = 0.8


class StepFailed(AuroraError):
    pass


@dataclass
class SmokeRun:
    home: Home
    stack: StackConfig
    emit: Callable[[str], None]
    results: list[tuple[str, bool, str]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)

    def step(self, name: str, check: Callable[[], str]) -> bool:
        t0 = time.perf_counter()
        try:
            detail = check()
            ok = True
        except StepFailed as exc:
            detail, ok = str(exc), False
        except (httpx.HTTPError, OSError) as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        elapsed = (time.perf_counter() - t0) * 1000
        self.results.append((name, ok, detail))
        self.emit(f"{'PASS' if ok else 'FAIL'}  {name:<34} {detail} ({elapsed:.0f} ms)")
        return ok


def _post(client: httpx.Client, stack: StackConfig, order: dict[str, Any]) -> httpx.Response:
    return client.post(f"{stack.bridge_url}/aurora/order", json=order, timeout=10.0)


def _metric_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


def run_smoke(home: Home, emit: Callable[[str], None] = print) -> bool:
    from aurora.ledger import LedgerError, Receipt
    from aurora.ledger.files import load_verifier

    stack = load_stack(home)
    run = SmokeRun(home, stack, emit)
    treaty = load_treaty(home)
    emit(f"aurora smoke-e2e  {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}  "
         f"bridge {stack.bridge_url}")

    def stack_up() -> str:
        wanted = [s for s in services(UpOptions()) if s.name in ("providers", "bridge")]
        for service in wanted:
            if procs.running(home, service.name) is None:
                procs.spawn(home, service.name, service.argv(home, stack))
                run.started.append(service.name)
            url = service.ready_url(stack)
            assert url is not None
            try:
                procs.wait_http(url, timeout=30, pid_check=(home, service.name))
            except Exception as exc:
                raise StepFailed(str(exc)) from None
        return f"started {', '.join(run.started)}" if run.started else "already running"

    if not run.step("stack answers (providers, bridge)", stack_up):
        return _finish(run)

    key = load_private_key(home.tenant_key(SMOKE_TENANT))
    order = sign_order(new_order(treaty_id=treaty.treaty_id, tenant_id=SMOKE_TENANT,
                                 region=treaty.regions[0], gpu_hours=0.1), key)
    answer: dict[str, Any] = {}
    client = httpx.Client()

    def submit() -> str:
        response = _post(client, stack, order)
        if response.status_code != 200:
            raise StepFailed(f"HTTP {response.status_code}: {response.text[:200]}")
        answer.update(response.json())
        return f"{answer.get('ack_id')} from {answer.get('provider_id')}"

    def ack_format() -> str:
        ack = {k: v for k, v in answer.items() if k != "receipt"}
        try:
            parse_ack(ack)
        except SchemaError as exc:
            raise StepFailed(str(exc)) from None
        provider = ack["provider_id"]
        if not verify_ack(ack, load_public_key(home.provider_pub(provider))):
            raise StepFailed(f"signature of {provider} does not verify")
        if (problem := ack_matches_order(ack, order)) is not None:
            raise StepFailed(problem)
        return f"signed by {provider}, commits to the order"

    def ledger_inclusion() -> str:
        verifier = load_verifier(home)
        try:
            receipt = Receipt.from_json(answer["receipt"])
            receipt.verify([verifier], stack.ledger_origin)
        except (LedgerError, KeyError, TypeError) as exc:
            raise StepFailed(f"receipt does not verify: {exc}") from None
        if receipt.entry.get("data", {}).get("ack") != {k: v for k, v in answer.items()
                                                         if k != "receipt"}:
            raise StepFailed("the ledger entry does not hold this ACK")
        return (f"leaf {receipt.leaf_index} of {receipt.tree_size} under a checkpoint "
                "signed by the ledger key")

    def replay() -> str:
        response = _post(client, stack, order)
        if response.status_code != 409 or response.json().get("error") != "replay":
            raise StepFailed(f"expected 409 replay, got {response.status_code}")
        return "409 replay"

    def tamper() -> str:
        forged = copy.deepcopy(order)
        forged["gpu_hours"] = 99.0
        response = _post(client, stack, forged)
        if response.status_code != 401 or response.json().get("error") != "signature":
            raise StepFailed(f"expected 401 signature, got {response.status_code}")
        return "401 signature"

    def burst() -> str:
        from aurora.traffic.run import run_traffic

        tenants = [w.tenant for w in load_workloads(home).tenants if w.tenant != "grey-miner"]
        stats = asyncio.run(run_traffic(home, rate=BURST_RATE, count=BURST_ORDERS, pace=False,
                                        tenants=tenants))
        filled, dropped = stats.statuses.get("200", 0), stats.statuses.get("503", 0)
        unexpected = {s: n for s, n in stats.statuses.items() if s not in ("200", "403", "503")}
        if unexpected:
            raise StepFailed(f"unexpected answers {unexpected}")
        if filled + dropped == 0:
            raise StepFailed(f"no order admitted: {dict(stats.statuses)}")
        if filled / (filled + dropped) < MIN_BURST_FILL:
            raise StepFailed(f"fill {filled}/{filled + dropped} below {MIN_BURST_FILL:.0%}")
        return f"{stats.sent} sent: {dict(stats.statuses)}"

    def endpoint(url: str, names: tuple[str, ...], wait: float) -> Callable[[], str]:
        def check() -> str:
            deadline = time.monotonic() + wait
            while True:
                missing = sorted(set(names) - _metric_names(client.get(url, timeout=5).text))
                if not missing:
                    return f"all {len(names)} metrics present"
                if time.monotonic() > deadline:
                    raise StepFailed(f"missing {', '.join(missing)}")
                time.sleep(1.0)
        return check

    try:
        if run.step("signed order for tenant-42", submit):
            run.step("ACK format and provider signature", ack_format)
            run.step("ledger inclusion proof", ledger_inclusion)
        run.step("replayed nonce refused", replay)
        run.step("tampered order refused", tamper)
        run.step(f"burst of {BURST_ORDERS} orders", burst)
        # provenance coverage appears once a signed checkpoint covers the new entries
        run.step(f"treaty metrics :{stack.metrics_port}",
                 endpoint(stack.metrics_url, TREATY_METRICS, wait=20.0))
        run.step(f"simulator metrics :{stack.providers_port}",
                 endpoint(stack.url(stack.providers_port, "/metrics"), PROVIDER_METRICS, wait=5.0))
    finally:
        client.close()
    return _finish(run)


def _finish(run: SmokeRun) -> bool:
    for name in reversed(run.started):
        procs.stop(run.home, name)
    if run.started:
        run.emit(f"stopped what the smoke test started: {', '.join(run.started)}")
    failed = [name for name, ok, _ in run.results if not ok]
    run.emit(f"smoke-e2e: {'PASS' if not failed else 'FAIL'} "
             f"({len(run.results) - len(failed)}/{len(run.results)} steps passed)")
    return not failed
