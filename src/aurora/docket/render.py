"""HTML and PDF of a signed document: the Jinja2 templates, WeasyPrint for the PDF.

``slo_report_html(report, name)`` and ``gate_html(verdict, name)`` render the document as
it is (its canonical JSON is what was, or will be, signed); ``pdf(html, document)``
prints it. The PDF's dates are the document's own ``generated_at`` and its identifier is
derived from the document's bytes, so the same document always gives the same PDF.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any, Literal

from aurora.canonical import canonical_json
from aurora.docket import charts
from aurora.errors import AuroraError

Format = Literal["json", "html", "pdf"]


class RenderError(AuroraError):
    """The PDF could not be made (WeasyPrint or its Pango libraries missing)."""

    exit_code = 2


def _data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("aurora.docket", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_num, pct=_pct, ms=_ms, dur=_duration, when=_when)
    return env


def _num(value: Any) -> str:
    """A number written as the JSON writes it (a reader finds the same digits), or "—"."""
    if value is None:
        return "—"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value:.1%}"


def _ms(value: Any) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _when(text: Any) -> str:
    """RFC 3339 as "2025-10-25 00:00:00Z" (the seconds a board reads)."""
    if not text:
        return "—"
    return str(text).replace("T", " ").split(".")[0].rstrip("Z") + "Z"


def slo_charts(report: dict[str, Any]) -> dict[str, str | None]:
    """SLO key → its chart (a data: URI), None where the series holds no data."""
    out: dict[str, str | None] = {}
    for key, entry in report["slos"].items():
        series = entry.get("series") or {}
        objective = entry["objective"]
        out[key] = _data_uri(charts.line_chart(
            [(float(t), v) for t, v in series.get("points") or []], unit=objective["unit"],
            op=objective["op"], objective=objective["target"], alert=entry.get("alert")))
    return out


def slo_report_html(report: dict[str, Any], name: str) -> str:
    """The SLO report (``aurora slo report``, canary-72h) as one self-contained HTML page.

    ``name`` is the report's file name without extension (the commands refer to it)."""
    return str(_env().get_template("slo-report.html.j2").render(
        r=report, name=name, charts=slo_charts(report), created=_created(report)))


def gate_html(verdict: dict[str, Any], name: str) -> str:
    """The Day-7 gate's verdict document as HTML."""
    items = {item["key"]: item for item in verdict["items"]}
    slo = items.get("slo", {}).get("evidence", {})
    gate_charts: dict[str, str | None] = {}
    if slo.get("source") == "prometheus":
        from aurora.slo.catalog import OBJECTIVE
        from aurora.slo.report import alert_entry

        for key, objective in OBJECTIVE.items():
            gate_charts[key] = _data_uri(charts.line_chart(
                charts.segment_points(slo.get("segments") or [], key), unit=objective.unit,
                op=objective.op, objective=objective.target, alert=alert_entry(key)))
    return str(_env().get_template("day7-gate.html.j2").render(
        g=verdict, items=items, name=name, charts=gate_charts, created=_created(verdict)))


def _created(document: dict[str, Any]) -> str | None:
    text = document.get("generated_at")
    if not isinstance(text, str):
        return None
    from aurora.wire import parse_rfc3339

    return parse_rfc3339(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pdf(html: str, document: dict[str, Any]) -> bytes:
    """``html`` printed to PDF; deterministic for a given document."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: Pango's shared libraries are missing
        raise RenderError(f"cannot make PDFs: {exc} (Debian: scripts/ensure-system-deps.sh "
                          "installs libpango-1.0-0 and libpangoft2-1.0-0)") from None
    # WeasyPrint warns about every CSS property it ignores; the operator needs none of it
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    digest = hashlib.sha256(canonical_json(document)).hexdigest()
    with _source_date(document):
        return bytes(weasyprint.HTML(string=html).write_pdf(
            pdf_identifier=digest[:32].encode(), uncompressed_pdf=False))


@contextlib.contextmanager
def _source_date(document: dict[str, Any]) -> Iterator[None]:
    """fontTools stamps the embedded font subsets with the time, unless SOURCE_DATE_EPOCH
    (reproducible-builds.org) says otherwise: the document's own time, then."""
    from aurora.wire import parse_rfc3339

    text = document.get("generated_at")
    epoch = str(int(parse_rfc3339(text).timestamp())) if isinstance(text, str) else "0"
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = epoch
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


def signed_form(document: dict[str, Any]) -> dict[str, Any]:
    """The document as its signed bytes read back (canonical JSON writes 259200.0 as
    259200): what anyone re-rendering the signed file gets, so what is rendered here."""
    parsed: dict[str, Any] = json.loads(canonical_json(document))
    return parsed


def render(document: dict[str, Any], fmt: Format, path: Path,
           html_of: Callable[[dict[str, Any], str], str]) -> bytes:
    """The file content of ``document`` in ``fmt`` (json: canonical JSON, like signing)."""
    if fmt == "json":
        return canonical_json(document)
    document = signed_form(document)
    name = path.name.rsplit(".", 1)[0]
    html = html_of(document, name)
    return html.encode() if fmt == "html" else pdf(html, document)

