"""Alertmanager's webhook notification (version 4), validated. Pure.

Alertmanager POSTs one JSON document per notification of an alert group:
``{"version": "4", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
"commonLabels", "commonAnnotations", "externalURL", "alerts": [{"status", "labels",
"annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}]}``
(https://prometheus.io/docs/alerting/latest/configuration/#webhook_config). Unknown extra
fields are ignored so that a newer Alertmanager still gets through; what Aurora relies on
is required and checked. A rejected payload raises ``WebhookError`` with the HTTP status
and a reason for the ``{"error", "detail"}`` body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from aurora.canonical import StrictJSONError, parse_strict
from aurora.incidents.model import AlertFacts
from aurora.validation import first_error
from aurora.wire import parse_rfc3339

MAX_BODY_BYTES = 4 * 1024 * 1024  # Alertmanager sends whole groups
# Alerts per notification. Ingest is linear, and this bounds one sender's turn at the
# receiver; the rendered Alertmanager config sets webhook max_alerts to the same number, so
# Alertmanager truncates (and says so in truncatedAlerts) instead of being refused.
MAX_ALERTS = 2_000
# Counters from Alertmanager: anything past 2**31 is not a count of alerts.
MAX_COUNT = 2**31 - 1
# Go's zero time: Alertmanager's endsAt for an alert with no known end
_ZERO_TIME_PREFIX = "0001-01-01T00:00:00"

# Names and values are only required to be strings: Alertmanager 0.27+ allows UTF-8 label
# names, and a notification refused here is an alert lost (4xx is not retried).
LabelSet = dict[Annotated[str, StringConstraints(min_length=1)], str]


class WebhookError(ValueError):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def _timestamp(value: str) -> str:
    if not value.startswith(_ZERO_TIME_PREFIX):
        parse_rfc3339(value)
    return value


class WebhookAlert(_Lenient):
    status: Literal["firing", "resolved"]
    labels: LabelSet
    annotations: LabelSet = {}
    starts_at: str = Field(alias="startsAt")
    ends_at: str = Field("0001-01-01T00:00:00Z", alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{1,64}$")]

    _times = field_validator("starts_at", "ends_at")(_timestamp)

    @field_validator("labels")
    @classmethod
    def _alertname(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get("alertname"):
            raise ValueError("an alert needs an alertname label")
        return value

    @field_validator("starts_at")
    @classmethod
    def _known_start(cls, value: str) -> str:
        if value.startswith(_ZERO_TIME_PREFIX):
            raise ValueError("startsAt is the zero time")
        return value

    def facts(self, group_key: str) -> AlertFacts:
        return AlertFacts(group_key=group_key, fingerprint=self.fingerprint, status=self.status,
                          labels=self.labels, annotations=self.annotations,
                          starts_at=parse_rfc3339(self.starts_at),
                          ends_at=parse_time(self.ends_at))


class WebhookPayload(_Lenient):
    version: Literal["4"]
    group_key: Annotated[str, StringConstraints(min_length=1, max_length=8192)] = Field(
        alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0, le=MAX_COUNT)
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: LabelSet = Field({}, alias="groupLabels")
    common_labels: LabelSet = Field({}, alias="commonLabels")
    common_annotations: LabelSet = Field({}, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL")
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=MAX_ALERTS)

    def facts(self) -> list[AlertFacts]:
        return [alert.facts(self.group_key) for alert in self.alerts]


def parse_webhook(body: bytes) -> WebhookPayload:
    """The validated notification in ``body``, or ``WebhookError`` (400/413/422)."""
    if len(body) > MAX_BODY_BYTES:
        raise WebhookError(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
    try:
        document: Any = parse_strict(body)
    except (StrictJSONError, ValueError) as exc:
        raise WebhookError(400, "bad_json", str(exc)) from None
    if not isinstance(document, dict):
        raise WebhookError(400, "bad_json", "the body is not a JSON object")
    version = document.get("version")
    if version != "4":
        raise WebhookError(422, "unsupported_version",
                           f"webhook version {version!r}; this receiver speaks version '4'")
    try:
        return WebhookPayload.model_validate(document)
    except ValidationError as exc:
        raise WebhookError(422, "schema", first_error(exc)) from None


def parse_time(value: str) -> datetime | None:
    """An Alertmanager timestamp, ``None`` for Go's zero time."""
    return None if value.startswith(_ZERO_TIME_PREFIX) else parse_rfc3339(value)
