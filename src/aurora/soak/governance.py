"""Hour 72: the signed governance bundle the seed attaches to the governance docket.

``reports/canary-72h.json`` (the seed's reporter over 72 h of soak clock) and
``canary-72h.pdf`` (the same document for the board, rendered from that JSON), each with
its detached signature ``.asc`` and ``.sha256``, the public key that signed them
(``.pub.asc``), the ledger's signed checkpoint at that moment (``canary-72h.checkpoint``,
the "Merkle root snapshot"),
the 72 h metrics archive (``metrics-72h.tar.gz``: the first three daily archives and a
Prometheus export of the SLO series over the soak so far) — bundled as
``reports/governance-72h.tar.gz`` with a ``MANIFEST.json`` of sha256 sums.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aurora import durable, gpg
from aurora.digests import sha256_file
from aurora.docket.files import write_pdf
from aurora.docket.render import slo_report_html
from aurora.errors import AuroraError
from aurora.slo.queries import FILL_RATE_SERIES, PROVENANCE_SERIES, QUANTILE_RECORDS
from aurora.soak.tasks import TaskContext, TaskOutcome, tar_paths, write_slo_report
from aurora.wire import format_rfc3339, utc_now

EXPORTED = (*QUANTILE_RECORDS, FILL_RATE_SERIES, PROVENANCE_SERIES)
BASENAME = "canary-72h"


def _export(ctx: TaskContext, out: Path) -> int:
    """The SLO series over the soak's real time so far, from Prometheus (range queries)."""
    start, end = ctx.state.real_start, datetime.now(UTC)
    step = max(1.0, (end - start).total_seconds() / 500)
    series: dict[str, Any] = {}
    with ctx.prometheus() as prom:
        for name in EXPORTED:
            series[name] = [{"labels": s.labels, "points": s.points}
                            for s in prom.query_range(name, start, end, step)]
    durable.atomic_write(out, json.dumps({"start": format_rfc3339(start),
                                          "end": format_rfc3339(end), "step_seconds": step,
                                          "series": series}, indent=1).encode())
    return sum(len(v) for v in series.values())


def governance(ctx: TaskContext) -> TaskOutcome:
    reports = ctx.home.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    # the checkpoint first: the report names the signed root it was written against
    note = ctx.evidence.ledger.checkpoint()
    checkpoint = durable.atomic_write(reports / f"{BASENAME}.checkpoint", note.encode())
    head = note.splitlines()
    ctx.say(f"checkpoint at tree size {head[1]}")

    report_path = reports / f"{BASENAME}.json"
    key = ctx.key_id
    # the JSON and its PDF each signed (or visibly unsigned) in the durable step that writes it
    document, report = write_slo_report(ctx, 72 * 3600, report_path, key,
                                        checkpoint_note=note)
    pdf = write_pdf(document, report_path, slo_report_html, key, gnupghome=ctx.gnupghome)
    ctx.say(f"wrote {pdf.path} from {report_path.name}")
    files = [report_path, report.checksum, pdf.path, pdf.checksum]
    problems: list[str] = []
    detail: dict[str, Any] = {"window": document["window"], "compliant": document["compliant"],
                              "report_sha256": report.sha256, "pdf_sha256": pdf.sha256,
                              "key_id": None, "fingerprint": None, "signed": False}

    if key and report.fingerprint is not None:
        fingerprint = report.fingerprint
        pub = gpg.export_public(fingerprint, ctx.gnupghome, reports / f"{BASENAME}.pub.asc")
        checks = []
        for published in (report, pdf):
            assert published.signature is not None  # publish signs whenever given a key
            check = gpg.verify_detached(published.path, gnupghome=ctx.gnupghome,
                                        expected_fingerprint=fingerprint)
            files.append(published.signature)
            checks.append(check)
            ctx.say(f"signed {published.signature} with {fingerprint}: {check.detail}")
            if not check.ok:
                problems.append(f"{published.path.name}: signature does not verify: "
                                f"{check.detail}")
        files.append(pub)
        detail.update(key_id=key, fingerprint=fingerprint, signed=True,
                      signature_check=checks[0].detail, pdf_signature_check=checks[1].detail)
    else:
        durable.remove_durably([reports / f"{BASENAME}.pub.asc"])
        problems.append("no GnuPG key (--key or $AURORA_GPG_KEY): the report is not signed")
        ctx.say(problems[-1])

    files.append(checkpoint)
    detail["checkpoint"] = {"size": int(head[1]), "root_b64": head[2]}

    export = reports / "prometheus-72h.json"
    try:
        detail["exported_series"] = _export(ctx, export)
        extra = [export]
    except AuroraError as exc:
        problems.append(f"Prometheus export failed: {exc}")
        extra = []
    dailies = [ctx.home.root / f"metrics-{r.scheduled:%Y%m%d}.tar.gz"
               for r in ctx.state.records("archive") if r.day <= 3]
    metrics = reports / "metrics-72h.tar.gz"
    tar_paths(ctx.home, metrics, [p for p in dailies if p.exists()] + extra)
    files.append(metrics)

    manifest = reports / f"{BASENAME}.manifest.json"
    durable.atomic_write(manifest, json.dumps({
        "generated_at": format_rfc3339(utc_now()),
        "files": {str(p.relative_to(ctx.home.root)): sha256_file(p) for p in files}},
        indent=2, sort_keys=True).encode())
    bundle = reports / "governance-72h.tar.gz"
    tar_paths(ctx.home, bundle, [*files, manifest])
    files += [manifest, bundle]
    ctx.say(f"bundled {bundle}")
    return TaskOutcome(not problems, "; ".join(problems) or
                       f"{report_path.name} signed by {detail['fingerprint']}, bundle filed",
                       files, detail)

