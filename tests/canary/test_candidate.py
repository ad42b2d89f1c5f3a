"""`--candidate`: a checkout with its venv, a configuration, or a git ref built once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aurora.canary.candidate import CandidateError, resolve
from aurora.home import Home


def test_a_configuration_runs_stables_code_over_a_copy_of_stables_config(home: Path,
                                                                        tmp_path: Path) -> None:
    change = tmp_path / "cand"
    (change / "config").mkdir(parents=True)
    tenants = json.loads((home / "config" / "tenants.json").read_text())
    tenants["tenants"][0]["routing"]["max_latency_ms"] = 399
    (change / "config" / "tenants.json").write_text(json.dumps(tenants))
    first = resolve(Home(home), str(change))
    assert first.kind == "config" and first.python == sys.executable
    assert first.version.startswith("config-")
    config = Path(first.env["AURORA_CONFIG_DIR"])
    assert json.loads((config / "tenants.json").read_text()) == tenants  # the change
    assert (config / "providers.json").read_bytes() == \
        (home / "config" / "providers.json").read_bytes()  # the rest is stable's
    assert "AURORA_TREATY_FILE" not in first.env
    # another change is another version; the same change the same
    assert resolve(Home(home), str(change)).version == first.version
    tenants["tenants"][0]["routing"]["max_latency_ms"] = 398
    (change / "config" / "tenants.json").write_text(json.dumps(tenants))
    assert resolve(Home(home), str(change)).version != first.version


def test_the_candidates_bridge_reads_the_overlay(home: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    change = tmp_path / "cand"
    change.mkdir()
    treaty = json.loads(Home(home).treaty_file.read_text())
    (change / "treaty.json").write_text(json.dumps(treaty))
    candidate = resolve(Home(home), str(change))
    for key, value in candidate.env.items():
        monkeypatch.setenv(key, value)
    assert Home(home).treaty_file == Path(candidate.env["AURORA_TREATY_FILE"])
    assert Home(home).config_dir == Path(candidate.env["AURORA_CONFIG_DIR"])


def test_a_directory_that_is_neither_is_refused_in_one_line(home: Path, tmp_path: Path) -> None:
    with pytest.raises(CandidateError, match="neither an Aurora checkout"):
        resolve(Home(home), str(tmp_path))
    checkout = tmp_path / "co"
    (checkout / "src" / "aurora").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text('[project]\nname = "aurora"\nversion = "9.9"\n')
    with pytest.raises(CandidateError, match="make install"):
        resolve(Home(home), str(checkout))
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (checkout / "src" / "aurora" / "__init__.py").write_text("__version__ = '9.9'\n")
    built = resolve(Home(home), str(checkout))
    assert built.kind == "checkout" and built.version.startswith("9.9+")


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x.invalid"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


@pytest.mark.integration
def test_a_git_ref_is_checked_out_and_built_in_its_own_venv_once(home: Path,
                                                                 tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src" / "aurora").mkdir(parents=True)
    (repo / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=69"]\nbuild-backend = '
        '"setuptools.build_meta"\n[project]\nname = "aurora-candidate-probe"\nversion = "2.0"\n'
        '[tool.setuptools.packages.find]\nwhere = ["src"]\n')
    (repo / "src" / "aurora" / "__init__.py").write_text("__version__ = '2.0'\n")
    (repo / "requirements.lock").write_text("# nothing pinned\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "probe")
    with pytest.raises(CandidateError, match="'no-such-ref' is neither a directory nor a git ref"):
        resolve(Home(home), "no-such-ref", repo=repo)
    built = resolve(Home(home), "HEAD", repo=repo)
    assert built.kind == "ref" and len(built.version) == 12
    probe = subprocess.run([built.python, "-c", "import aurora; print(aurora.__version__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert probe.stdout.strip() == "2.0"  # the ref's code, not stable's
    stamp = Path(built.python).stat().st_mtime
    assert resolve(Home(home), "HEAD", repo=repo).python == built.python
    assert Path(built.python).stat().st_mtime == stamp  # built once
