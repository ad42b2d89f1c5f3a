"""Run the bridge: the order API on ``bridge_port`` and treaty metrics on ``metrics_port``."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

import prometheus_client
import uvicorn

from aurora.bridge.app import create_app
from aurora.bridge.metrics import TreatyMetrics
from aurora.bridge.openapi import openapi_document
from aurora.bridge.provenance import ProvenanceAuditor
from aurora.bridge.service import BridgeService
from aurora.config import StackConfig, TenantConfig, load_order_keys, load_stack, load_tenants
from aurora.durations import parse_duration
from aurora.errors import AuroraError
from aurora.gc_tuning import quiet_gc
from aurora.home import Home
from aurora.ledger import Ledger
from aurora.policy.treaty_state import MemoryTreatyState, TreatyState
from aurora.treaty import Treaty, load_treaty

log = logging.getLogger("aurora.bridge")
CRASH_AFTER_ACK_ENV = "AURORA_FAULT_CRASH_AFTER_ACK"  # tests only: see BridgeService


def treaty_state(stack: StackConfig, treaty: Treaty,
                 tenants: Mapping[str, TenantConfig]) -> TreatyState:
    """In memory with the SQLite default; in the database with a PostgreSQL database_url."""
    if not stack.database_url:
        return MemoryTreatyState(treaty, tenants)
    from aurora.policy.pgstate import PgTreatyState

    return PgTreatyState(stack.database_url, treaty, tenants,
                         lease_s=parse_duration(stack.treaty_lease))


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
                         auditor=auditor, state=treaty_state(stack, treaty, tenants),
                         crash_after_ack=os.environ.get(CRASH_AFTER_ACK_ENV) == "1")


def order_socket(stack: StackConfig, port: int | None = None) -> socket.socket:
    """The order port, shared (SO_REUSEPORT) by every replica in PostgreSQL mode.

    The kernel spreads new connections over the replicas' listening sockets. Only where
    the treaty state is shared: two SQLite-mode bridges on one port would each keep
    their own nonces and quotas, so there the port stays exclusive.
    """
    port = stack.bridge_port if port is None else port
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if stack.database_url:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((stack.bind, port))
    except OSError as exc:
        sock.close()
        raise AuroraError(f"cannot listen on {stack.bind}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def serve(home: Home, replica: int = 1, *, order_port: int | None = None,
          metrics_port: int | None = None) -> None:
    """Serve one bridge replica; ``order_port``/``metrics_port`` place a canary's replica
    group (or stable's behind the split) beside the stack's own ports."""
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
                 replayed, service.state.live_nonces())
        if metrics_port is None:
            metrics_port = stack.replica_metrics(replica)
        metrics_server, metrics_thread = prometheus_client.start_http_server(
            metrics_port, addr=stack.bind, registry=service.metrics.registry)
        openapi = openapi_document(home.order_schema_file)
        config = uvicorn.Config(
            create_app(service, openapi), host=stack.bind, port=stack.bridge_port,
            loop="uvloop", http="httptools", access_log=False, log_level="warning",
            backlog=4096, timeout_keep_alive=30, lifespan="on", proxy_headers=False,
        )
        server = uvicorn.Server(config)
        quiet_gc()
        sock = order_socket(stack, order_port)
        log.info("bridge replica %d on %s, metrics on %s", replica,
                 stack.url(order_port or stack.bridge_port),
                 stack.url(metrics_port, "/metrics"))
        # not asyncio.run(): Server.run installs the configured uvloop loop
        server.run(sockets=[sock])
        metrics_server.shutdown()
    finally:
        ledger.close()
