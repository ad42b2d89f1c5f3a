"""Fixtures for the observatory tests: a real Prometheus (started and stopped by PID),
the synthetic treaty feed, and a throwaway GnuPG home with a fresh key."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import start_http_server

from aurora.slo.promconfig import prometheus_argv
from slo.synthetic import Feed, registries

REPO = Path(__file__).resolve().parents[2]


from support import free_port, make_home  # noqa: E402,F401  (re-exported)

OPS = REPO / "ops"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"gave up waiting {timeout:.0f}s for {what} (last: {last!r})")


@dataclass
class Prometheus:
    """A real Prometheus we started; ``stop()`` signals exactly its PID."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(cls, config: Path, data_dir: Path, log: Path, port: int | None = None,
              ) -> Prometheus:
        port = port or free_port()
        with open(log, "wb") as out:
            process = subprocess.Popen(prometheus_argv(config, port, data_dir),
                                       stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        prom = cls(process, f"http://127.0.0.1:{port}", log)

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited: {log.read_text()[-2000:]}")
            try:
                return httpx.get(f"{prom.url}/-/ready", timeout=1).is_success
            except httpx.HTTPError:
                return False

        wait_until(ready, 30, "prometheus to be ready")
        return prom

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def get(self, path: str, **params: str) -> dict:  # type: ignore[type-arg]
        response = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        return response.json()  # type: ignore[no-any-return]


def backfilled_prometheus(workdir: Path, openmetrics: str | None) -> Prometheus:
    """Prometheus over data written with ``promtool tsdb create-blocks-from openmetrics``."""
    data = workdir / "data"
    data.mkdir(parents=True)
    if openmetrics is not None:
        source = workdir / "input.om"
        source.write_text(openmetrics)
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source),
                        str(data)], check=True, capture_output=True, timeout=120)
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n")
    return Prometheus.start(config, data, workdir / "prometheus.log")


@dataclass
class Exporters:
    feed: Feed
    treaty_port: int
    providers_port: int


@pytest.fixture(scope="module")
def live_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An Aurora home for a module's live tests (AURORA_HOME set while the module runs)."""
    root = make_home(tmp_path_factory.mktemp("live") / "home")
    old = os.environ.get("AURORA_HOME")
    os.environ["AURORA_HOME"] = str(root)
    yield root
    if old is None:
        os.environ.pop("AURORA_HOME", None)
    else:
        os.environ["AURORA_HOME"] = old


@pytest.fixture(scope="module")
def exporters(live_home: Path) -> Iterator[Exporters]:
    """The synthetic feed served on the home's metrics and providers ports."""
    import json

    stack = json.loads((live_home / "config" / "stack.json").read_text())
    feed = Feed()
    lock = threading.Lock()
    last = [time.monotonic()]
    minute = [0.0]

    def advance() -> None:
        with lock:
            now = time.monotonic()
            elapsed, last[0] = now - last[0], now
            minute[0] += elapsed
            windows = int(minute[0] // 1.0)  # one fill-rate observation per second here
            minute[0] -= windows
            feed.step(elapsed, windows)

    treaty_registry, provider_registry = registries(feed, advance=advance)
    servers = [start_http_server(stack["metrics_port"], "127.0.0.1", treaty_registry),
               start_http_server(stack["providers_port"], "127.0.0.1", provider_registry)]
    yield Exporters(feed, stack["metrics_port"], stack["providers_port"])
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def gnupghome() -> Iterator[tuple[Path, str]]:
    """A temporary GNUPGHOME holding one fresh ed25519 signing key; yields (home, key id)."""
    # short path: gpg-agent's socket path must stay under ~100 bytes
    home = Path(tempfile.mkdtemp(prefix="aurora-gpg-", dir="/tmp"))
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
                    "Aurora Test <observatory-test@aurora.invalid>", "ed25519", "default",
                    "never"], check=True, capture_output=True, env=env, timeout=60)
    listing = subprocess.run(["gpg", "--batch", "--with-colons", "--list-secret-keys"],
                             check=True, capture_output=True, text=True, env=env).stdout
    key_id = next(line.split(":")[4] for line in listing.splitlines()
                  if line.startswith("sec:"))
    yield home, key_id
    # the agent this keyring started, addressed by its home directory
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                   capture_output=True, timeout=30)
    shutil.rmtree(home, ignore_errors=True)
