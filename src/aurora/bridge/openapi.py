"""The bridge's OpenAPI document, built around the published order schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_ERRORS = {
    "400": ("bad_json", "Not JSON, not an object, duplicate keys, NaN, bad Unicode."),
    "401": ("signature", "Unknown tenant key or a signature that does not verify."),
    "403": ("policy", "Denied by the treaty: region, reputation, daily cap, treaty cap."),
    "409": ("replay", "Nonce already used within 24 h, or held by an order still in flight "
                      "(PostgreSQL mode; the detail says when to retry)."),
    "413": ("too_large", "Body over 64 KiB."),
    "422": ("schema", "Schema violation (`schema`) or a deadline in the past (`expired`)."),
    "503": ("no_provider", "No provider filled the order after failover (or `ledger`)."),
}


def openapi_document(order_schema_path: Path) -> dict[str, Any]:
    order_schema = json.loads(order_schema_path.read_text())
    for key in ("$schema", "$id"):
        order_schema.pop(key, None)
    error_schema = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"},
                       "reason": {"type": "string"}, "attempts": {"type": "array"}},
    }
    responses: dict[str, Any] = {
        "200": {"description": "The provider's signed ACK plus its ledger receipt.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ack"}}}},
    }
    for status, (code, text) in _ERRORS.items():
        responses[status] = {
            "description": f"`{code}`: {text}",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    ack_schema = {
        "type": "object",
        "required": ["ack_id", "provider_id", "rtt_ms", "nonce", "signature", "receipt"],
        "properties": {
            "ack_id": {"type": "string"}, "provider_id": {"type": "string"},
            "rtt_ms": {"type": "number"}, "nonce": {"type": "string"},
            "signature": {"type": "string"},
            "receipt": {"type": "object", "required": ["leaf_index", "tree_size", "root_hash",
                                                       "proof"]},
        },
    }
    health = {"200": {"description": "OK", "content": {"application/json": {"schema": {
        "type": "object"}}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Aurora bridge", "version": "1.0.0",
                 "description": "Signed GPU-hour orders under treaty AURORA-AKASH-001."},
        "paths": {
            "/aurora/order": {"post": {
                "operationId": "submitOrder",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Order"}}}},
                "responses": responses,
            }},
            "/healthz": {"get": {"operationId": "healthz", "responses": health}},
            "/readyz": {"get": {"operationId": "readyz", "responses": {
                **health, "503": {"description": "Not ready", "content": {"application/json": {
                    "schema": {"type": "object"}}}}}}},
        },
        "components": {"schemas": {"Order": order_schema, "Ack": ack_schema,
                                   "Error": error_schema}},
    }
