"""One running Aurora stack for a test module: start, query, drive, stop (by PID files).

Everything runs for real (``aurora.stack.up``): providers, bridge, incident receiver,
Alertmanager, Prometheus and the traffic generator. Prometheus scrapes and evaluates every
second and its rules are time-compressed (``TIME_SCALE``) so that a 15-minute ``for:``
fits in a test; the bridge's fill window is 10 s with a fill-rate sample every 2 s.
Nothing here asserts on time: every wait polls until a generous deadline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from aurora.config import StackConfig, load_stack
from aurora.home import Home
from aurora.stack import UpOptions, down, up
from incidents.receiver_api import list_incidents, webhooks_accepted
from slo.conftest import wait_until as poll
from support import make_home

T = TypeVar("T")

# 15m -> 4 s (floored at 4 scrape intervals), 1h -> 15 s, 6h -> 90 s, 1d -> 6 min
TIME_SCALE = 1 / 240
TRAFFIC_RATE = 5.0  # orders per second: enough samples per second, SLOs comfortably met
BRIDGE_ENV = {
    "AURORA_FILL_WINDOW": "10s",
    "AURORA_FILL_BUCKET_EVERY": "2s",
    "AURORA_PROVENANCE_WINDOW": "5m",
}
WAIT = 90.0  # the longest any single condition may take to appear


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = WAIT) -> T:
    """Poll ``probe`` (every 0.5 s) until it returns something truthy; fail the test after
    ``timeout``."""
    found: T = poll(probe, timeout, what, interval=0.5)
    return found


@dataclass
class LiveStack:
    home: Home
    stack: StackConfig
    started: float = field(default_factory=time.monotonic)

    @property
    def prometheus(self) -> str:
        return self.stack.prometheus_url

    # --- Prometheus ---------------------------------------------------------------------

    def query(self, expr: str) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.prometheus}/api/v1/query",
                                           params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (expr, answer)
        return answer

    def values(self, expr: str) -> list[float]:
        """The numbers ``expr`` returns now (NaN left out: no data is not a number)."""
        data = self.query(expr)["data"]
        if data["resultType"] == "scalar":
            found = [float(data["result"][1])]
        else:
            found = [float(item["value"][1]) for item in data["result"]]
        return [v for v in found if v == v]

    def value(self, expr: str) -> float | None:
        found = self.values(expr)
        return found[0] if len(found) == 1 else None

    def get(self, path: str) -> Any:
        return httpx.get(f"{self.prometheus}{path}", timeout=10).json()

    def alert_states(self) -> dict[str, str]:
        """Alert name → ``firing`` or ``pending`` (the most advanced state of its series)."""
        states: dict[str, str] = {}
        for alert in self.get("/api/v1/alerts")["data"]["alerts"]:
            name = alert["labels"]["alertname"]
            if states.get(name) != "firing":
                states[name] = alert["state"]
        return states

    # --- the aurora command, as an operator runs it --------------------------------------

    def aurora(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "aurora", *argv], cwd=self.home.root,
                              env={**os.environ, "AURORA_HOME": str(self.home.root)},
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"aurora {' '.join(argv)}: {done.stdout}{done.stderr}"
        return done

    # --- the incident receiver ------------------------------------------------------------

    def incidents(self, **params: str) -> list[dict[str, Any]]:
        return list_incidents(self.home, self.stack.incidents_url, **params)

    def webhooks_accepted(self) -> float:
        return webhooks_accepted(self.stack.incidents_url)

    def log(self, service: str, lines: int = 40) -> str:
        path = self.home.log_file(service)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) \
            if path.exists() else "(no log)"


@contextmanager
def running_stack(root: Path, *, stack: dict[str, Any] | None = None,
                  **options: Any) -> Iterator[LiveStack]:
    """A fresh home under ``root`` with the whole stack up; stopped by PID whatever happens.

    AURORA_HOME points at the home while the stack runs (the CLI and the report script read
    it); ``stack`` overrides config/stack.json, ``options`` the ``UpOptions`` below."""
    home = Home(make_home(root, **(stack or {})))
    previous = os.environ.get("AURORA_HOME")
    os.environ["AURORA_HOME"] = str(home.root)
    try:
        up(home, UpOptions(**{
            "traffic_rate": TRAFFIC_RATE, "pace": False, "backups": False,
            "extra_env": BRIDGE_ENV, "scrape_interval": "1s", "evaluation_interval": "1s",
            "time_scale": TIME_SCALE, "alert_group_wait": "1s", "alert_group_interval": "1s",
            "alert_repeat_interval": "2s", **options}))
        yield LiveStack(home, load_stack(home))
    finally:
        down(home)
        if previous is None:
            os.environ.pop("AURORA_HOME", None)
        else:
            os.environ["AURORA_HOME"] = previous
