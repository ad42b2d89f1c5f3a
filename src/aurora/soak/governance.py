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

from aurora.digests import sha256_file
from aurora.docket.files import write_pdf
from aurora.docket.render import slo_report_html
from aurora.errors import AuroraError
from aurora.slo import gpg
from aurora.slo.queries import QUANTILE_RECORDS
from aurora.soak.signing import export_public
from aurora.soak.tasks import TaskContext, TaskOutcome, tar_paths, write_slo_report
from aurora.wire import format_rfc3339, utc_now

EXPORTED = (*QUANTILE_RECORDS, "treaty_fill_rate", "treaty_provenance_coverage")
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
    out.write_text(json.dumps({"start": format_rfc3339(start), "end": format_rfc3339(end),
                               "step_seconds": step, "series": series}, indent=1))
    return sum(len(v) for v in series.values())


def governance(ctx: TaskContext) -> TaskOutcome:
    reports = ctx.home.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    # the checkpoint first: the report names the signed root it was written against
    note = ctx.evidence.ledger.checkpoint()
    checkpoint = reports / f"{BASENAME}.checkpoint"
    checkpoint.write_text(note, encoding="utf-8")
    head = note.splitlines()
    ctx.say(f"checkpoint at tree size {head[1]}")

    report_path = reports / f"{BASENAME}.json"
    document = write_slo_report(ctx, 72 * 3600, report_path, checkpoint_note=note)
    pdf_path = write_pdf(document, report_path, slo_report_html)
    ctx.say(f"wrote {pdf_path} from {report_path.name}")
    files = [report_path, pdf_path]
    problems: list[str] = []
    detail: dict[str, Any] = {"window": document["window"], "compliant": document["compliant"],
                              "report_sha256": sha256_file(report_path),
                              "pdf_sha256": sha256_file(pdf_path), "key_id": None,
                              "fingerprint": None, "signed": False}

    key = ctx.key_id
    if key:
        fingerprint = gpg.check_secret_key(key, gnupghome=ctx.gnupghome)
        pub = export_public(fingerprint, ctx.gnupghome, reports / f"{BASENAME}.pub.asc")
        checks = []
        for path in (report_path, pdf_path):
            signed = gpg.sign(path, key, gnupghome=ctx.gnupghome)
            check = gpg.verify(path, gnupghome=ctx.gnupghome, expected_fingerprint=fingerprint)
            files += [signed.signature, signed.checksum]
            checks.append(check)
            ctx.say(f"signed {signed.signature} with {fingerprint}: {check.detail}")
            if not check.ok:
                problems.append(f"{path.name}: signature does not verify: {check.detail}")
        files.append(pub)
        detail.update(key_id=key, fingerprint=fingerprint, signed=True,
                      signature_check=checks[0].detail, pdf_signature_check=checks[1].detail)
    else:
        for path in (report_path, pdf_path):
            checksum, _ = gpg.write_checksum(path)
            files.append(checksum)
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
    manifest.write_text(json.dumps({
        "generated_at": format_rfc3339(utc_now()),
        "files": {str(p.relative_to(ctx.home.root)): sha256_file(p) for p in files}},
        indent=2, sort_keys=True), encoding="utf-8")
    bundle = reports / "governance-72h.tar.gz"
    tar_paths(ctx.home, bundle, [*files, manifest])
    files += [manifest, bundle]
    ctx.say(f"bundled {bundle}")
    return TaskOutcome(not problems, "; ".join(problems) or
                       f"{report_path.name} signed by {detail['fingerprint']}, bundle filed",
                       files, detail)

