"""A local PostgreSQL cluster: initdb + postgres on 127.0.0.1, tracked by PID.

For an operator trying the replicated mode (``aurora db up`` / ``aurora db down``,
data in ``ops/data/pg``) and for the tests' throwaway clusters. Production runs
its own PostgreSQL (with a standby) and only sets ``database_url``.

PostgreSQL refuses to run as root; when we are root the server runs as the
``postgres`` OS user (``AURORA_PG_USER`` to pick another), which owns the data
directory. Authentication is ``trust`` on 127.0.0.1 only: a cluster for one
machine's trials and tests, not for a network.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from aurora import procs
from aurora.db.postgres import DatabaseError, DatabaseUnavailableError, connect
from aurora.home import Home

SERVICE = "postgres"
SUPERUSER = "aurora"
DATABASE = "aurora"
# fsync etc. off: for throwaway test clusters only, never for `aurora db up`
UNSAFE_FAST = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")


def bindir() -> Path:
    """Where initdb/postgres live: $AURORA_PG_BINDIR, pg_config, Debian's layout, or PATH."""
    candidates: list[Path] = []
    if env := os.environ.get("AURORA_PG_BINDIR"):
        candidates.append(Path(env))
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                    key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                    else 0, reverse=True)
    candidates.extend(Path(p) for p in debian)
    if found := shutil.which("initdb"):
        candidates.append(Path(found).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    raise DatabaseError("PostgreSQL server binaries (initdb, postgres) not found: install "
                        "them with `make system-deps` (Debian package postgresql) or set "
                        "AURORA_PG_BINDIR")


def server_user() -> str | None:
    """The OS user to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in filter(None, (os.environ.get("AURORA_PG_USER"), "postgres", "nobody")):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise DatabaseError("running as root and no unprivileged user (postgres) to run "
                        "PostgreSQL as; set AURORA_PG_USER")


def url(port: int, database: str = DATABASE) -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


@dataclass(frozen=True)
class Cluster:
    home: Home      # where the PID file and log live (ops/run/postgres.pid, logs/postgres.log)
    datadir: Path
    port: int
    pid: int

    def url(self, database: str = DATABASE) -> str:
        return url(self.port, database)


def _own(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _initdb(datadir: Path, user: str | None, *, fast: bool) -> None:
    datadir.mkdir(parents=True, exist_ok=True)
    datadir.chmod(0o700)
    _own(datadir, user)
    argv = [str(bindir() / "initdb"), "-D", str(datadir), "-U", SUPERUSER, "--auth=trust",
            "-E", "UTF8", "--no-locale"]
    if fast:
        argv.append("--no-sync")
    out = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=datadir,
                         **procs.as_user(user))
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise DatabaseError(f"initdb {datadir} failed: {last}")


def start(home: Home, datadir: Path, port: int, *, fast: bool = False,
          timeout: float = 30.0, max_connections: int = 200) -> Cluster:
    """Start (after initdb if new) a cluster on 127.0.0.1:``port`` with database ``aurora``.

    Every parent of ``datadir`` must be searchable by the server's user.
    """
    user = server_user()
    if not (datadir / "PG_VERSION").exists():
        _initdb(datadir, user, fast=fast)
    argv = [str(bindir() / "postgres"), "-D", str(datadir), "-p", str(port),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
            "-c", f"max_connections={max_connections}", *(UNSAFE_FAST if fast else ())]
    pid = procs.spawn(home, SERVICE, argv, cwd=datadir, user=user)
    cluster = Cluster(home, datadir, port, pid)
    _wait_ready(cluster, timeout)
    with connect(url(port, "postgres")) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                        (DATABASE,)).fetchone() is None:
            conn.execute(f"CREATE DATABASE {DATABASE}")
    return cluster


def _wait_ready(cluster: Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if procs.running(cluster.home, SERVICE) != cluster.pid:
            raise DatabaseError(f"PostgreSQL exited at start; see "
                                f"{cluster.home.log_file(SERVICE)}")
        try:
            connect(url(cluster.port, "postgres")).close()
            return
        except DatabaseUnavailableError:
            if time.monotonic() > deadline:
                stop(cluster.home)
                raise DatabaseError(f"PostgreSQL did not accept connections within "
                                    f"{timeout:.0f}s; see {cluster.home.log_file(SERVICE)}"
                                    ) from None
            time.sleep(0.1)


def running(home: Home) -> int | None:
    return procs.running(home, SERVICE)


def stop(home: Home, *, timeout: float = 30.0) -> bool:
    """Fast shutdown (SIGINT: roll back clients, checkpoint, exit) of the cluster by PID."""
    return procs.stop(home, SERVICE, timeout=timeout, sig=signal.SIGINT)
