"""Canonical JSON (RFC 8785) for signing, and strict JSON parsing for input.

Signatures in Aurora are always over ``canonical_json(obj)``. Input from the
network is parsed with ``parse_strict``, which refuses what JSON parsers
usually let through and what would make two readers disagree about a
document: duplicate keys, NaN/Infinity, lone surrogates, invalid UTF-8.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785


class StrictJSONError(ValueError):
    """The bytes are not one strict JSON document."""


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) serialisation of ``obj``."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
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
