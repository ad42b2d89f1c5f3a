"""The one parser of each kind of outside input, at its extremes (issue 13, defects 1, 2, 6, 7).

Pure: times (``aurora.wire.parse_rfc3339``), durations, canonical base64
(``aurora.keys.b64decode_strict``) and what is shown on a terminal (``aurora.terminal``).
"""

from __future__ import annotations

import base64
import json
import string
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurora.durations import MAX_DURATION_SECONDS, parse_duration
from aurora.keys import Ed25519PrivateKey, b64decode_strict, sign_b64, verify_b64
from aurora.ledger.errors import NoteError
from aurora.ledger.note import Verifier
from aurora.terminal import json_text, shown, shown_markup
from aurora.wire import EARLIEST_TIME, LATEST_TIME, SchemaError, parse_order, parse_rfc3339

EXTREMES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+00:00"]


@pytest.mark.parametrize("text", EXTREMES)
def test_an_extreme_time_is_a_value_error_not_an_overflow(text: str) -> None:
    with pytest.raises(ValueError, match="range"):
        parse_rfc3339(text)


@given(year=st.integers(1, 9999), month=st.integers(1, 12), day=st.integers(1, 31),
       hour=st.integers(0, 24), minute=st.integers(0, 60), second=st.integers(0, 60),
       sign=st.sampled_from("+-"), off_h=st.integers(0, 99), off_m=st.integers(0, 99))
def test_any_rfc3339_shaped_text_parses_in_range_or_raises_value_error(
        year: int, month: int, day: int, hour: int, minute: int, second: int, sign: str,
        off_h: int, off_m: int) -> None:
    text = (f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
            f"{sign}{off_h:02d}:{off_m:02d}")
    try:
        moment = parse_rfc3339(text)
    except ValueError:
        return
    assert EARLIEST_TIME <= moment <= LATEST_TIME
    # and what callers do with it stays in range: a day either side, .timestamp()
    assert (moment + timedelta(days=1)).timestamp() > (moment - timedelta(days=1)).timestamp()


@pytest.mark.parametrize("text", EXTREMES)
def test_an_order_with_an_extreme_deadline_is_a_schema_error(text: str) -> None:
    order = {"treaty_id": "AURORA-AKASH-001", "tenant_id": "tenant-42", "region": "eu-west-1",
             "gpu_hours": 1.0, "nonce": "n" * 16, "deadline_utc": text,
             "callback_url": "https://x.example/cb", "signature": "A" * 86 + "=="}
    with pytest.raises(SchemaError, match="deadline_utc"):
        parse_order(order)


@pytest.mark.parametrize("text", ["99999999d", "1" + "0" * 400 + "s",
                                  f"{MAX_DURATION_SECONDS + 1}s", "5300000w"])
def test_a_duration_past_a_century_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration(text)


def test_a_century_is_still_a_duration() -> None:
    assert parse_duration("36500d") == 36500 * 86400
    # and it stays inside datetime's range from any accepted time
    assert LATEST_TIME + timedelta(seconds=MAX_DURATION_SECONDS) < datetime.max.replace(
        tzinfo=UTC)


# --- canonical base64 ----------------------------------------------------------------------

B64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"


def _respellings(canonical: str) -> list[str]:
    """Other spellings of the same bytes: the unused low bits of the last data character."""
    pad = len(canonical) - len(canonical.rstrip("="))
    if pad == 0:
        return []
    unused = 4 if pad == 2 else 2
    at = len(canonical) - pad - 1
    value = B64.index(canonical[at])
    return [canonical[:at] + B64[value | low] + canonical[at + 1:]
            for low in range(1, 1 << unused)]


@given(st.binary(max_size=70))
def test_only_the_canonical_base64_decodes(raw: bytes) -> None:
    canonical = base64.b64encode(raw).decode()
    assert b64decode_strict(canonical) == raw
    for other in _respellings(canonical):
        assert base64.b64decode(other) == raw  # what the stdlib accepts
        with pytest.raises(ValueError, match="canonical"):
            b64decode_strict(other)


def test_a_respelt_signature_does_not_verify() -> None:
    key = Ed25519PrivateKey.generate()
    signature = sign_b64(key, b"order")
    assert verify_b64(key.public_key(), signature, b"order")
    respelt = _respellings(signature)
    assert len(respelt) == 15
    assert not any(verify_b64(key.public_key(), s, b"order") for s in respelt)


def test_a_respelt_verifier_key_is_refused() -> None:
    verifier = Verifier.from_public_key("aurora.local/ledger", Ed25519PrivateKey.generate()
                                        .public_key())
    name, key_id, key_b64 = verifier.vkey().split("+", 2)
    for other in _respellings(key_b64):
        with pytest.raises(NoteError, match="base64"):
            Verifier.from_vkey(f"{name}+{key_id}+{other}")


# --- what a terminal is shown ---------------------------------------------------------------

HOSTILE = ["\x1b[2J\x1b[1;1Hacknowledged: by=alice", "ok\r\nacknowledged: 09:00 by root",
           "nul\x00byte", "\u202eecilA yb degdelwonkca", "c1\x9b31m", "line\u2028sep",
           "zero\u200bwidth", "bom\ufeff", "del\x7f"]


@pytest.mark.parametrize("text", HOSTILE)
def test_shown_text_has_no_control_or_format_character(text: str) -> None:
    out = shown(text)
    assert out.isprintable() and "\u202e" not in out and "\u2028" not in out
    assert "\\" in out  # escaped, visibly


UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"}


@given(st.text())
def test_shown_never_holds_a_control_or_format_character(text: str) -> None:
    out = shown(text)
    assert not any(unicodedata.category(c) in UNSAFE for c in out)
    if not any(unicodedata.category(c) in UNSAFE for c in text):
        assert out == text  # ordinary text, any script, is shown as it is


def test_markup_is_escaped_for_rich() -> None:
    assert shown_markup("[bold red]ACK[/]") == "\\[bold red]ACK\\[/]"


@given(st.recursive(st.none() | st.text() | st.integers(),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=10))
def test_json_text_is_the_same_json_without_unsafe_characters(value: object) -> None:
    out = json_text(value, indent=2)
    assert json.loads(out) == value
    assert not any(unicodedata.category(c) in UNSAFE and c not in "\n" for c in out)
