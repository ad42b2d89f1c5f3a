"""The order path: size → JSON → schema → deadline → signature → replay → policy → route →
verified ACK → ledger → answer.

``BridgeService.handle_order`` returns ``(status, body)`` for every input and
never raises for bad input. Everything an order's verdict depends on that a
tenant signed reaches the ledger before the answer: filled orders (order +
ACK), policy denials and drops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from aurora.bridge.metrics import TreatyMetrics
from aurora.bridge.provenance import ProvenanceAuditor
from aurora.canonical import StrictJSONError, parse_strict
from aurora.config import StackConfig, TenantConfig
from aurora.durations import parse_duration
from aurora.keys import Ed25519PublicKey
from aurora.ledger import Entry, Ledger, Receipt
from aurora.policy.state import NONCE_TTL_SECONDS, Reservation
from aurora.policy.treaty_state import (
    MemoryTreatyState,
    TreatyState,
    TreatyStateUnavailable,
)
from aurora.provenance import ack_matches_order
from aurora.routing import Candidate, CircuitBreaker, Offer, rank
from aurora.treaty import Treaty
from aurora.wire import (
    IDEMPOTENCY_HEADER,
    SchemaError,
    idempotency_key,
    parse_ack,
    parse_order,
    parse_rfc3339,
    rfc3339_at,
    verify_ack,
    verify_order,
)

log = logging.getLogger("aurora.bridge")

MAX_BODY_BYTES = 64 * 1024
MAX_ATTEMPTS = 3
# A market feed older than this is not trusted for readiness.
FEED_STALE_SECONDS = 5.0

Answer = tuple[int, dict[str, Any]]
Reply = tuple[int, "dict[str, Any] | bytes"]  # bytes: a 200 body already encoded
_JSON_HEADERS = {"content-type": "application/json"}


def error(status: int, code: str, detail: str, **extra: Any) -> Answer:
    return status, {"error": code, "detail": detail, **extra}


@dataclass
class Attempt:
    provider: str
    gpu_type: str
    outcome: str  # acked, timeout, error, refused, bad_ack, conflict
    ms: float
    detail: str = ""
    ack: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": self.provider, "gpu_type": self.gpu_type,
                               "outcome": self.outcome, "ms": round(self.ms, 3)}
        if self.detail:
            out["detail"] = self.detail
        if self.ack is not None and self.outcome == "bad_ack":
            out["rejected_ack"] = self.ack  # evidence against the provider
        return out


@dataclass
class MarketFeed:
    offers: list[Offer] = field(default_factory=list)
    fetched_at: float = 0.0
    last_error: str = "not fetched yet"


class BridgeService:
    def __init__(
        self,
        *,
        stack: StackConfig,
        treaty: Treaty,
        tenants: Mapping[str, TenantConfig],
        tenant_keys: Mapping[str, Ed25519PublicKey],
        provider_keys: Mapping[str, Ed25519PublicKey],
        ledger: Ledger,
        metrics: TreatyMetrics,
        auditor: ProvenanceAuditor | None = None,
        crash_after_ack: bool = False,
        state: TreatyState | None = None,
    ) -> None:
        self.stack = stack
        self.treaty = treaty
        self.tenants = tenants
        self.tenant_keys = tenant_keys
        self.provider_keys = provider_keys
        self.ledger = ledger
        self.metrics = metrics
        self.auditor = auditor
        # Fault hook for tests (AURORA_FAULT_CRASH_AFTER_ACK=1): die by SIGKILL between a
        # provider's ACK and the ledger append, the window idempotency keys close.
        self._crash_after_ack = crash_after_ack
        self.state: TreatyState = state or MemoryTreatyState(treaty, tenants)
        self.breaker = CircuitBreaker()
        self.feed = MarketFeed()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._provider_timeout = stack.provider_timeout_ms / 1000.0
        tid = treaty.treaty_id
        self._outcomes = {o: metrics.requests.labels(tid, o)
                          for o in ("filled", "dropped", "denied", "replay", "rejected")}
        self._rtt = metrics.rtt.labels(tid)
        self._policy_ms = metrics.policy.labels(tid)
        metrics.quota_used.labels(tid).set_function(lambda: self.state.treaty_usage())
        metrics.live_nonces.labels(tid).set_function(lambda: self.state.live_nonces())
        for provider in provider_keys:  # every series exists from the start, at zero
            for reason in ("timeout", "error", "refused", "bad_ack"):
                metrics.failovers.labels(tid, provider, reason)

    # --- lifecycle ----------------------------------------------------------------------------

    def restore_policy_state(self) -> int:
        """Rebuild nonces and quota usage from the ledger; returns the records replayed.

        Only for the in-memory state: in PostgreSQL the state outlives every process.
        """
        if not isinstance(self.state, MemoryTreatyState):
            return 0
        now = time.time()
        since = now - max(NONCE_TTL_SECONDS, self.treaty.quota.period_seconds)
        records = []
        for row in self.ledger.scan(kinds=("order", "decision", "drop"),
                                    since_ts=rfc3339_at(since)):
            order = row.data.get("order", {})
            if row.tenant_id is None or row.tenant_id not in self.tenants or not row.subject:
                continue
            hours = float(order.get("gpu_hours", 0)) if row.kind == "order" else None
            records.append((row.kind, row.tenant_id, row.subject, hours,
                            parse_rfc3339(row.ts).timestamp()))
        self.state.restore(records, now)
        return len(records)

    async def start(self) -> None:
        await self.state.start()
        connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=30, ttl_dns_cache=300)
        # No cookies, no compression, no default headers: every order pays for what is on.
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"))
        await self.refresh_feed()
        self._tasks = [
            asyncio.create_task(self._every(self.stack.market_refresh_ms / 1000.0,
                                            self.refresh_feed)),
            asyncio.create_task(self._every(parse_duration(self.stack.fill_bucket_every),
                                            self._sample_fill)),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        await self.state.close()
        # uvicorn re-raises SIGTERM once it has shut down, so this lifespan exit is the last
        # moment to commit what is queued and persist a checkpoint covering every entry.
        if self.auditor is not None:
            self.auditor.close()
        await asyncio.to_thread(self.ledger.close)

    @staticmethod
    async def _every(seconds: float, job: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:  # a failed tick must not stop the loop
                log.exception("periodic job failed")

    async def _sample_fill(self) -> None:
        self.metrics.sample_fill_rate()

    async def refresh_feed(self) -> None:
        assert self._session is not None
        try:
            async with self._session.get(
                f"{self.stack.providers_url}/providers",
                timeout=aiohttp.ClientTimeout(total=2.0),
            ) as response:
                response.raise_for_status()
                document = await response.json()
            self.feed = MarketFeed([Offer.from_feed(p) for p in document["providers"]],
                                   time.time(), "")
        except (TimeoutError, aiohttp.ClientError, KeyError, TypeError, ValueError) as exc:
            self.feed.last_error = f"{type(exc).__name__}: {exc}"

    def readiness(self) -> dict[str, str]:
        """Problems that make the bridge unable to fill orders now (empty when ready)."""
        problems: dict[str, str] = {}
        age = time.time() - self.feed.fetched_at
        if age > FEED_STALE_SECONDS:
            problems["market_feed"] = (f"no fresh provider feed for {age:.0f}s: "
                                       f"{self.feed.last_error}")
        elif not any(o.active for o in self.feed.offers):
            problems["providers"] = "no provider is active"
        return problems

    # --- the order path -----------------------------------------------------------------------

    async def handle_order(self, body: bytes) -> Reply:
        started = time.perf_counter()
        if len(body) > MAX_BODY_BYTES:
            return self._reject(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
        try:
            document = parse_strict(body)
        except StrictJSONError as exc:
            return self._reject(400, "bad_json", str(exc))
        if not isinstance(document, dict):
            return self._reject(400, "bad_json", "an order is a JSON object")
        try:
            order = parse_order(document)
        except SchemaError as exc:
            return self._reject(422, "schema", str(exc))
        now = time.time()
        deadline = order.deadline.timestamp()
        if deadline <= now:
            return self._reject(422, "expired", f"deadline_utc {order.deadline_utc} has passed")
        if deadline > now + NONCE_TTL_SECONDS:
            return self._reject(422, "schema", "deadline_utc: more than 24 h ahead "
                                "(the replay guard's window)")
        key = self.tenant_keys.get(order.tenant_id)
        if key is None:
            return self._reject(401, "signature", f"no key on file for tenant {order.tenant_id}")
        if not verify_order(document, key):
            return self._reject(401, "signature", "signature does not verify")

        policy_started = time.perf_counter()
        try:
            admission = await self.state.admit(
                treaty_id=order.treaty_id, tenant_id=order.tenant_id, region=order.region,
                gpu_hours=order.gpu_hours, nonce=order.nonce, now=now)
        except TreatyStateUnavailable as exc:
            log.error("treaty state unavailable: %s", exc)
            self.metrics.dropped.labels(self.treaty.treaty_id, "ledger").inc()
            return error(503, "ledger", "the treaty state could not be reached; retry later")
        policy_ms = (time.perf_counter() - policy_started) * 1000.0
        self._policy_ms.observe(policy_ms)
        if admission.replay:
            self._outcomes["replay"].inc()
            if admission.in_flight_until is not None:
                return error(409, "replay", "nonce held by an order still in flight (no "
                             "verdict recorded yet); its claim is resolved against the ledger "
                             f"at {rfc3339_at(admission.in_flight_until)}: retry the same "
                             "order after that")
            return error(409, "replay", "nonce already used within 24 h")
        decision = admission.decision
        assert decision is not None
        if not decision.allowed:
            entry = Entry(kind="decision", treaty_id=order.treaty_id, tenant_id=order.tenant_id,
                          subject=order.nonce,
                          data={"order": document, "decision": decision.to_json(),
                                "policy_ms": round(policy_ms, 4)})
            if (failed := await self._record(entry, order.tenant_id, order.nonce,
                                             now)) is not None:
                return failed
            self._outcomes["denied"].inc()
            return error(403, "policy", decision.detail, reason=decision.reason)
        assert admission.reservation is not None
        return await self._fill(document, order.tenant_id, order.nonce, order.region,
                                order.gpu_hours, deadline, admission.reservation, policy_ms,
                                started, now)

    def _reject(self, status: int, code: str, detail: str) -> Answer:
        self._outcomes["rejected"].inc()
        return error(status, code, detail)

    async def _append(self, entry: Entry, admitted_at: float) -> Receipt:
        """Append a verdict while its claim is still ours; the nonce is spent once durable."""
        if not self.state.fresh(admitted_at, time.time()):
            # the claim's lease ran out (a stalled append or routing): another replica may
            # already have undone it, so recording the verdict now could spend twice
            raise TimeoutError("the claim's lease expired before the verdict was recorded")
        receipt = await asyncio.wrap_future(self.ledger.submit(entry))
        await self._settle(entry)
        return receipt

    async def _settle(self, entry: Entry) -> None:
        assert entry.tenant_id is not None and entry.subject is not None
        try:
            await self.state.settle(entry.tenant_id, entry.subject, entry.kind)
        except TreatyStateUnavailable as exc:  # the lease reclaimer settles it from the ledger
            log.warning("could not settle a claim now (%s); its lease will", exc)

    async def _release(self, reservation: Reservation) -> None:
        try:
            await self.state.release(reservation)
        except TreatyStateUnavailable as exc:  # the lease reclaimer gives them back
            log.warning("could not release a reservation now (%s); its lease will", exc)

    async def _unrecorded(self, tenant_id: str, nonce: str) -> None:
        try:
            await self.state.unrecorded(tenant_id, nonce)
        except TreatyStateUnavailable as exc:  # the lease reclaimer undoes it
            log.warning("could not undo a claim now (%s); its lease will", exc)

    async def _record(self, entry: Entry, tenant_id: str, nonce: str,
                      admitted_at: float) -> Answer | None:
        """Append a verdict; on failure the claim is undone, as nothing durable saw it."""
        try:
            await self._append(entry, admitted_at)
        except Exception as exc:
            log.error("ledger append failed: %s", exc)
            await self._unrecorded(tenant_id, nonce)
            self.metrics.dropped.labels(self.treaty.treaty_id, "ledger").inc()
            return error(503, "ledger", "the decision could not be recorded; retry later")
        return None

    async def _fill(self, document: dict[str, Any], tenant_id: str, nonce: str, region: str,
                    gpu_hours: float, deadline: float, reservation: Reservation,
                    policy_ms: float, started: float, admitted_at: float) -> Reply:
        tid = self.treaty.treaty_id
        prefs = self.tenants[tenant_id].routing
        candidates = rank(self.feed.offers, region=region, gpu_hours=gpu_hours, prefs=prefs,
                          breaker=self.breaker, now=time.time())
        attempts: list[Attempt] = []
        ack: dict[str, Any] | None = None
        for candidate in candidates[:MAX_ATTEMPTS]:
            budget = min(self._provider_timeout, deadline - time.time())
            if budget <= 0:
                break
            attempt = await self._ask(candidate, document, budget)
            attempts.append(attempt)
            if attempt.outcome == "conflict":
                break
            if attempt.outcome == "acked":
                self.breaker.success(candidate.provider_id, time.time())
                ack = attempt.ack
                break
            self.breaker.failure(candidate.provider_id, time.time())
            self.metrics.failovers.labels(tid, candidate.provider_id, attempt.outcome).inc()
        route = {"candidates": [c.provider_id for c in candidates],
                 "attempts": [a.to_json() for a in attempts]}
        if ack is None and attempts and attempts[-1].outcome == "conflict":
            # The provider holds a job for this nonce under another order: trying the next
            # provider would open a second job for one nonce. Nothing durable saw this claim.
            await self._release(reservation)
            await self._unrecorded(tenant_id, nonce)
            self._outcomes["replay"].inc()
            return error(409, "replay", f"nonce already used for another order at "
                         f"{attempts[-1].provider}")
        if ack is None:
            await self._release(reservation)
            why = "no eligible provider" if not candidates else "every candidate failed"
            entry = Entry(kind="drop", treaty_id=tid, tenant_id=tenant_id, subject=nonce,
                          data={"order": document, "route": route, "reason": why,
                                "policy_ms": round(policy_ms, 4)})
            if (failed := await self._record(entry, tenant_id, nonce, admitted_at)) is not None:
                return failed
            self.metrics.dropped.labels(tid, "no_provider").inc()
            self._outcomes["dropped"].inc()
            self.metrics.record_fill(False)
            return error(503, "no_provider", why, attempts=route["attempts"])

        if self._crash_after_ack:
            os.kill(os.getpid(), signal.SIGKILL)
        rtt_ms = (time.perf_counter() - started) * 1000.0
        self._rtt.observe(rtt_ms)
        entry = Entry(kind="order", treaty_id=tid, tenant_id=tenant_id, subject=nonce,
                      data={"order": document, "ack": ack, "route": route,
                            "rtt_ms": round(rtt_ms, 3), "policy_ms": round(policy_ms, 4)})
        try:
            receipt = await self._append(entry, admitted_at)
        except Exception as exc:
            # The provider took the job but the ledger did not record it: a provenance gap.
            log.error("ledger append failed for an accepted order: %s", exc)
            if self.auditor is not None:
                self.auditor.note_unrecorded(time.time())
            self.metrics.dropped.labels(tid, "ledger").inc()
            self._outcomes["dropped"].inc()
            self.metrics.record_fill(False)
            return error(503, "ledger", "the provider accepted but the ledger did not record "
                         "the order; do not retry with a new nonce before checking with support")
        if self.auditor is not None:
            self.auditor.note_recorded(receipt.leaf_index, time.time())
        self._outcomes["filled"].inc()
        self.metrics.record_fill(True)
        return 200, filled_answer(ack, receipt)

    async def _ask(self, candidate: Candidate, order: dict[str, Any], budget: float) -> Attempt:
        assert self._session is not None
        pid, gpu = candidate.provider_id, candidate.gpu_type
        self.breaker.attempt(pid, time.time())
        t0 = time.perf_counter()
        url = f"{self.stack.providers_url}/providers/{pid}/orders"

        def done(outcome: str, detail: str = "", ack: dict[str, Any] | None = None) -> Attempt:
            return Attempt(pid, gpu, outcome, (time.perf_counter() - t0) * 1000.0, detail, ack)

        try:
            body = json.dumps({"order": order, "gpu_type": gpu}, separators=(",", ":"))
            headers = {**_JSON_HEADERS, IDEMPOTENCY_HEADER: idempotency_key(order)}
            async with self._session.post(url, data=body.encode(), headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=budget)) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError:
            return done("timeout", f"no answer within {budget * 1000:.0f} ms")
        except aiohttp.ClientError as exc:
            return done("error", type(exc).__name__)
        if status == 409 and _error_code(raw) == "idempotency_conflict":
            return done("conflict", "the provider has another order under this nonce")
        if status == 503:
            reason = _error_code(raw)
            return done("refused" if reason in ("capacity", "outage") else "error", reason)
        if status != 200:
            return done("error", f"HTTP {status}")
        try:
            ack = json.loads(raw)
            parse_ack(ack)
        except (ValueError, SchemaError) as exc:
            return done("bad_ack", f"malformed ACK: {exc}")
        problem = None
        if ack.get("provider_id") != pid:
            problem = "ACK names another provider"
        elif (key := self.provider_keys.get(pid)) is None or not verify_ack(ack, key):
            problem = "ACK signature does not verify"
        else:
            problem = ack_matches_order(ack, order)
        if problem:
            return done("bad_ack", problem, ack)
        return done("acked", ack=ack)


def filled_answer(ack: dict[str, Any], receipt: Receipt) -> bytes:
    """The 200 body: the ACK plus its receipt, whose ``entry`` is the leaf payload itself.

    The payload is already canonical JSON (what the leaf hash covers), so it is spliced in
    rather than encoded a second time; the client gets exactly the hashed bytes.
    """
    proof = receipt.to_json()
    del proof["entry"]
    head = json.dumps({**ack, "receipt": proof}, separators=(",", ":"),
                      ensure_ascii=False).encode()
    payload = receipt.payload_bytes or json.dumps(receipt.entry).encode()
    return head[:-2] + b',"entry":' + payload + b"}}"


def _error_code(raw: bytes) -> str:
    try:
        value = json.loads(raw).get("error")
        return str(value) if value else "unavailable"
    except (ValueError, AttributeError):
        return "unavailable"
