"""aurora init, PID-file process control, up/down/status, the smoke test, CLI errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from aurora import procs
from aurora.config import load_stack
from aurora.errors import ConfigError, KeyFileError
from aurora.home import Home
from aurora.providers.chaos import ChaosClient
from aurora.provision import init_home
from aurora.stack import ALL_SERVICES, UpOptions, down, up

AURORA = [sys.executable, "-m", "aurora"]


def run(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AURORA, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "AURORA_HOME": str(home)})


def test_init_is_idempotent_and_never_overwrites_a_key(home: Path) -> None:
    key = home / "secrets" / "tenants" / "tenant-42.key"
    before = key.read_bytes()
    outcomes = init_home(Home(home))
    assert {outcome for _, outcome in outcomes} == {"kept"}
    assert key.read_bytes() == before
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_init_refuses_a_public_key_that_does_not_match(home: Path) -> None:
    pub = home / "ops" / "keys" / "tenants" / "tenant-42.pub"
    other = home / "ops" / "keys" / "tenants" / "orion-labs.pub"
    pub.write_bytes(other.read_bytes())
    with pytest.raises(KeyFileError, match="does not match"):
        init_home(Home(home))


def test_a_bad_treaty_is_a_clear_start_up_error(home: Path) -> None:
    treaty = home / "templates" / "aurora-treaty-akash.json"
    document = json.loads(treaty.read_text())
    document["regions"] = ["EU WEST"]
    treaty.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="regions"):
        init_home(Home(home))
    result = run(home, "bridge", timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "regions" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_pid_files_name_exactly_one_process(home: Path) -> None:
    h = Home(home)
    pid = procs.spawn(h, "sleeper", ["sleep", "60"])
    assert procs.running(h, "sleeper") == pid
    with pytest.raises(Exception, match="already running"):
        procs.spawn(h, "sleeper", ["sleep", "60"])
    assert procs.stop(h, "sleeper")
    assert procs.running(h, "sleeper") is None
    assert not h.pid_file("sleeper").exists()


def test_a_recycled_pid_is_never_signalled(home: Path) -> None:
    """A PID file whose start time does not match its pid names some other process."""
    h = Home(home)
    victim = subprocess.Popen(["sleep", "60"])
    try:
        h.run_dir.mkdir(parents=True, exist_ok=True)
        h.pid_file("ghost").write_text(json.dumps({"pid": victim.pid, "start_time": 1,
                                                   "argv": ["old"]}))
        assert procs.running(h, "ghost") is None
        assert procs.stop(h, "ghost") is False
        assert victim.poll() is None  # still alive
    finally:
        victim.send_signal(signal.SIGTERM)
        victim.wait()


def test_up_status_down(home: Path) -> None:
    h = Home(home)
    stack = load_stack(h)
    started = up(h, UpOptions(observatory=False, backups=False, traffic=True,
                              traffic_rate=5, pace=False))
    try:
        assert [s.name for s in started] == ["providers", "bridge", "incidents", "traffic"]
        status = json.loads(run(home, "status", "--json").stdout)
        assert all(status[name] for name in ("providers", "bridge", "incidents", "traffic"))
        assert httpx.get(f"{stack.bridge_url}/readyz").status_code == 200
        again = up(h, UpOptions(observatory=False, backups=False, traffic=False))
        assert {s.note for s in again} == {"already running"}
    finally:
        stopped = dict(down(h))
    assert stopped["bridge"] and stopped["providers"] and stopped["traffic"]
    assert all(procs.running(h, name) is None for name in ALL_SERVICES)
    assert (h.logs_dir / "bridge.log").exists()


def test_smoke_starts_what_is_missing_and_stops_only_that(home: Path) -> None:
    result = run(home, "smoke", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("PASS") for line in lines) == 9
    assert "stopped what the smoke test started: providers, bridge" in result.stdout
    assert all(procs.running(Home(home), name) is None for name in ALL_SERVICES)


def test_smoke_fails_loudly_and_leaves_a_running_stack_running(home: Path) -> None:
    h = Home(home)
    stack = load_stack(h)
    up(h, UpOptions(observatory=False, backups=False, traffic=False))
    try:
        feed = httpx.get(f"{stack.providers_url}/providers").json()["providers"]
        with ChaosClient.for_home(h) as chaos:
            for provider in (p["id"] for p in feed if "eu-west-1" in p["regions"]):
                chaos.add({"type": "outage", "provider": provider, "for": "5m",
                           "mode": "refuse"})
        time.sleep(3)  # let the bridge read the feed
        result = run(home, "smoke", timeout=180)
        assert result.returncode == 1
        assert "FAIL  signed order for tenant-42" in result.stdout
        assert "smoke-e2e: FAIL" in result.stdout
        assert procs.running(h, "bridge") and procs.running(h, "providers")
    finally:
        down(h)


@pytest.mark.parametrize("args", [
    ("traffic", "--duration", "soon"),
    ("traffic", "--rate", "-1"),
    ("chaos", "outage", "--provider", "akash", "--for", "5m"),
])
def test_cli_errors_are_one_line(home: Path, args: tuple[str, ...]) -> None:
    result = run(home, *args, timeout=30)
    assert result.returncode != 0
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
