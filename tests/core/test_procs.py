"""What an operator is told when a service dies while starting: its last words."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from aurora.errors import UnreachableError
from aurora.home import Home
from aurora.procs import last_line, spawn, wait_http
from support import free_port, make_home


def test_last_line_is_the_last_said_shortened_and_escaped(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert last_line(log) == "no log"
    log.write_text("")
    assert last_line(log) == "empty log"
    log.write_text("starting\nerror: cannot listen on 127.0.0.1:9108\n\n  \n")
    assert last_line(log) == "error: cannot listen on 127.0.0.1:9108"
    log.write_text("x" * 20_000 + "\n")
    assert last_line(log, limit=50) == "x" * 50 + "…"
    log.write_text("fake\x1b[2K\rok\n")  # a terminal escape from a logged request
    assert "\x1b" not in last_line(log) and "\r" not in last_line(log)


def test_a_service_that_dies_starting_is_reported_with_its_last_line(tmp_path: Path) -> None:
    home = Home(make_home(tmp_path / "home"))
    pid = spawn(home, "bridge", [sys.executable, "-c", "import sys, time; time.sleep(0.5); "
                                 "print('error: treaty file unreadable'); sys.exit(2)"])
    with pytest.raises(UnreachableError, match=r"bridge exited during start-up \(error: treaty "
                       r"file unreadable\); see .*bridge\.log"):
        wait_http(f"http://127.0.0.1:{free_port()}/healthz", timeout=10,
                  pid_check=(home, "bridge"))
    os.waitpid(pid, 0)  # our child: reaped
