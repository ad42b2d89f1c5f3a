"""Orders and ACKs as they travel on the wire, and what is signed in them.

Pure: no I/O. A tenant signs ``JCS(order without "signature")``; a provider
signs ``JCS(ack without "signature" and "receipt")`` (RFC 8785 canonical
JSON, base64 Ed25519 signatures). The JSON Schema published for orders is
``schemas/axelar-order.schema.json``; ``Order`` enforces the same rules.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from aurora.canonical import canonical_json
from aurora.errors import AuroraError
from aurora.keys import Ed25519PrivateKey, Ed25519PublicKey, sign_b64, verify_b64
from aurora.validation import first_error

TREATY_ID_PATTERN = r"^AURORA-[A-Z]+-[0-9]{3,}$"
TENANT_ID_PATTERN = r"^[a-z0-9-]{3,64}$"
REGION_PATTERN = r"^[a-z]{2}-[a-z]+-[0-9]+$"
SIGNATURE_PATTERN = r"^[A-Za-z0-9+/]{86}==$"
ACK_ID_PATTERN = r"^[A-Z][A-Z0-9]*-JOB-[0-9]{4,}$"
PROVIDER_ID_PATTERN = r"^[a-z0-9-]{2,32}$"
SHA256_HEX_PATTERN = r"^[0-9a-f]{64}$"
MIN_GPU_HOURS = 0.1
MAX_GPU_HOURS = 10_000.0
MAX_CALLBACK_URL = 2048
ORDER_FIELDS = frozenset(
    {"treaty_id", "tenant_id", "region", "gpu_hours", "nonce", "deadline_utc", "callback_url",
     "signature"}
)

_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


# Times from outside input must lie in this window. Python's datetime ends at year 9999 and
# arithmetic on a time near either end (a deadline minus now, an SLA added to startsAt)
# overflows into a 500; a margin of centuries keeps every such step in range.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)


# A provider remembers an ACK under this key, so that a retried order (the bridge died
# between the ACK and the ledger) gets the job it already has instead of a second one.
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_:.-]{1,128}")


def idempotency_key(order: Mapping[str, Any]) -> str:
    """The key of an order at a provider: its tenant and nonce (what the ledger's replay
    guard knows it by), hashed so any nonce fits a header."""
    text = f"{order.get('tenant_id')}\x00{order.get('nonce')}"
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


class SchemaError(AuroraError, ValueError):
    """The document does not follow the wire schema; the message names the field."""


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time with an explicit offset, as an aware UTC datetime.

    The one parser for times from outside input (orders, webhooks, CLI options, files):
    ValueError for anything malformed or outside [EARLIEST_TIME, LATEST_TIME].
    """
    if not _RFC3339.match(text):
        raise ValueError("not an RFC 3339 date-time with a time zone")
    normal = text.upper().replace("Z", "+00:00")
    head, _, frac_tail = normal.partition(".")
    if frac_tail:  # Python parses at most 6 fractional digits
        digits = re.match(r"[0-9]+", frac_tail)
        assert digits is not None
        normal = f"{head}.{digits.group()[:6].ljust(6, '0')}{frac_tail[digits.end():]}"
    try:
        moment = datetime.fromisoformat(normal).astimezone(UTC)
    except (ValueError, OverflowError):  # 24:00, Feb 30, or an offset past year 1/9999
        raise ValueError("not a valid RFC 3339 date-time (out of range)") from None
    if not EARLIEST_TIME <= moment <= LATEST_TIME:
        raise ValueError(f"out of range: times must lie between {format_rfc3339(EARLIEST_TIME)}"
                         f" and {format_rfc3339(LATEST_TIME)}")
    return moment


def format_rfc3339(moment: datetime) -> str:
    """UTC, microsecond precision, ``Z`` suffix: sorts as text in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_at(epoch: float) -> str:
    """POSIX seconds as the project's RFC 3339 UTC text."""
    return format_rfc3339(datetime.fromtimestamp(epoch, UTC))


def utc_now() -> datetime:
    return datetime.now(UTC)


def _check_callback(url: str) -> str:
    if len(url) > MAX_CALLBACK_URL or any(c.isspace() for c in url):
        raise ValueError("not a URI")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise ValueError("not a URI") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URI with a host")
    return url


