"""Ingest of one Alertmanager notification with N alerts in one group (issue 13, defect 3).

    .venv/bin/python benchmarks/incident_ingest_bench.py [--alerts 400,2000]

Prints, per N: body size, parse time, ingest time (ledger appends included) and how many
events were read back from the index during the ingest (0: decided in memory).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from aurora.home import Home  # noqa: E402
from aurora.incidents.model import Event  # noqa: E402
from aurora.incidents.service import IncidentStore  # noqa: E402
from aurora.incidents.webhook import parse_webhook  # noqa: E402
from support import make_home  # noqa: E402


def payload(n: int) -> bytes:
    alerts = [{"status": "firing", "labels": {"alertname": "TreatyFillRateLow",
                                              "treaty_id": "AURORA-AKASH-001",
                                              "instance": f"node-{i}"},
               "annotations": {"summary": "bench"}, "startsAt": "2026-11-25T08:45:00Z",
               "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://127.0.0.1:9090",
               "fingerprint": f"{i:016x}"} for i in range(n)]
    return json.dumps({"receiver": "r", "status": "firing", "alerts": alerts,
                       "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "http://127.0.0.1:9093", "version": "4",
                       "groupKey": "bench", "truncatedAlerts": 0}).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", default="400,2000")
    args = parser.parse_args()
    reads = [0]
    original = Event.from_data.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Event], *a: Any, **k: Any) -> Event:
        reads[0] += 1
        return original(cls, *a, **k)  # type: ignore[no-any-return]

    Event.from_data = classmethod(counting)  # type: ignore[method-assign, assignment]
    for n in (int(x) for x in args.alerts.split(",")):
        home = Home(make_home(Path(tempfile.mkdtemp(prefix="ingest-bench-")) / "home"))
        raw = payload(n)
        with IncidentStore.open(home, write=True) as store:
            started = time.perf_counter()
            parsed = parse_webhook(raw)
            parsed_at = time.perf_counter()
            reads[0] = 0
            result = store.ingest(parsed)
            done = time.perf_counter()
        print(f"{n} alerts ({len(raw) / 1024:.0f} KiB): parse {parsed_at - started:.2f} s, "
              f"ingest {done - parsed_at:.2f} s ({len(result.joined) + len(result.opened)} "
              f"events), {reads[0]} events re-read from the index")


if __name__ == "__main__":
    main()
