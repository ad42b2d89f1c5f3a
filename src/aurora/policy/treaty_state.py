"""The treaty state behind one interface: where nonces are spent and GPU-hours reserved.

Two implementations:

* ``MemoryTreatyState`` (the SQLite default, one bridge): ``PolicyState`` in the
  bridge's memory, rebuilt from the ledger at start. Nothing changes for a user who
  never sets ``database_url``.
* ``aurora.policy.pgstate.PgTreatyState`` (PostgreSQL, any number of replicas): the
  nonces, reservations and usage counters live in the database and every claim is
  one atomic statement there; no process holds authority in memory.

The order path drives both the same way:

1. ``admit`` — replay check, decision and reservation as one atomic step;
2. the router asks providers; if none takes the order, ``release`` gives the hours back;
3. the verdict (order, decision or drop) is appended to the ledger; only while
   ``fresh`` says the claim is still ours (a PostgreSQL claim has a lease);
4. once it is durable, ``settle``; if it could not be recorded, ``unrecorded``.

A crash anywhere leaves the claim to its lease: a claim whose verdict reached the
ledger is kept (the nonce stays spent, an order's hours stay counted), any other
claim is undone. Nothing is lost that was acknowledged, nothing is spent twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Protocol

from aurora.config import TenantConfig
from aurora.errors import UnreachableError
from aurora.policy.state import Admission, PolicyState, Reservation
from aurora.treaty import Treaty


class TreatyStateUnavailable(UnreachableError):  # noqa: N818 - a condition, not a bug
    """The treaty state cannot be reached now (the database is gone): answer 503, retry."""


class TreatyState(Protocol):
    #: True when the state lives in this process and is rebuilt from the ledger at start
    rebuilt_from_ledger: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def admit(self, *, treaty_id: str, tenant_id: str, region: str, gpu_hours: float,
                    nonce: str, now: float) -> Admission:
        """Replay check, decision and reservation, atomic against every other claim."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """Give back GPU-hours no provider took."""
        ...

    def fresh(self, admitted_at: float, now: float) -> bool:
        """Whether a claim made at ``admitted_at`` may still have its verdict recorded."""
        ...

    async def settle(self, tenant_id: str, nonce: str, kind: str) -> None:
        """The claim's verdict (ledger kind ``order``, ``decision`` or ``drop``) is durable.

        The nonce is spent for good; an ``order`` keeps its hours. A drop whose hours
        could not be released is left to the lease, which releases them.
        """
        ...

    async def unrecorded(self, tenant_id: str, nonce: str) -> None:
        """The verdict could not be recorded: undo the claim unless the ledger has it."""
        ...

    def treaty_usage(self) -> float:
        """GPU-hours reserved or used in the treaty's period (for the gauge)."""
        ...

    def live_nonces(self) -> int: ...


class MemoryTreatyState:
    """``PolicyState`` in the bridge's memory; one event loop makes ``admit`` atomic."""

    rebuilt_from_ledger = True

    def __init__(self, treaty: Treaty, tenants: Mapping[str, TenantConfig]) -> None:
        self.policy = PolicyState(treaty, tenants)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def restore(self, records: Iterable[tuple[str, str, str, float | None, float]],
                now: float) -> None:
        self.policy.restore(records, now)

    async def admit(self, *, treaty_id: str, tenant_id: str, region: str, gpu_hours: float,
                    nonce: str, now: float) -> Admission:
        # no await before this returns: on the event loop nothing runs in between
        return self.policy.admit(treaty_id=treaty_id, tenant_id=tenant_id, region=region,
                                 gpu_hours=gpu_hours, nonce=nonce, now=now)

    async def release(self, reservation: Reservation) -> None:
        self.policy.release(reservation)

    def fresh(self, admitted_at: float, now: float) -> bool:
        return True  # no lease: the claim dies with the process, and is rebuilt from the ledger

    async def settle(self, tenant_id: str, nonce: str, kind: str) -> None:
        return None

    async def unrecorded(self, tenant_id: str, nonce: str) -> None:
        self.policy.forget_nonce(tenant_id, nonce)

    def treaty_usage(self) -> float:
        return self.policy.usage("", time.time()).treaty_period

    def live_nonces(self) -> int:
        return self.policy.live_nonces
