"""Does a filled order's ledger record prove itself? Pure.

An ``order`` entry carries the tenant's signed order and the provider's
signed ACK. It has provenance when both signatures verify with the keys on
file and the ACK commits to exactly that order (digest, nonce, tenant,
treaty, region, GPU-hours).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aurora.keys import Ed25519PublicKey
from aurora.wire import order_sha256, verify_ack, verify_order

_MATCHING = ("nonce", "tenant_id", "treaty_id", "region", "gpu_hours")


def ack_matches_order(ack: Mapping[str, Any], order: Mapping[str, Any]) -> str | None:
    """Why ``ack`` is not an acceptance of ``order``, or None if it is."""
    if ack.get("order_sha256") != order_sha256(order):
        return "ACK commits to a different order"
    for name in _MATCHING:
        if ack.get(name) != order.get(name):
            return f"ACK {name} differs from the order's"
    return None


def order_record_problem(
    entry: Mapping[str, Any],
    tenant_keys: Mapping[str, Ed25519PublicKey],
    provider_keys: Mapping[str, Ed25519PublicKey],
) -> str | None:
    """Why this ledger entry fails to prove its order's provenance, or None if it proves it."""
    data = entry.get("data")
    if entry.get("kind") != "order" or not isinstance(data, dict):
        return "not an order entry"
    order, ack = data.get("order"), data.get("ack")
    if not isinstance(order, dict) or not isinstance(ack, dict):
        return "order or ACK missing"
    tenant_key = tenant_keys.get(str(order.get("tenant_id")))
    if tenant_key is None or not verify_order(order, tenant_key):
        return "tenant signature does not verify"
    provider_key = provider_keys.get(str(ack.get("provider_id")))
    if provider_key is None or not verify_ack(ack, provider_key):
        return "provider signature does not verify"
    return ack_matches_order(ack, order)
