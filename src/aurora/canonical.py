"""Canonical JSON (RFC 8785) for signing, and strict JSON parsing for input.

Signatures in Aurora are always over ``canonical_json(obj)``. Input from the
network is parsed with ``parse_strict``, which refuses what JSON parsers
usually let through and what would make two readers disagree about a
document: duplicate keys, NaN/Infinity, lone surrogates, invalid UTF-8.
"""

from __future__ import annotations

import json
import math
from typing import Any

import rfc8785

from aurora.errors import AuroraError

_SAFE_INT = (1 << 53) - 1


class StrictJSONError(AuroraError, ValueError):
    """The bytes are not one strict JSON document."""


class _NeedsReference(Exception):
    pass


def _plain(value: Any) -> Any:
    """``value`` restricted to what ``json.dumps`` already writes exactly as RFC 8785 does.

    For these, sorted-key compact ``json.dumps`` *is* JCS: ASCII keys sort the same
    by code point as by UTF-16 unit; ints within ±(2^53−1) print the same; a float
    whose ``repr`` has no exponent prints the same shortest round-trip digits
    (integer-valued floats become ints, since JCS writes ``2.0`` as ``2``); string
    escaping is identical. Anything else goes to the reference implementation.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if -_SAFE_INT <= value <= _SAFE_INT:
            return value
        raise _NeedsReference
    if kind is float:
        if value.is_integer():
            if -_SAFE_INT <= value <= _SAFE_INT:
                return int(value)
            raise _NeedsReference
        if "e" in repr(value) or not math.isfinite(value):
            raise _NeedsReference
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                raise _NeedsReference
            out[key] = _plain(item)
        return out
    if kind is list:
        return [_plain(item) for item in value]
    raise _NeedsReference


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) serialisation of ``obj``.

    Plain data (see ``_plain``) takes a fast path through the C JSON encoder,
    several times quicker than the pure-Python reference that handles the rest;
    tests hold the two to the same bytes on the RFC vectors and random values.
    """
    try:
        text = json.dumps(_plain(obj), ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")
    except (_NeedsReference, UnicodeEncodeError, RecursionError):
        pass
    return reference_canonical_json(obj)


def reference_canonical_json(obj: Any) -> bytes:
    """RFC 8785 by the ``rfc8785`` library, for any value."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, RecursionError) as exc:
        raise StrictJSONError(f"cannot canonicalise: {exc}") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise StrictJSONError(f"{name} is not valid JSON")


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_strict(data: bytes | str) -> Any:
    """Parse one JSON document, refusing duplicate keys, NaN/Infinity and bad Unicode."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise StrictJSONError("body is not UTF-8") from exc
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except StrictJSONError:
        raise
    except RecursionError as exc:
        raise StrictJSONError("JSON nested too deeply") from exc
    except ValueError as exc:
        raise StrictJSONError(str(exc).split(":")[0]) from exc
    # \ud800 escapes decode to lone surrogates that no UTF-8 writer can store.
    if "\\u" in text and _has_lone_surrogate(json.dumps(value, ensure_ascii=False)):
        raise StrictJSONError("string holds a lone UTF-16 surrogate")
    return value
