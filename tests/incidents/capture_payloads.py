"""Record real Alertmanager webhook bodies into tests/incidents/payloads/.

Runs the installed Alertmanager (0.25 here) on free loopback ports with
ops/alertmanager.yml rendered for short intervals, posts alerts to its API
(/api/v2/alerts), and saves what it delivers to a throwaway HTTP listener standing where
the receiver would be. Re-run after an Alertmanager upgrade or a change of the routing tree
(group keys include the route):

    .venv/bin/python tests/incidents/capture_payloads.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).parent / "payloads"
TREATY = "AURORA-AKASH-001"


class Listener:
    """Collects every POSTed body; stands in for the receiver."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, match: Callable[[dict[str, Any]], bool], *, after: int = 0,
                 timeout: float = 30.0) -> tuple[int, bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index in range(after, len(self.bodies)):
                if match(json.loads(self.bodies[index])):
                    return index, self.bodies[index]
            time.sleep(0.1)
        raise TimeoutError("Alertmanager did not deliver the expected notification")


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def post_alerts(base: str, alerts: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{base}/api/v2/alerts", json=alerts, timeout=5.0)
    response.raise_for_status()


def am_alert(name: str, *, ends: datetime, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "treaty_id": TREATY, **labels},
        "annotations": {"summary": f"{name} ({labels.get('severity', '')})",
                        "runbook_url": "docs/RUNBOOK.md#alerts"},
        "startsAt": stamp(datetime.now(UTC) - timedelta(minutes=15)),
        "endsAt": stamp(ends),
        "generatorURL": "http://127.0.0.1:9090/graph",
    }


def capture() -> dict[str, bytes]:
    sys.path.insert(0, str(REPO / "tests"))
    from aurora.config import load_stack
    from aurora.home import Home
    from aurora.incidents.alertmanager import alertmanager_argv, render_alertmanager_config
    from support import free_port

    listener = Listener()
    home = Home(REPO)
    stack = load_stack(home).model_copy(update={"incidents_port": listener.port})
    saved: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = render_alertmanager_config(home, stack, group_wait="1s", group_interval="2s",
                                            repeat_interval="3s", out_dir=Path(tmp))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(alertmanager_argv(config, port, Path(tmp) / "data"),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(f"{base}/-/ready", timeout=1.0).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("Alertmanager did not become ready")
                time.sleep(0.1)
            later = datetime.now(UTC) + timedelta(minutes=10)

            def group_of(name: str, status: str) -> Callable[[dict[str, Any]], bool]:
                return lambda doc: (doc["commonLabels"].get("alertname") == name
                                    and doc["status"] == status)

            fill = am_alert("AuroraFillRateLow", ends=later, severity="critical")
            post_alerts(base, [fill])
            first, saved["fill-rate-firing.json"] = listener.wait_for(
                group_of("AuroraFillRateLow", "firing"))
            _, saved["fill-rate-resend.json"] = listener.wait_for(
                group_of("AuroraFillRateLow", "firing"), after=first + 1)
            post_alerts(base, [{**fill, "endsAt": stamp(datetime.now(UTC))}])
            _, saved["fill-rate-resolved.json"] = listener.wait_for(
                group_of("AuroraFillRateLow", "resolved"))

            post_alerts(base, [am_alert("AuroraRttP95High", ends=later, severity="warning",
                                        instance=f"bridge-{n}") for n in (1, 2)])
            _, saved["rtt-two-alerts.json"] = listener.wait_for(
                lambda doc: group_of("AuroraRttP95High", "firing")(doc)
                and len(doc["alerts"]) == 2)

            post_alerts(base, [am_alert("AuroraFillRateErrorBudgetBurn", ends=later,
                                        severity="ticket", slo="fill_rate")])
            _, saved["burn-rate-ticket.json"] = listener.wait_for(
                group_of("AuroraFillRateErrorBudgetBurn", "firing"))
        finally:
            process.terminate()
            process.wait(timeout=10)
            listener.server.shutdown()
    return saved


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, raw in capture().items():
        # keep Alertmanager's bytes; only pretty-print for review (same JSON document)
        (OUT / name).write_text(json.dumps(json.loads(raw), indent=2) + "\n")
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
