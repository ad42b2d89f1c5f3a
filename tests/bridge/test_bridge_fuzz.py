"""Fuzzing the order endpoint: whatever arrives, the answer is a 4xx from DESIGN.md's
table (or a fill), never a 5xx other than 503, and unauthenticated junk never reaches
the ledger or the quotas."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Live

pytestmark = pytest.mark.integration
DESIGN_TABLE = {
    400: "bad_json", 401: "signature", 403: "policy", 409: "replay", 413: "too_large",
    422: ("schema", "expired"), 503: ("no_provider", "ledger"),
}
FIELDS = ("treaty_id", "tenant_id", "region", "gpu_hours", "nonce", "deadline_utc",
          "callback_url", "signature")
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def _check(live: Live, status: int, body: bytes) -> dict[str, Any]:
    assert status in DESIGN_TABLE or status == 200, (status, body[:200])
    answer = json.loads(body)
    if status != 200:
        allowed = DESIGN_TABLE[status]
        assert answer["error"] in (allowed if isinstance(allowed, tuple) else (allowed,))
        assert isinstance(answer["detail"], str)
    return answer


@FUZZ
@given(raw=st.binary(max_size=2048))
def test_random_bytes(live: Live, raw: bytes) -> None:
    before = live.ledger_size()
    response = live.post(None, raw=raw)
    _check(live, response.status_code, response.content)
    assert response.status_code in (400, 413, 422)
    assert live.ledger_size() == before


@FUZZ
@given(value=json_values)
def test_random_json_documents(live: Live, value: Any) -> None:
    before = live.ledger_size()
    try:
        raw = json.dumps(value).encode()
    except ValueError:
        return
    response = live.post(None, raw=raw)
    _check(live, response.status_code, response.content)
    assert response.status_code in (400, 422)
    assert live.ledger_size() == before


@FUZZ
@given(field=st.sampled_from(FIELDS), replacement=json_values,
       drop=st.booleans(), extra=st.none() | st.text(min_size=1, max_size=10))
def test_mutated_signed_orders(live: Live, field: str, replacement: Any, drop: bool,
                               extra: str | None) -> None:
    """Any change to a signed order is refused before it can reach policy or the ledger."""
    order = live.order()
    if drop:
        del order[field]
    elif order[field] == replacement:
        return
    else:
        order[field] = replacement
    if extra is not None and extra not in order:
        order[extra] = "x"
    before = (live.ledger_size(), live.metric("treaty_quota_used_gpu_hours"))
    try:
        raw = json.dumps(order).encode()
    except ValueError:
        return
    response = live.post(None, raw=raw)
    _check(live, response.status_code, response.content)
    assert response.status_code in (400, 401, 422)
    assert (live.ledger_size(), live.metric("treaty_quota_used_gpu_hours")) == before


@FUZZ
@given(unicode=st.text(min_size=8, max_size=40), field=st.sampled_from(
    ("nonce", "callback_url", "region", "tenant_id", "treaty_id")))
def test_unicode_in_every_field_of_a_validly_signed_order(live: Live, unicode: str,
                                                          field: str) -> None:
    """Signed by the tenant, so only the schema, policy or a provider can refuse it."""
    value = unicode if field != "callback_url" else f"https://example.com/{unicode}"
    order = live.order(**{field: value})
    response = live.post(order)
    _check(live, response.status_code, response.content)


def test_schemathesis_against_the_openapi_document(live: Live, tmp_path) -> None:
    binary = shutil.which("schemathesis", path=str(
        __import__("pathlib").Path(__import__("sys").executable).parent))
    assert binary, "schemathesis is a dev dependency"
    result = subprocess.run(
        [binary, "run", f"{live.stack.bridge_url}/openapi.json",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
         "response_schema_conformance,negative_data_rejection",
         "--max-examples", "60", "--seed", "1", "--workers", "1",
         "--report-dir", str(tmp_path), "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
