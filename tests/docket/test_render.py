"""The PDF a board reads, rendered from reports recorded from a real Prometheus.

Each report is built from the recorded answers (tests/slo/fixtures), rendered to PDF, and
read back with poppler (pdftotext, pdfimages, pdftoppm): the text holds the JSON's values,
each SLO with data has a chart that is drawn (its series colour on the page), an empty
window says "insufficient data" and draws nothing, and the same document gives the same
bytes (the signature of one rendering holds for every other).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy
import pytest
from PIL import Image

from aurora.docket import charts, render
from aurora.slo.report import build_report
from slo.scenarios import AT, WINDOW, RecordedSource, load
from slo.synthetic import TREATY

NAME = "canary-72h"


def report_for(scenario: str) -> dict[str, Any]:
    return build_report(RecordedSource(load(scenario)), treaty_id=TREATY, window=WINDOW, at=AT,
                        prometheus_url="http://127.0.0.1:9090")


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], Path]]:
    out = tmp_path_factory.mktemp("pdf")
    made = {}
    for scenario in ("compliant", "outage", "empty"):
        report = report_for(scenario)
        path = out / f"{scenario}.pdf"
        path.write_bytes(render.pdf(render.slo_report_html(report, NAME), report))
        made[scenario] = (report, path)
    return made


def text(path: Path, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(["pdftotext", *pages, "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True,
                          text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def images(path: Path) -> list[list[str]]:
    """``pdfimages -list`` rows of the images (not their alpha masks): page, num, type, ..."""
    listing = subprocess.run(["pdfimages", "-list", str(path)], check=True,
                             capture_output=True, text=True).stdout.splitlines()[2:]
    return [row.split() for row in listing if row.split()[2] == "image"]


def series_pixels(path: Path, page: int, tmp_path: Path) -> int:
    """Pixels of the measured series' colour on ``page`` rendered by pdftoppm."""
    prefix = tmp_path / f"p{page}"
    subprocess.run(["pdftoppm", "-r", "100", "-png", "-f", str(page), "-l", str(page),
                    str(path), str(prefix)], check=True, capture_output=True)
    image = Image.open(next(tmp_path.glob(f"p{page}-*.png"))).convert("RGB")
    want = numpy.array([int(charts.SERIES_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])
    close = numpy.abs(numpy.asarray(image, dtype=int) - want).max(axis=2) <= 40
    return int(close.sum())


def shown(value: Any) -> str:
    """A JSON number as the PDF prints it (as the JSON writes it)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value)


@pytest.mark.parametrize("scenario", ["compliant", "outage"])
def test_the_pdf_prints_the_reports_own_numbers(pdfs: dict[str, Any], scenario: str) -> None:
    report, path = pdfs[scenario]
    first = text(path, 1)
    assert TREATY in first and "72h" in first and "2025-10-25 00:00:00Z" in first
    assert report["status"].upper() in first
    whole = " ".join(text(path).split())  # lines re-joined: long numbers may wrap
    for key, entry in report["slos"].items():
        assert shown(entry["value"]) in first, (key, entry["value"])
        assert entry["status"] in first
        assert shown(entry["samples"]) in whole
        assert entry["query"] in whole.replace(" ", "") or entry["query"].replace(" ", "") \
            in whole.replace(" ", ""), key
    for budget in report["error_budgets"].values():
        assert f"{budget['spent']:.1%}" in first


def test_an_outage_is_shown_as_a_failure_not_a_reassurance(pdfs: dict[str, Any]) -> None:
    report, path = pdfs["outage"]
    assert report["status"] == "not compliant"
    first = text(path, 1)
    assert "NOT COMPLIANT" in first and "not met" in first
    failing = [e for e in report["slos"].values() if e["status"] == "not met"]
    assert failing
    for entry in failing:
        assert f"{entry['title']} = {shown(entry['value'])}" in " ".join(text(path).split())


def test_an_empty_window_says_insufficient_data_and_draws_no_chart(
        pdfs: dict[str, Any]) -> None:
    report, path = pdfs["empty"]
    assert report["status"] == "insufficient data"
    whole = text(path)
    assert "INSUFFICIENT DATA" in text(path, 1)
    assert whole.count("insufficient data: the window holds no samples") == len(report["slos"])
    assert images(path) == []


def test_each_slo_has_its_chart_and_it_is_drawn(pdfs: dict[str, Any], tmp_path: Path) -> None:
    report, path = pdfs["outage"]
    rows = images(path)
    # one chart per SLO, each on the SLO's own page (page 1 is the summary)
    assert [int(r[0]) for r in rows] == list(range(2, 2 + len(report["slos"])))
    for page, (key, entry) in enumerate(report["slos"].items(), start=2):
        assert entry["title"] in text(path, page)
        drawn = series_pixels(path, page, tmp_path)
        # the legend's sample line alone is under 100 px; a series across the chart is more
        assert drawn > 400, f"{key}: the chart on page {page} shows no series ({drawn} px)"
    # the empty report's SLO pages have no series drawn at all
    _, empty = pdfs["empty"]
    (tmp_path / "empty").mkdir()
    assert series_pixels(empty, 2, tmp_path / "empty") == 0


def test_the_chart_follows_the_series(pdfs: dict[str, Any]) -> None:
    """A chart drawn from other data (a stale chart) is not the same chart."""
    healthy, _ = pdfs["compliant"]
    outage, _ = pdfs["outage"]
    assert render.slo_charts(healthy)["fill_rate_p95"] != render.slo_charts(outage)["fill_rate_p95"]
    assert render.slo_charts(outage) == render.slo_charts(json.loads(json.dumps(outage)))


def test_the_same_document_gives_the_same_pdf(pdfs: dict[str, Any]) -> None:
    report, path = pdfs["outage"]
    assert render.pdf(render.slo_report_html(report, NAME), report) == path.read_bytes()
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True,
                          text=True).stdout
    assert "Oct 25 00:00:00 2025" in info  # the report's time, not the rendering's
    assert pages(path) == 1 + len(report["slos"]) + 2


def test_the_html_is_self_contained(pdfs: dict[str, Any]) -> None:
    report, _ = pdfs["compliant"]
    html = render.slo_report_html(report, NAME)
    assert html.count("data:image/png;base64,") == len(report["slos"])
    assert "http://" not in html.replace(report["prometheus"], "")


def test_the_record_of_a_home_is_in_the_report_and_on_the_page(home: Path,
                                                              tmp_path: Path) -> None:
    """A real ledger with a verified backup and a signed checkpoint: the evidence section
    names them, the first page carries the signed root, the commands name the files."""
    from datetime import timedelta

    from aurora.docket.evidence import gather
    from aurora.home import Home
    from aurora.ledger import Entry, Ledger
    from aurora.ledger.backup import backup

    aurora_home = Home(home)
    with Ledger.open(aurora_home) as ledger:
        ledger.append(Entry(kind="note", data={"what": "a record"}))
    info = backup(aurora_home)
    with Ledger.open(aurora_home) as ledger:
        note = ledger.checkpoint()
    report = report_for("compliant")
    from aurora.wire import utc_now

    now = utc_now()
    report["evidence"] = gather(aurora_home, since=now - timedelta(hours=1), until=now,
                                checkpoint_note=note)
    evidence = report["evidence"]
    assert evidence["ledger"]["available"] and evidence["ledger"]["checkpoint"]["note"] == note
    assert [b["file"] for b in evidence["backups"]["listed"]] == [info.file]
    assert evidence["backups"]["listed"][0]["file_check"] == "sha256 matches"
    assert evidence["incidents"]["available"] and evidence["incidents"]["total"] == 0
    path = tmp_path / "r.pdf"
    path.write_bytes(render.pdf(render.slo_report_html(report, NAME), report))
    first = text(path, 1)
    assert evidence["ledger"]["checkpoint"]["root"] in first
    whole = text(path)
    assert info.file in whole and "No incident was opened in the window." in whole
    assert f"aurora ledger consistency --old {evidence['ledger']['checkpoint']['size']}" in whole
    assert "gpg --verify canary-72h.pdf.asc canary-72h.pdf" in whole


def test_an_unreadable_record_is_said_so(tmp_path: Path) -> None:
    from datetime import timedelta

    from aurora.docket.evidence import gather
    from aurora.home import Home

    report = report_for("compliant")
    report["evidence"] = gather(Home(tmp_path), since=AT - timedelta(hours=72), until=AT)
    assert report["evidence"]["ledger"]["available"] is False
    html = render.slo_report_html(report, NAME)
    assert "ledger not available" in html and "backups not available" in html


def test_aurora_slo_render_writes_the_same_pdf_and_refuses_other_files(
        home: Path, tmp_path: Path) -> None:
    from aurora.slo.report import write_report

    report = report_for("outage")
    source = write_report(report, tmp_path / "canary-72h.json").path
    aurora = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aurora"
    done = subprocess.run([str(aurora), "slo", "render", str(source)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    signed = render.signed_form(report)  # the file's JSON, as anyone reads it back
    assert (tmp_path / "canary-72h.pdf").read_bytes() == \
        render.pdf(render.slo_report_html(signed, NAME), signed)
    other = tmp_path / "other.json"
    other.write_text('{"report": "something else"}')
    refused = subprocess.run([str(aurora), "slo", "render", str(other)], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")
    assert not (tmp_path / "other.pdf").exists()
