"""vault-law's state: seen nonces and quota usage, with atomic check-and-reserve.

The state lives in memory in the bridge process and is rebuilt at start from
the ledger, which is where it becomes durable: every validly signed order
ends as an ``order``, ``decision`` or ``drop`` entry whose subject is the
nonce. ``admit`` does the replay check, the decision and the reservation in
one synchronous call, so on the bridge's event loop no other order can run
between them — 200 concurrent orders cannot overrun a cap.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aurora.config import TenantConfig
from aurora.policy.engine import Decision, Usage, decide
from aurora.treaty import Treaty

NONCE_TTL_SECONDS = 24 * 3600.0


def _nonce_key(tenant_id: str, nonce: str) -> bytes:
    # 16-byte digests keep a million live nonces at ~100 MB instead of several hundred
    return hashlib.blake2b(f"{tenant_id}\x00{nonce}".encode("utf-8", "surrogatepass"),
                           digest_size=16).digest()


def utc_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


@dataclass
class Reservation:
    tenant_id: str
    day: str
    gpu_hours: float
    at: float
    released: bool = False
    ref: int | None = None  # the reservation's row id where the state lives in PostgreSQL


@dataclass
class Admission:
    """What ``admit`` concluded: a replay, a decision, and the reservation if allowed."""

    replay: bool
    decision: Decision | None
    reservation: Reservation | None
    # a replay of a claim with no verdict recorded yet (PostgreSQL mode): its lease ends
    # then, and the claim is resolved against the ledger (spent, or free again)
    in_flight_until: float | None = None


@dataclass
class PolicyState:
    treaty: Treaty
    tenants: Mapping[str, TenantConfig]
    _nonces: dict[bytes, float] = field(default_factory=dict)
    _nonce_expiry: deque[tuple[float, bytes]] = field(default_factory=deque)
    _tenant_day: dict[tuple[str, str], float] = field(default_factory=dict)
    _period: deque[Reservation] = field(default_factory=deque)
    _period_sum: float = 0.0

    # --- nonces ---------------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        expiry = self._nonce_expiry
        while expiry and expiry[0][0] <= now:
            at, key = expiry.popleft()
            if self._nonces.get(key) == at:
                del self._nonces[key]
        horizon = now - self.treaty.quota.period_seconds
        period = self._period
        while period and period[0].at <= horizon:
            old = period.popleft()
            if not old.released:
                self._period_sum -= old.gpu_hours
        if len(self._tenant_day) > 4096:  # drop finished days now and then
            today = utc_day(now)
            self._tenant_day = {k: v for k, v in self._tenant_day.items() if k[1] >= today}

    def seen(self, tenant_id: str, nonce: str, now: float) -> bool:
        expires = self._nonces.get(_nonce_key(tenant_id, nonce))
        return expires is not None and expires > now

    def remember_nonce(self, tenant_id: str, nonce: str, at: float) -> None:
        expires = at + NONCE_TTL_SECONDS
        key = _nonce_key(tenant_id, nonce)
        if self._nonces.get(key, 0.0) < expires:
            self._nonces[key] = expires
            self._nonce_expiry.append((expires, key))

    def forget_nonce(self, tenant_id: str, nonce: str) -> None:
        """Undo a nonce whose order never reached the ledger (so nothing durable saw it)."""
        self._nonces.pop(_nonce_key(tenant_id, nonce), None)

    @property
    def live_nonces(self) -> int:
        return len(self._nonces)

    # --- quotas ---------------------------------------------------------------------------

    def usage(self, tenant_id: str, now: float) -> Usage:
        return Usage(self._tenant_day.get((tenant_id, utc_day(now)), 0.0), self._period_sum)

    def _reserve(self, tenant_id: str, gpu_hours: float, at: float) -> Reservation:
        reservation = Reservation(tenant_id, utc_day(at), gpu_hours, at)
        key = (tenant_id, reservation.day)
        self._tenant_day[key] = self._tenant_day.get(key, 0.0) + gpu_hours
        self._period.append(reservation)
        self._period_sum += gpu_hours
        return reservation

    def release(self, reservation: Reservation) -> None:
        """Give back GPU-hours no provider took."""
        if reservation.released:
            return
        reservation.released = True
        key = (reservation.tenant_id, reservation.day)
        self._tenant_day[key] = max(0.0, self._tenant_day.get(key, 0.0) - reservation.gpu_hours)
        self._period_sum = max(0.0, self._period_sum - reservation.gpu_hours)

    # --- the one atomic step --------------------------------------------------------------

    def admit(
        self, *, treaty_id: str, tenant_id: str, region: str, gpu_hours: float, nonce: str,
        now: float,
    ) -> Admission:
        """Replay check, decision and reservation as one step (no await inside)."""
        self._prune(now)
        if self.seen(tenant_id, nonce, now):
            return Admission(True, None, None)
        self.remember_nonce(tenant_id, nonce, now)
        tenant = self.tenants[tenant_id]
        decision = decide(treaty_id=treaty_id, region=region, gpu_hours=gpu_hours, tenant=tenant,
                          treaty=self.treaty, usage=self.usage(tenant_id, now))
        reservation = self._reserve(tenant_id, gpu_hours, now) if decision.allowed else None
        return Admission(False, decision, reservation)

    # --- rebuilding from the ledger -------------------------------------------------------

    def restore(self, records: Iterable[tuple[str, str, str, float | None, float]],
                now: float) -> None:
        """Replay ledger records ``(kind, tenant_id, nonce, filled_gpu_hours, at_epoch)``.

        Every record's nonce is live for 24 h after it; only ``order`` records
        (filled orders) count against the quotas.
        """
        horizon = now - self.treaty.quota.period_seconds
        for kind, tenant_id, nonce, gpu_hours, at in records:
            if at + NONCE_TTL_SECONDS > now:
                self.remember_nonce(tenant_id, nonce, at)
            if kind == "order" and gpu_hours and at > horizon:
                self._reserve(tenant_id, gpu_hours, at)
        self._prune(now)
