"""What a canary rolls out: another build of Aurora, or a changed configuration.

``--candidate`` names one of three things:

- a **directory holding a checkout** of Aurora (``pyproject.toml`` and ``src/aurora``) with
  its own virtual environment (``DIR/.venv``, made by ``make install`` there): its bridge
  runs with that interpreter and that code;
- a **directory of configuration** (any of ``config/*.json`` and ``treaty.json``): stable's
  code with those files in place of stable's (routing weights, providers, the treaty). The
  files are copied over a copy of stable's configuration, and the candidate's bridge reads
  it through ``AURORA_CONFIG_DIR`` / ``AURORA_TREATY_FILE``;
- a **git ref** of this checkout: checked out into its own work tree under
  ``ops/data/canary/builds/<commit>`` with its own virtual environment (the pinned
  ``requirements.lock`` of that commit, then the commit itself), once per commit.

Its ``version`` labels the candidate's metrics and ledger evidence: the commit for a ref,
``<package version>+<tree digest>`` for a checkout, ``config-<digest>`` for configuration.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora import __version__
from aurora.errors import AuroraError
from aurora.home import Home

CONFIG_FILES = ("stack.json", "providers.json", "tenants.json", "workloads.json",
                "scenarios.json", "incidents.json")
TREATY_FILE = "treaty.json"


class CandidateError(AuroraError):
    """The candidate cannot be found, built or run."""


@dataclass(frozen=True)
class Candidate:
    kind: str  # "checkout" | "config" | "ref"
    source: str  # what the operator named
    version: str
    python: str  # the interpreter its bridge runs with
    env: dict[str, str] = field(default_factory=dict)  # extra environment of its bridge

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "version": self.version,
                "python": self.python, "env": dict(sorted(self.env.items()))}


def stable_version() -> str:
    return __version__


def _digest(paths: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _checkout(root: Path) -> Candidate:
    python = root / ".venv" / "bin" / "python"
    if not python.exists():
        raise CandidateError(f"{root} is a checkout without a virtual environment: run "
                             f"`make install` there first")
    sources = [p for p in (root / "src" / "aurora").rglob("*.py")]
    return Candidate("checkout", str(root), f"{_package_version(root)}+{_digest(sources, root)}",
                     str(python))


def _package_version(root: Path) -> str:
    import tomllib

    try:
        return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])
    except (OSError, KeyError, ValueError) as exc:
        raise CandidateError(f"{root}/pyproject.toml has no project version: {exc}") from None


def _config(home: Home, root: Path, build_dir: Path) -> Candidate:
    given = [root / "config" / n for n in CONFIG_FILES if (root / "config" / n).is_file()]
    treaty = root / TREATY_FILE
    if treaty.is_file():
        given.append(treaty)
    if not given:
        raise CandidateError(
            f"{root} is neither an Aurora checkout (pyproject.toml, src/aurora) nor a "
            f"configuration (config/{{{','.join(CONFIG_FILES)}}} or {TREATY_FILE})")
    version = f"config-{_digest(given, root)}"
    target = build_dir / version
    config = target / "config"
    if config.exists():
        shutil.rmtree(config)
    shutil.copytree(home.config_dir, config)
    env: dict[str, str] = {"AURORA_CONFIG_DIR": str(config)}
    for path in given:
        if path.name == TREATY_FILE:
            shutil.copyfile(path, target / TREATY_FILE)
            env["AURORA_TREATY_FILE"] = str(target / TREATY_FILE)
        else:
            shutil.copyfile(path, config / path.name)
    return Candidate("config", str(root), version, sys.executable, env)


def _git(repo: Path, *args: str) -> str:
    try:
        result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                                text=True, timeout=300, check=False)
    except FileNotFoundError:
        raise CandidateError("git is not installed; name a directory instead") from None
    if result.returncode != 0:
        raise CandidateError(f"git {' '.join(args)}: {result.stderr.strip()[:300]}")
    return result.stdout.strip()


def _ref(home: Home, ref: str, build_dir: Path, repo: Path) -> Candidate:
    if not (repo / ".git").exists():
        raise CandidateError(f"{ref!r} is not a directory, and {repo} is not a git checkout "
                             "to find it in")
    try:
        commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except CandidateError:
        raise CandidateError(f"{ref!r} is neither a directory nor a git ref of {repo}") from None
    tree = build_dir / commit[:12]
    python = tree / ".venv" / "bin" / "python"
    if not python.exists():
        if tree.exists():
            _git(repo, "worktree", "remove", "--force", str(tree))
        _git(repo, "worktree", "add", "--detach", str(tree), commit)
        for step in ([sys.executable, "-m", "venv", str(tree / ".venv")],
                     [str(python), "-m", "pip", "install", "-q", "-r",
                      str(tree / "requirements.lock")],
                     [str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(tree)]):
            result = subprocess.run(step, capture_output=True, text=True, timeout=1800,
                                    check=False)
            if result.returncode != 0:
                raise CandidateError(f"building {ref} ({commit[:12]}) failed at "
                                     f"`{' '.join(step[-3:])}`: "
                                     f"{(result.stderr or result.stdout).strip()[-300:]}")
    return Candidate("ref", ref, commit[:12], str(python))


def resolve(home: Home, name: str, *, repo: Path | None = None) -> Candidate:
    """The candidate ``name`` names, built if it is a ref (CandidateError otherwise)."""
    build_dir = home.data_dir / "canary" / "builds"
    build_dir.mkdir(parents=True, exist_ok=True)
    path = Path(name).expanduser()
    if path.is_dir():
        root = path.resolve()
        if (root / "pyproject.toml").is_file() and (root / "src" / "aurora").is_dir():
            return _checkout(root)
        return _config(home, root, build_dir)
    from aurora.home import _CHECKOUT

    return _ref(home, name, build_dir, repo or _CHECKOUT)
