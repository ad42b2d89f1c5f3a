"""RFC 8785 canonical JSON: the RFC's vectors, ES6 number formatting, fast path = reference."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.canonical import (
    StrictJSONError,
    canonical_json,
    parse_strict,
    reference_canonical_json,
)

JCS = Path(__file__).resolve().parents[1] / "testdata" / "jcs"


@pytest.mark.parametrize("name", sorted(p.name for p in (JCS / "input").iterdir()))
def test_rfc8785_vectors(name: str) -> None:
    value = json.loads((JCS / "input" / name).read_text(encoding="utf-8"))
    expected = (JCS / "output" / name).read_bytes()
    assert canonical_json(value) == expected
    assert reference_canonical_json(value) == expected


def test_es6_number_formatting_10k() -> None:
    lines = (JCS / "numbers" / "es6testfile-10k.txt").read_text().splitlines()
    assert len(lines) >= 10_000
    for line in lines:
        hexbits, expected = line.split(",")
        value = struct.unpack(">d", bytes.fromhex(hexbits.rjust(16, "0")))[0]
        if value != value or value in (float("inf"), float("-inf")):
            continue  # NaN/Infinity are not JSON
        assert canonical_json(value).decode() == expected, hexbits


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_fast_path_equals_reference(value: object) -> None:
    try:
        expected = reference_canonical_json(value)
    except StrictJSONError:
        with pytest.raises(StrictJSONError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "raw",
    [b'{"a":1,"a":2}', b'{"a":NaN}', b'[Infinity]', b'"\\ud800"', b"\xff\xfe", b"{", b"",
     b"[" * 100_000 + b"]" * 100_000],
)
def test_parse_strict_refuses(raw: bytes) -> None:
    with pytest.raises(StrictJSONError):
        parse_strict(raw)


def test_parse_strict_accepts_plain_json() -> None:
    assert parse_strict(b'{"a":[1,2.5,"\\u00e9"],"b":null}') == {"a": [1, 2.5, "é"], "b": None}
