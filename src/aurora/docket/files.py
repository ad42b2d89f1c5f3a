"""Writing a document's rendering beside its JSON: ``canary-72h.json`` → ``canary-72h.pdf``.

A rendering is published like the JSON it renders (:func:`aurora.gpg.publish`): with its
``.sha256`` and, given a key, its ``.asc``, in one durable step that never leaves a stale
signature beside new content.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aurora import gpg
from aurora.docket import render
from aurora.docket.render import Format

HtmlOf = Callable[[dict[str, Any], str], str]


def beside(json_path: Path, fmt: Format) -> Path:
    """Where the ``fmt`` rendering of the document at ``json_path`` goes."""
    return json_path.with_suffix(f".{fmt}")


def write_rendering(document: dict[str, Any], json_path: Path, fmt: Format,
                    html_of: HtmlOf, key: str | None = None, *,
                    gnupghome: Path | None = None) -> gpg.Published | None:
    """Render ``document`` as ``fmt`` beside ``json_path`` and publish it; None for json."""
    if fmt == "json":
        return None
    path = beside(json_path, fmt)
    return gpg.publish(path, render.render(document, fmt, path, html_of), key,
                       gnupghome=gnupghome)


def write_pdf(document: dict[str, Any], json_path: Path, html_of: HtmlOf,
              key: str | None = None, *, gnupghome: Path | None = None) -> gpg.Published:
    published = write_rendering(document, json_path, "pdf", html_of, key, gnupghome=gnupghome)
    assert published is not None
    return published
