"""Background services tracked by PID files, never by process names.

``spawn`` starts a command in its own session with its output in
``logs/<name>.log`` and writes ``ops/run/<name>.pid`` (JSON: pid, the kernel's
start time of that pid, argv). ``stop`` signals exactly that pid, and only if
its start time still matches, so a recycled pid is never hit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from aurora.durable import atomic_write
from aurora.errors import AuroraError, UnreachableError
from aurora.home import Home
from aurora.terminal import shown


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_time: int
    argv: list[str]


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: start time in clock ticks since boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses; fields follow the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    state = fields[0]
    if state in ("Z", "X"):
        return None
    return int(fields[19])


def read_pid(home: Home, name: str) -> PidRecord | None:
    path = home.pid_file(name)
    try:
        raw = json.loads(path.read_text())
        return PidRecord(int(raw["pid"]), int(raw["start_time"]), list(raw.get("argv", [])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(home: Home, name: str) -> int | None:
    """The pid of service ``name`` if the process its PID file names is still that process."""
    record = read_pid(home, name)
    if record is None:
        return None
    if _start_time(record.pid) != record.start_time:
        return None
    return record.pid


def spawn(
    home: Home,
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start ``argv`` in the background as service ``name``; return its pid.

    ``user`` runs it as that OS user (needs root), for servers that refuse root (PostgreSQL).
    """
    if (pid := running(home, name)) is not None:
        raise AuroraError(f"{name} is already running (pid {pid})")
    home.run_dir.mkdir(parents=True, exist_ok=True)
    home.logs_dir.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "AURORA_HOME": str(home.root), **(env or {})}
    with open(home.log_file(name), "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} start "
                  f"{' '.join(argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=cwd or home.root, env=full_env, start_new_session=True,
            **as_user(user),
        )
    start = _start_time(process.pid)
    if start is None:
        raise AuroraError(f"{name} exited at once; see {home.log_file(name)}")
    atomic_write(home.pid_file(name), json.dumps(
        {"pid": process.pid, "start_time": start, "argv": list(argv)}).encode())
    return process.pid


def as_user(user: str | None) -> dict[str, Any]:
    """``subprocess.Popen`` arguments that run the child as ``user`` with its own groups."""
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def stop(home: Home, name: str, *, timeout: float = 10.0,
         sig: signal.Signals = signal.SIGTERM) -> bool:
    """Send ``sig`` (SIGTERM) to service ``name``, SIGKILL after ``timeout``; True if it ran."""
    record = read_pid(home, name)
    pid = running(home, name)
    home.pid_file(name).unlink(missing_ok=True)
    if record is None or pid is None:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _start_time(pid) != record.start_time:
            _reap(pid)
            return True
        _reap(pid)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child (tests spawn in-process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_http(url: str, *, timeout: float = 20.0,
              pid_check: tuple[Home, str] | None = None) -> None:
    """Wait until ``url`` answers 2xx; UnreachableError after ``timeout`` or if the service died."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get(url)
                if response.is_success:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if pid_check is not None and running(*pid_check) is None:
                home, name = pid_check
                log = home.log_file(name)
                raise UnreachableError(f"{name} exited during start-up ({last_line(log)}); "
                                       f"see {log}")
            time.sleep(0.1)
    raise UnreachableError(f"{url} did not come up within {timeout:.0f}s ({last})")


def last_line(log: Path, *, limit: int = 300) -> str:
    """The log's last non-empty line (what a service said as it died), shortened."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 8192))
            lines = [line.strip() for line in fh.read().decode(errors="replace").splitlines()]
    except OSError:
        return "no log"
    said = shown(next((line for line in reversed(lines) if line), "empty log"))
    return said if len(said) <= limit else said[:limit] + "…"
