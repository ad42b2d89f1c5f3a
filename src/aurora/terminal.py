"""Showing text that came from outside (alert labels, orders, notes) on a terminal.

A label can carry ANSI escapes, CR/LF, NUL or a bidi override (U+202E) that would rewrite
what the operator sees (a forged "acknowledged:" line). Everything from outside goes
through ``shown`` (plain text), ``shown_markup`` (rich, which also reads ``[...]`` as
markup) or ``json_text`` before it reaches a terminal. Pure.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

# Cc: C0, DEL and C1 controls; Cf: bidi overrides/isolates, zero-width and other format
# characters; Zl/Zp: line and paragraph separators; Cs: lone surrogates; Cn: unassigned
# (a later Unicode may make them anything).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})
_NON_ASCII = re.compile(r"[^\x20-\x7e]")  # incl. C0 and DEL
_BEYOND_ASCII = re.compile(r"[^\x00-\x7e]")  # DEL too: JSON leaves it raw


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def shown(value: object) -> str:
    """``str(value)`` with every control or format character written as an escape."""
    text = str(value)
    return _NON_ASCII.sub(lambda m: _escape(m[0]) if _unsafe(m[0]) else m[0], text) \
        if not text.isascii() or not text.isprintable() else text


def shown_markup(value: object) -> str:
    """``shown`` and escaped for rich markup (``[bold]`` stays text)."""
    from rich.markup import escape

    return escape(shown(value))


def json_text(value: Any, *, indent: int | None = None) -> str:
    """JSON for a terminal: readable non-ASCII kept, control/format characters ``\\uXXXX``.

    JSON itself escapes C0 controls; C1, bidi and separators are legal raw in a JSON
    string, so they are escaped here (still valid JSON: they can only occur in strings).
    """
    text = json.dumps(value, indent=indent, ensure_ascii=False)  # C0 in strings escaped
    return _BEYOND_ASCII.sub(lambda m: _json_escape(m[0]) if _unsafe(m[0]) else m[0], text)


def _json_escape(char: str) -> str:
    return json.dumps(char)[1:-1] if ord(char) > 0xFFFF else f"\\u{ord(char):04x}"
