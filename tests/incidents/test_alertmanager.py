"""ops/alertmanager.yml: amtool accepts it; the rendered test copy; the command line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aurora.config import load_stack
from aurora.errors import ConfigError
from aurora.home import Home
from aurora.incidents.alertmanager import alertmanager_argv, render_alertmanager_config
from aurora.incidents.webhook import MAX_ALERTS
from support import needs_tools

REPO = Path(__file__).resolve().parents[2]
AMTOOL = shutil.which("amtool")
needs_amtool = needs_tools("amtool")


def amtool(*argv: str) -> subprocess.CompletedProcess[str]:
    assert AMTOOL is not None
    return subprocess.run([AMTOOL, *argv], capture_output=True, text=True, timeout=30)


@needs_amtool
def test_amtool_check_config_passes() -> None:
    done = amtool("check-config", str(REPO / "ops" / "alertmanager.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_routing_tree() -> None:
    config = yaml.safe_load((REPO / "ops" / "alertmanager.yml").read_text())
    route = config["route"]
    assert route["group_by"] == ["alertname", "treaty_id"]
    [receiver] = config["receivers"]
    assert route["receiver"] == receiver["name"]
    [hook] = receiver["webhook_configs"]
    # Alertmanager truncates a group to what the receiver accepts, rather than being refused
    assert hook == {"url": "http://127.0.0.1:9111/alerts", "send_resolved": True,
                    "max_alerts": MAX_ALERTS, "http_config": {"authorization": {
                        "type": "Bearer", "credentials_file": "../secrets/incidents.token"}}}
    pages, tickets = route["routes"]
    assert pages["matchers"] == ['severity=~"critical|page"']
    assert tickets["matchers"] == ['severity=~"warning|ticket|info"']
    first = config["inhibit_rules"][0]
    assert first["source_matchers"] == pages["matchers"]
    assert first["target_matchers"] == tickets["matchers"]
    assert first["equal"] == ["alertname", "treaty_id"]


@needs_amtool
@pytest.mark.parametrize(("labels", "route"), [
    (["severity=critical"], 'severity=~"critical|page"'),
    (["severity=page"], 'severity=~"critical|page"'),
    (["severity=ticket"], 'severity=~"warning|ticket|info"'),
    (["severity=warning"], 'severity=~"warning|ticket|info"'),
])
def test_amtool_routes_by_severity(labels: list[str], route: str) -> None:
    done = amtool("config", "routes", "test", "--tree", "--verify.receivers=aurora-incidents",
                  f"--config.file={REPO / 'ops' / 'alertmanager.yml'}", "alertname=X",
                  "treaty_id=AURORA-AKASH-001", *labels)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "{" + route + "}  receiver: aurora-incidents" in done.stdout


@needs_amtool
def test_rendered_copy_points_at_the_stack_and_is_valid(home: Path, tmp_path: Path) -> None:
    stack = load_stack(Home(home))
    path = render_alertmanager_config(Home(home), stack, group_wait="1s", group_interval="2s",
                                      repeat_interval="3s", out_dir=tmp_path / "am")
    config = yaml.safe_load(path.read_text())
    hook = config["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == f"http://127.0.0.1:{stack.incidents_port}/alerts"
    assert hook["send_resolved"] is True
    # the receiver's token, read from the file `aurora init` wrote (never inlined)
    assert hook["http_config"] == {"authorization": {
        "type": "Bearer",
        "credentials_file": str((home / "secrets" / "incidents.token").resolve())}}
    assert (home / "secrets" / "incidents.token").is_file()
    for route in (config["route"], *config["route"]["routes"]):
        assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
            "1s", "2s", "3s")
    assert config["inhibit_rules"] == yaml.safe_load(
        (REPO / "ops" / "alertmanager.yml").read_text())["inhibit_rules"]
    assert amtool("check-config", str(path)).returncode == 0


def test_render_defaults_for_aurora_up(home: Path) -> None:
    stack = load_stack(Home(home))
    path = render_alertmanager_config(Home(home), stack)
    assert path == home / "ops" / "data" / "alertmanager-runtime" / "alertmanager.yml"
    config = yaml.safe_load(path.read_text())
    assert config["route"]["group_wait"] == "30s"  # production timings kept
    assert config["receivers"][0]["webhook_configs"][0]["url"] == (
        f"http://127.0.0.1:{stack.incidents_port}/alerts")


def test_render_without_the_file(home: Path, tmp_path: Path) -> None:
    (home / "ops" / "alertmanager.yml").unlink()
    with pytest.raises(ConfigError, match="alertmanager.yml"):
        render_alertmanager_config(Home(home), load_stack(Home(home)), out_dir=tmp_path)


def test_argv(tmp_path: Path) -> None:
    argv = alertmanager_argv(tmp_path / "am.yml", 19093, tmp_path / "data",
                             binary="/usr/bin/prometheus-alertmanager")
    assert argv == ["/usr/bin/prometheus-alertmanager", f"--config.file={tmp_path}/am.yml",
                    f"--storage.path={tmp_path}/data", "--web.listen-address=127.0.0.1:19093",
                    "--cluster.listen-address="]


def test_argv_without_alertmanager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="apt-get install prometheus-alertmanager"):
        alertmanager_argv(tmp_path / "am.yml", 19093, tmp_path / "data")
