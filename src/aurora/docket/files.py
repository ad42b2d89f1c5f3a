"""Writing a document's rendering beside its JSON: ``canary-72h.json`` → ``canary-72h.pdf``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aurora.docket import render
from aurora.docket.render import Format
from aurora.ledger.files import atomic_write

HtmlOf = Callable[[dict[str, Any], str], str]


def beside(json_path: Path, fmt: Format) -> Path:
    """Where the ``fmt`` rendering of the document at ``json_path`` goes."""
    return json_path.with_suffix(f".{fmt}")


def write_rendering(document: dict[str, Any], json_path: Path, fmt: Format,
                    html_of: HtmlOf) -> Path | None:
    """Render ``document`` as ``fmt`` beside ``json_path`` (durably); None for json."""
    if fmt == "json":
        return None
    path = beside(json_path, fmt)
    atomic_write(path, render.render(document, fmt, path, html_of))
    return path


def write_pdf(document: dict[str, Any], json_path: Path, html_of: HtmlOf) -> Path:
    path = write_rendering(document, json_path, "pdf", html_of)
    assert path is not None
    return path
