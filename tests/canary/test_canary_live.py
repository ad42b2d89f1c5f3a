"""The canary as an operator runs it: real PostgreSQL, replicas, HAProxy, Prometheus.

The commands are run as docs/RUNBOOK.md and the README write them (this module is one of
the two tests/core/test_documented_commands.py reads). Run once each, well: a rollout
started after a verified Day-7 gate, watched, aborted by hand (and the abort measured), and
the rehearsal's two scenarios (a good candidate promoted to 100 %, a bad one aborted, no
acknowledged order lost or spent twice).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aurora import gpg, procs
from aurora.canary.live import CONTROLLER, PROXY, Split, members
from aurora.canonical import canonical_json
from aurora.config import load_stack
from aurora.home import Home
from aurora.slo import artifacts, queries
from aurora.soak.verdict import GATE_KIND
from aurora.stack import UpOptions, down, up
from support import REPO, PgCluster, make_home, needs_tools

pytestmark = [pytest.mark.integration,
              needs_tools("haproxy", "prometheus", "gpg")]

BIN = str(Path(sys.executable).parent)


class Shell:
    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = {**os.environ, **env, "AURORA_HOME": str(home),
                    "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}

    def sh(self, command: str, *, expect: int = 0) -> str:
        with subprocess.Popen(["bash", "-c", command], cwd=self.home, env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as process:
            try:
                out, err = process.communicate(timeout=900)
            except subprocess.TimeoutExpired:
                process.terminate()  # SIGTERM: the command stops what it started
                out, err = process.communicate(timeout=120)
                raise AssertionError((command, "timed out", out[-2000:], err[-2000:])) from None
        assert process.returncode == expect, (command, out[-2000:], err[-2000:])
        return out


@pytest.fixture
def replicated(tmp_path: Path, pg_cluster: PgCluster) -> Iterator[tuple[Home, Shell]]:
    root = make_home(tmp_path / "home", database_url=pg_cluster.database(initialised=True))
    home = Home(root)
    with gpg.temporary_keyring() as keyring:
        key = gpg.make_throwaway_key(keyring, "Aurora canary live <canary@aurora.invalid>")
        # the Day-7 gate's verdict, signed; `aurora canary start` re-verifies it
        document = {"report": GATE_KIND, "version": 1, "soak_id": "soak-live", "outcome": "pass"}
        gpg.publish(home.reports_dir / "day7-gate.json", canonical_json(document), key,
                    gnupghome=keyring)
        up(home, UpOptions(traffic=False, backups=False, replicas=2, scrape_interval="1s",
                           evaluation_interval="1s"))
        try:
            yield home, Shell(root, {"GNUPGHOME": str(keyring)})
        finally:
            down(home)


def _order(shell: Shell, tenant: str) -> None:
    shell.sh(f"aurora order --tenant {tenant} --region eu-west-1 --gpu-hours 0.2")


def test_a_rollout_started_after_the_gate_watched_and_aborted_by_hand(
        replicated: tuple[Home, Shell], tmp_path: Path) -> None:
    home, shell = replicated
    candidate = tmp_path / "candidate"
    (candidate / "config").mkdir(parents=True)
    (candidate / "config" / "tenants.json").write_bytes(
        (home.config_dir / "tenants.json").read_bytes())
    shell.sh("aurora canary replay --since 24h")  # the rules on the past day, nothing moves
    out = shell.sh(f"aurora canary start --candidate {candidate}")
    assert "takes 10 % of tenants" in out
    split = Split.of(home)
    assert procs.running(home, PROXY) and procs.running(home, CONTROLLER)
    assert len(members(home, "canary")) == 2 and len(members(home, "stable")) == 2
    assert not procs.running(home, "bridge")  # stable's own replicas handed over
    before = split.served()
    for _ in range(3):
        _order(shell, "tenant-42")  # bucket 8: the canary's at 10 %
        _order(shell, "orion-labs")  # bucket 32: stable's
    after = split.served()
    assert after["canary"] - before["canary"] == 3 and after["stable"] - before["stable"] == 3
    # Prometheus sees both tracks, labelled, from the one file it watches
    prom = load_stack(home).prometheus_url
    tracks: set[tuple[str, str]] = set()
    for _ in range(60):
        answer = httpx.get(f"{prom}/api/v1/query", params={"query": "treaty_requests_total"},
                           timeout=10).json()
        tracks = {(r["metric"].get("track", ""), r["metric"].get("version", ""))
                  for r in answer["data"]["result"]}
        if {t for t, _ in tracks} >= {"stable", "canary"}:
            break
        time.sleep(1)
    assert {t for t, _ in tracks} >= {"stable", "canary"}, tracks
    assert any(t == "canary" and v.startswith("config-") for t, v in tracks)
    # the dashboard's per-track and canary panels and the canary alerts' signals answer
    dashboard = json.loads((REPO / "ops/grafana/grafana-kpi-panels-patch.json").read_text())
    wanted = {e for e in artifacts.iter_dashboard_exprs(dashboard["dashboard"])
              if "aurora_canary_" in e or "track" in e}
    wanted |= {queries.ALERT_SIGNALS["canary_aborted"],
               queries.ALERT_SIGNALS["canary_inconclusive"]}
    assert len(wanted) >= 8

    def silent() -> list[str]:
        return [e for e in sorted(wanted) if not httpx.get(
            f"{prom}/api/v1/query", params={"query": e}, timeout=10).json()["data"]["result"]]

    for _ in range(90):
        if not (missing := silent()):
            break
        time.sleep(1)
    assert not missing, missing

    status = json.loads(shell.sh("aurora canary status --json"))
    assert status["state"]["weight"] == 10 and status["state"]["phase"] == "step"
    assert "rollout" in shell.sh("aurora canary status")
    out = shell.sh("aurora canary abort --reason 'rehearsing the runbook'")
    assert "aborted: weight 0, candidate stopped" in out
    assert not members(home, "canary") and not procs.running(home, CONTROLLER)
    status = json.loads(shell.sh("aurora canary status --json"))
    assert status["state"]["phase"] == "aborted" and status["state"]["weight"] == 0
    held = split.served()
    _order(shell, "tenant-42")  # the canary's tenant is served by stable now
    assert split.served()["canary"] == held["canary"]
    report = shell.sh("aurora canary report")
    path = Path(report.split(" (")[0])
    document = json.loads(path.read_bytes())
    assert document["outcome"] == "aborted" and document["gate"]["outcome"] == "pass"
    assert any("abort by hand confirmed" in w["why"] for w in document["weights"])
    shell.sh("aurora canary abort --reason again", expect=1)  # already aborted: one line


# Both scenarios take 4-5 min (a step lasts until its sequential tests decide), over the
# suite's 300 s default; the shell's own 900 s limit comes first.
@pytest.mark.timeout(960)
def test_the_rehearsal_promotes_a_good_candidate_and_aborts_a_bad_one(tmp_path: Path) -> None:
    root = tmp_path / "rehearsal"
    shell = Shell(tmp_path, {})
    shell.env.pop("AURORA_HOME")
    shell.sh(f"aurora canary rehearse --home {root}")
    results = {r["scenario"]: r for r in json.loads((root / "rehearsal.json").read_text())}
    assert results["good"]["phase"] == "promoted" and results["good"]["ok"]
    assert results["good"]["steps_reached"] == [10, 50, 100]
    assert results["bad"]["phase"] == "aborted" and results["bad"]["ok"]
    assert results["bad"]["steps_reached"] == [10]
    for r in results.values():
        invariants = r["invariants"]
        assert invariants["acked"] > 500 and invariants["lost"] == []
        assert invariants["duplicated"] == [] and invariants["ok"]
        report = json.loads(Path(r["report"]).read_bytes())
        assert report["outcome"] == r["phase"]
        assert {m["comparison"] for m in report["measurements"]} >= {"fill", "rtt_p95",
                                                                     "gate:tampering_alerts"}
