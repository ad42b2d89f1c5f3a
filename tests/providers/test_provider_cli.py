"""`aurora providers` as a real server process, driven by `aurora chaos` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aurora.config import load_stack
from aurora.home import Home
from support import free_port

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 30.0


def aurora(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aurora", *args], capture_output=True,
                          text=True, timeout=60, env=env)


@pytest.fixture
def network(home: Path, tmp_path: Path) -> Iterator[str]:
    """A running `aurora providers` on the home's providers_port; its base URL."""
    url = load_stack(Home(home)).providers_url
    log = (tmp_path / "providers.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "aurora", "providers", "--seed", "1",
                             "--zero-delay"], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"aurora providers exited {proc.returncode}: "
                            f"{(tmp_path / 'providers.log').read_text()}")
            try:
                if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("aurora providers did not answer /healthz")
            time.sleep(0.1)
        yield url
    finally:
        # Stopped by its PID only.
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


def test_chaos_commands_drive_the_running_network(network: str, make_order: Any) -> None:
    injected = [
        ("outage", "--provider", "akash", "--for", "5m", "--mode", "refuse"),
        ("latency-spike", "--provider", "ionet", "--factor", "3", "--for", "10m"),
        ("price-spike", "--provider", "render", "--factor", "2", "--for", "10m"),
        ("capacity-surge", "--provider", "vastai", "--factor", "2", "--for", "10m"),
        ("reputation-drop", "--provider", "flux", "--to", "40", "--for", "10m"),
        ("bad-ack", "--provider", "aethir", "--for", "2m"),
    ]
    for args in injected:
        done = aurora("chaos", *args)
        assert done.returncode == 0, done.stderr
        assert args[2] in done.stdout
    listed = aurora("chaos", "list", "--json")
    assert listed.returncode == 0
    events = json.loads(listed.stdout)["events"]
    assert [e["type"] for e in events] == ["outage", "latency_spike", "price_spike",
                                           "capacity_surge", "reputation_drop", "bad_ack"]

    feed = {p["id"]: p for p in httpx.get(network + "/providers").json()["providers"]}
    assert feed["akash"]["active"] is False and feed["ionet"]["latency_ms"] == 375.0
    assert feed["render"]["price_usd_per_gpu_hour"] == 1.9 and feed["flux"]["reputation"] == 40
    metrics = httpx.get(network + "/metrics").text
    assert 'provider_active{provider="akash"} 0.0' in metrics
    assert 'provider_reputation{provider="flux"} 40.0' in metrics
    refused = httpx.post(network + "/providers/akash/orders",
                         json={"order": make_order(), "gpu_type": "H100"})
    assert refused.status_code == 503 and refused.json()["error"] == "outage"

    one = aurora("chaos", "clear", events[0]["id"])
    assert one.returncode == 0 and events[0]["id"] in one.stdout
    rest = aurora("chaos", "clear")
    assert rest.returncode == 0 and "cleared 5 event(s)" in rest.stdout
    assert "no fault events" in aurora("chaos", "list").stdout
    assert httpx.get(network + "/providers").json()["providers"][0]["active"] is True

    demo = aurora("chaos", "scenario", "demo")
    assert demo.returncode == 0 and "6 event(s) scheduled" in demo.stdout


def test_rejected_chaos_is_one_error_line(network: str) -> None:
    for args in (("reputation-drop", "--provider", "flux", "--to", "140", "--for", "1m"),
                 ("outage", "--provider", "aws", "--for", "1m"),
                 ("scenario", "apocalypse"),
                 ("clear", "ev-999")):
        done = aurora("chaos", *args)
        assert done.returncode == 1, args
        assert done.stderr.startswith("error: provider network answered 4")
        assert done.stderr.count("\n") == 1


def test_a_busy_port_is_one_error_line(network: str) -> None:
    done = aurora("providers")
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot listen on") and done.stderr.count("\n") == 1


def test_unreachable_network_is_exit_2(home: Path) -> None:
    env = {**os.environ, "AURORA_PROVIDERS_PORT": str(free_port())}  # nothing listens there
    done = aurora("chaos", "list", env=env)
    assert done.returncode == 2
    assert "unreachable" in done.stderr and done.stderr.count("\n") == 1


def test_the_chaos_api_wants_the_token_from_secrets(network: str, home: Path) -> None:
    """Issue 13 #10: anything that reached :9110 could cause outages."""
    token = (home / "secrets" / "chaos.token").read_text().strip()
    event = {"type": "outage", "provider": "akash", "for": "1m"}
    for headers in ({}, {"authorization": "Bearer wrong-token-of-some-length"},
                    {"authorization": f"Basic {token}"}, {"authorization": token}):
        refused = httpx.post(network + "/chaos", json=event, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert httpx.delete(network + "/chaos", headers=headers).status_code == 401
        assert httpx.post(network + "/scenario", json={"name": "demo"},
                          headers=headers).status_code == 401
    assert httpx.get(network + "/chaos").status_code == 401
    # nothing was scheduled by the refused requests
    listed = httpx.get(network + "/chaos", headers={"authorization": f"Bearer {token}"})
    assert listed.status_code == 200 and listed.json()["events"] == []
    # what the bridge and Prometheus read stays open
    for path in ("/healthz", "/metrics", "/providers"):
        assert httpx.get(network + path).status_code == 200
    accepted = httpx.post(network + "/chaos", json=event,
                          headers={"authorization": f"Bearer {token}"})
    assert accepted.status_code == 201
    # `aurora chaos` reads the same file; a wrong one is one error line
    assert aurora("chaos", "list").returncode == 0
    (home / "secrets" / "chaos.token").write_text("x" * 43 + "\n")
    done = aurora("chaos", "list")
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "answered 401" in done.stderr and "secrets/chaos.token" in done.stderr


def test_init_creates_tokens_and_never_overwrites_them(home: Path) -> None:
    paths = [home / "secrets" / f"{name}.token" for name in ("chaos", "incidents")]
    before = [p.read_text() for p in paths]
    assert all(len(t.strip()) >= 40 for t in before) and before[0] != before[1]
    assert all(p.stat().st_mode & 0o077 == 0 for p in paths)
    assert aurora("init").returncode == 0
    assert [p.read_text() for p in paths] == before


def test_no_token_no_listening_beyond_loopback(home: Path) -> None:
    (home / "secrets" / "chaos.token").unlink()
    # a documentation address (RFC 5737): the refusal comes before any bind
    done = aurora("providers", env={**os.environ, "AURORA_BIND": "192.0.2.1"})
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "refusing to serve the provider network's chaos API on 192.0.2.1 without a token" \
        in done.stderr