Str = Annotated[str, StringConstraints(strict=True)]


class Order(BaseModel):
    """A tenant's signed request for GPU-hours under a treaty."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    treaty_id: Annotated[str, StringConstraints(pattern=TREATY_ID_PATTERN)]
    tenant_id: Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN)]
    region: Annotated[str, StringConstraints(pattern=REGION_PATTERN)]
    gpu_hours: Annotated[float, Field(ge=MIN_GPU_HOURS, le=MAX_GPU_HOURS, allow_inf_nan=False)]
    nonce: Annotated[str, StringConstraints(min_length=8, max_length=128)]
    deadline_utc: str
    callback_url: str
    signature: Annotated[str, StringConstraints(pattern=SIGNATURE_PATTERN)]

    @field_validator("deadline_utc")
    @classmethod
    def _deadline(cls, value: str) -> str:
        parse_rfc3339(value)
        return value

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, value: str) -> str:
        return _check_callback(value)

    @property
    def deadline(self) -> datetime:
        return parse_rfc3339(self.deadline_utc)


class Ack(BaseModel):
    """A provider's signed acceptance of an order."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    ack_id: Annotated[str, StringConstraints(pattern=ACK_ID_PATTERN)]
    provider_id: Annotated[str, StringConstraints(pattern=PROVIDER_ID_PATTERN)]
    rtt_ms: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    nonce: Annotated[str, StringConstraints(min_length=8, max_length=128)]
    order_sha256: Annotated[str, StringConstraints(pattern=SHA256_HEX_PATTERN)]
    treaty_id: str
    tenant_id: str
    region: str
    gpu_type: str
    gpu_hours: float
    price_usd: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    issued_at: str
    signature: Annotated[str, StringConstraints(pattern=SIGNATURE_PATTERN)]


def parse_order(document: Any) -> Order:
    """Validate a parsed JSON document as an order; SchemaError names the first bad field."""
    if not isinstance(document, dict):
        raise SchemaError("body: an order is a JSON object")
    try:
        return Order.model_validate(document)
    except ValidationError as exc:
        raise SchemaError(first_error(exc, top="body")) from None


def parse_ack(document: Any) -> Ack:
    if not isinstance(document, dict):
        raise SchemaError("ack: not a JSON object")
    try:
        return Ack.model_validate(document)
    except ValidationError as exc:
        raise SchemaError(first_error(exc, top="body")) from None


def order_signing_bytes(order: Mapping[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in order.items() if k != "signature"})


def ack_signing_bytes(ack: Mapping[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in ack.items() if k not in ("signature", "receipt")})


def order_sha256(order: Mapping[str, Any]) -> str:
    """Digest of the whole signed order (signature included): what an ACK commits to."""
    return hashlib.sha256(canonical_json(dict(order))).hexdigest()


def sign_order(fields: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    unsigned = {k: v for k, v in fields.items() if k != "signature"}
    return {**unsigned, "signature": sign_b64(key, order_signing_bytes(unsigned))}


def verify_order(order: Mapping[str, Any], key: Ed25519PublicKey) -> bool:
    signature = order.get("signature")
    return isinstance(signature, str) and verify_b64(key, signature, order_signing_bytes(order))


def sign_ack(fields: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    unsigned = {k: v for k, v in fields.items() if k not in ("signature", "receipt")}
    return {**unsigned, "signature": sign_b64(key, ack_signing_bytes(unsigned))}


def verify_ack(ack: Mapping[str, Any], key: Ed25519PublicKey) -> bool:
    signature = ack.get("signature")
    return isinstance(signature, str) and verify_b64(key, signature, ack_signing_bytes(ack))


def new_order(
    *,
    treaty_id: str,
    tenant_id: str,
    region: str,
    gpu_hours: float,
    ttl: timedelta = timedelta(minutes=5),
    callback_url: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned order with a fresh random nonce."""
    moment = now or utc_now()
    return {
        "treaty_id": treaty_id,
        "tenant_id": tenant_id,
        "region": region,
        "gpu_hours": gpu_hours,
        "nonce": secrets.token_hex(16),
        "deadline_utc": format_rfc3339(moment + ttl),
        "callback_url": callback_url or f"https://{tenant_id}.tenants.aurora.local/callback",
    }
