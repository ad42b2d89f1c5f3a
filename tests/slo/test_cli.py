"""The command lines: `aurora slo report`, `aurora health-check`, and the seed's wrappers
(`python3 scripts/canary-slo-reporter.py`, `./ops/bin/health-check`) run as the seed runs
them: with the system's python3 and from a shell."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from slo.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
AURORA = REPO / ".venv" / "bin" / "aurora"
SCRIPT = REPO / "scripts" / "canary-slo-reporter.py"
HEALTH = REPO / "ops" / "bin" / "health-check"
SYSTEM_PYTHON = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"


def run(argv: list[str], home: Path | None = None, cwd: Path | None = None,
        **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    if home is not None:
        environment["AURORA_HOME"] = str(home)
    environment.update(env)
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd or REPO,
                          env=environment, timeout=120)


def test_slo_group_has_report_and_no_placeholder() -> None:
    result = run([str(AURORA), "slo", "--help"])
    assert result.returncode == 0
    assert "report" in result.stdout and "todo" not in result.stdout
    assert "health-check" in run([str(AURORA), "--help"]).stdout


def test_unreachable_prometheus_is_one_line_and_exit_2(home: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for argv in ([str(AURORA), "slo", "report"], [SYSTEM_PYTHON, str(SCRIPT)]):
        result = run(argv + ["--prometheus", url, "--output", str(tmp_path / "r.json"),
                             "--no-sign"], home)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == (f"error: Prometheus at {url} is unreachable "
                                         "(ConnectError: [Errno 111] Connection refused)")
        assert not (tmp_path / "r.json").exists()


def test_unknown_key_fails_before_querying(home: Path, tmp_path: Path) -> None:
    gnupg = tmp_path / "gnupg"
    gnupg.mkdir(mode=0o700)
    result = run([SYSTEM_PYTHON, str(SCRIPT), "--prometheus", "http://127.0.0.1:1",
                  "--output", str(tmp_path / "r.json"), "--key", "6E4082C6A410F340"], home,
                 GNUPGHOME=str(gnupg))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "6E4082C6A410F340" in line and "gpg --list-secret-keys" in line


def test_no_sign_and_key_exclude_each_other(home: Path) -> None:
    result = run([str(AURORA), "slo", "report", "--no-sign", "--key", "ABC"], home)
    assert result.returncode == 2 and "exclude each other" in result.stderr


def test_bad_window(home: Path) -> None:
    result = run([str(AURORA), "slo", "report", "--window", "soon", "--prometheus",
                  "http://127.0.0.1:1"], home)
    assert result.returncode == 2 and result.stderr.startswith("error: --window")


def test_health_check_json_and_exit_code(home: Path) -> None:
    for argv in ([str(AURORA), "health-check", "--json"], [str(HEALTH), "--json"]):
        result = run(argv, home, cwd=Path("/"))
        assert result.returncode == 1, result.stderr
        document = json.loads(result.stdout)
        assert document["ok"] is False and len(document["checks"]) == 12
        assert {"name", "ok", "detail"} == set(document["checks"][0])


def test_health_check_table(home: Path) -> None:
    result = run([str(HEALTH)], home)
    assert result.returncode == 1
    assert "checks pass" in result.stdout and "FAIL" in result.stdout


@pytest.mark.parametrize("relative", ["scripts/canary-slo-reporter.py", "ops/bin/health-check"])
def test_wrappers_without_a_venv_say_to_run_make_up(tmp_path: Path, relative: str) -> None:
    copy = tmp_path / "checkout" / relative
    copy.parent.mkdir(parents=True)
    shutil.copy2(REPO / relative, copy)
    argv = [SYSTEM_PYTHON, str(copy)] if relative.endswith(".py") else [str(copy)]
    result = run(argv + ["--help"])
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "make up" in line and str(tmp_path / "checkout" / ".venv") in line
