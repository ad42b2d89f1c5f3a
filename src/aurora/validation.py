"""One formatter for pydantic validation errors: the first problem, named by its field.

Used by everything that validates outside input or files with pydantic (orders, ACKs,
webhooks, config files) so that a bad field reads the same everywhere:
``alerts.0.startsAt: Value error, out of range: ...``.
"""

from __future__ import annotations

from pydantic import ValidationError


def first_error(exc: ValidationError, *, top: str = "(top level)") -> str:
    """``<dotted location>: <message>`` of the first error; ``top`` names an empty location."""
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in err["loc"]) or top
    return f"{where}: {err['msg']}"
