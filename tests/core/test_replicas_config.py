"""`aurora up --replicas N`: what is refused, which ports, what Prometheus scrapes (no servers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aurora import procs
from aurora.config import load_stack
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.slo.promconfig import write_runtime_config
from aurora.stack import UpOptions, check_replicas, running_replicas, services, up


def _aurora(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aurora", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "AURORA_HOME": str(home)})


@pytest.mark.sqlite_mode
def test_replicas_without_postgres_are_refused_in_one_line_and_nothing_starts(home: Path
                                                                              ) -> None:
    result = _aurora(home, "up", "--replicas", "2", "--no-observatory", "--no-traffic")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: --replicas 2 needs a PostgreSQL database_url (config/stack.json or "
        "AURORA_DATABASE_URL): replicas share nonces and quotas only there (see README, "
        "Replicated mode)"]
    assert "Traceback" not in result.stdout + result.stderr
    assert procs.running(Home(home), "providers") is None
    with pytest.raises(AuroraError, match="needs a PostgreSQL database_url"):
        up(Home(home), UpOptions(replicas=3, observatory=False, traffic=False))
    assert procs.running(Home(home), "providers") is None


def test_each_replica_has_its_own_metrics_port_and_service(home: Path) -> None:
    stack = load_stack(Home(home)).model_copy(update={"database_url": "postgresql://x/y"})
    check_replicas(stack, 4)
    ports = [stack.replica_metrics(k) for k in range(1, 5)]
    assert ports[0] == stack.metrics_port  # replica 1 is where one bridge always was
    assert ports[1:] == [stack.replica_metrics_port + k for k in range(3)]
    names = [s.name for s in services(UpOptions(replicas=3))]
    assert names[:4] == ["providers", "bridge", "bridge-2", "bridge-3"]
    clash = stack.model_copy(update={"replica_metrics_port": stack.prometheus_port - 1})
    with pytest.raises(AuroraError, match="replica 3's metrics port"):
        check_replicas(clash, 3)


def test_prometheus_config_lists_every_replica(home: Path) -> None:
    h = Home(home)
    stack = load_stack(h)
    config = yaml.safe_load(write_runtime_config(h, stack, replicas=3).read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "aurora-metrics")
    [group] = json.loads(Path(job["file_sd_configs"][0]["files"][0]).read_text())
    assert group["targets"] == [f"{stack.bind}:{stack.replica_metrics(k)}" for k in (1, 2, 3)]
    assert group["labels"]["treaty_id"] == "AURORA-AKASH-001"
    single = yaml.safe_load(write_runtime_config(h, stack).read_text())
    job = next(j for j in single["scrape_configs"] if j["job_name"] == "aurora-metrics")
    [group] = json.loads(Path(job["file_sd_configs"][0]["files"][0]).read_text())
    assert group["targets"] == [f"{stack.bind}:{stack.metrics_port}"]


def test_status_and_down_know_every_replica(home: Path) -> None:
    h = Home(home)
    h.run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("bridge-10", "bridge-2", "bridge-x"):
        (h.run_dir / f"{name}.pid").write_text(json.dumps({"pid": 1, "start_time": 0}))
    assert running_replicas(h) == ["bridge", "bridge-2", "bridge-10"]
    status = json.loads(_aurora(home, "status", "--json").stdout)
    assert {"bridge", "bridge-2", "bridge-10"} <= set(status)
    assert status["bridge-2"] is None  # a stale PID file is not a running replica
    text = _aurora(home, "status").stdout
    assert f"(replica 2, metrics :{load_stack(h).replica_metrics(2)})" in text


def test_rollback_with_a_postgresql_ledger_is_refused_before_anything_stops(home: Path
                                                                           ) -> None:
    """`aurora rollback` restores SQLite backups; with the ledger in PostgreSQL it must not
    stop the stack and then fail on every backup."""
    env = {**os.environ, "AURORA_HOME": str(home),
           "AURORA_DATABASE_URL": "postgresql://aurora@127.0.0.1:1/aurora"}
    result = subprocess.run([sys.executable, "-m", "aurora", "rollback", "--yes"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: aurora rollback restores a SQLite ledger; the ledger is in PostgreSQL "
        "(postgresql://aurora@127.0.0.1:1/aurora): restore a .sql.gz backup into an empty "
        "database instead (docs/RUNBOOK.md, PostgreSQL ledger)"]
    assert "stopped" not in result.stdout
