"""Run the bridge: the order API on ``bridge_port`` and treaty metrics on ``metrics_port``."""

from __future__ import annotations

import logging
import os

import prometheus_client
import uvicorn

from aurora.bridge.app import create_app
from aurora.bridge.metrics import TreatyMetrics
from aurora.bridge.openapi import openapi_document
from aurora.bridge.provenance import ProvenanceAuditor
from aurora.bridge.service import BridgeService
from aurora.config import load_order_keys, load_stack, load_tenants
from aurora.durations import parse_duration
from aurora.gc_tuning import quiet_gc
from aurora.home import Home
from aurora.ledger import Ledger
from aurora.treaty import load_treaty

log = logging.getLogger("aurora.bridge")
CRASH_AFTER_ACK_ENV = "AURORA_FAULT_CRASH_AFTER_ACK"  # tests only: see BridgeService


def build_service(home: Home, ledger: Ledger) -> BridgeService:
    """Load treaty, tenants and keys (any problem is a start-up ConfigError)."""
    stack = load_stack(home)
    treaty = load_treaty(home)
    tenants = {t.id: t for t in load_tenants(home)}
    tenant_keys, provider_keys = load_order_keys(home)
    metrics = TreatyMetrics(treaty.treaty_id, fill_window_s=parse_duration(stack.fill_window))
    auditor = ProvenanceAuditor(home, tenant_keys, provider_keys,
                                window_s=parse_duration(stack.provenance_window))
    auditor.register(metrics.registry, treaty.treaty_id)
    return BridgeService(stack=stack, treaty=treaty, tenants=tenants, tenant_keys=tenant_keys,
                         provider_keys=provider_keys, ledger=ledger, metrics=metrics,
                         auditor=auditor,
                         crash_after_ack=os.environ.get(CRASH_AFTER_ACK_ENV) == "1")


def serve(home: Home) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    stack = load_stack(home)
    ledger = Ledger.open(home)
    try:
        service = build_service(home, ledger)
        replayed = service.restore_policy_state()
        if service.auditor is not None:
            service.auditor.seed_from_ledger(ledger)
        log.info("policy state rebuilt from %d ledger records; %d live nonces",
                 replayed, service.policy.live_nonces)
        metrics_server, metrics_thread = prometheus_client.start_http_server(
            stack.metrics_port, addr=stack.bind, registry=service.metrics.registry)
        openapi = openapi_document(home.order_schema_file)
        config = uvicorn.Config(
            create_app(service, openapi), host=stack.bind, port=stack.bridge_port,
            loop="uvloop", http="httptools", access_log=False, log_level="warning",
            backlog=4096, timeout_keep_alive=30, lifespan="on", proxy_headers=False,
        )
        server = uvicorn.Server(config)
        quiet_gc()
        log.info("bridge on %s, metrics on %s", stack.bridge_url, stack.metrics_url)
        server.run()  # not asyncio.run(): Server.run installs the configured uvloop loop
        metrics_server.shutdown()
    finally:
        ledger.close()
