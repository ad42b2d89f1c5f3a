"""The incident receiver's OpenAPI document (``GET /openapi.json``), for clients and fuzzers.

The webhook's schema is generated from the model that validates it
(``aurora.incidents.webhook.WebhookPayload``), so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from aurora.incidents.webhook import WebhookPayload

_ERRORS = {
    "400": "`bad_json`: not JSON, not an object, duplicate keys, NaN, bad Unicode.",
    "413": "`too_large`: body over 4 MiB.",
    "401": "`unauthorized`: no `Authorization: Bearer <secrets/incidents.token>`.",
    "422": "`schema` (a field, a time out of range, too many alerts) or "
           "`unsupported_version`.",
    "503": "`unavailable`: the ledger did not record it; Alertmanager retries.",
}


def openapi_document() -> dict[str, Any]:
    webhook = WebhookPayload.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = webhook.pop("$defs", {})
    schemas["Webhook"] = webhook
    schemas["Error"] = {"type": "object", "required": ["error", "detail"],
                        "properties": {"error": {"type": "string"},
                                       "detail": {"type": "string"}}}
    ids = {"type": "array", "items": {"type": "string"}}
    schemas["Ingested"] = {
        "type": "object",
        "required": ["status", "opened", "joined", "alerts_resolved", "resolved",
                     "duplicates", "stale"],
        "properties": {"status": {"type": "string"}, "opened": ids, "joined": ids,
                       "alerts_resolved": ids, "resolved": ids, "duplicates": ids,
                       "stale": {"type": "integer"}}}

    def json_body(ref: str) -> dict[str, Any]:
        return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}

    responses: dict[str, Any] = {"200": {"description": "What the notification did.",
                                         "content": json_body("Ingested")}}
    responses.update({status: {"description": text, "content": json_body("Error")}
                      for status, text in _ERRORS.items()})
    plain = {"200": {"description": "OK", "content": {"application/json": {"schema": {
        "type": "object"}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Aurora incident receiver", "version": "1.0.0",
                 "description": "Alertmanager webhooks (version 4) in, incidents out."},
        "paths": {
            "/alerts": {"post": {"operationId": "postAlerts", "requestBody": {
                "required": True, "content": json_body("Webhook")}, "responses": responses}},
            # Prometheus probes health without credentials (aurora.incidents.app._needs_token)
            "/healthz": {"get": {"operationId": "healthz", "responses": plain,
                                 "security": []}},
        },
        "security": [{"bearer": []}],
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
    }
