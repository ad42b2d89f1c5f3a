"""The tenant-sticky split on a real HAProxy in front of two real HTTP servers."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aurora.canary.haproxy import (
    RuntimeApi,
    Server,
    SplitConfig,
    argv,
    check_config,
    render,
    write_config,
)
from aurora.canary.plan import Plan, bucket_of, check_split, track_of
from aurora.errors import AuroraError, ConfigError
from aurora.procs import wait_http
from support import free_port

pytestmark = pytest.mark.integration
STANDIN = Path(__file__).with_name("standin.py")
TENANTS = [f"tenant-{i:02d}" for i in range(50)]


@dataclass
class Split:
    url: str
    api: RuntimeApi
    config: Path
    canary: subprocess.Popen[bytes]


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def split(tmp_path: Path) -> Iterator[Split]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        ports, servers = {}, {}
        for track in ("stable", "canary"):
            ports[track] = free_port()
            started.append(subprocess.Popen(
                [sys.executable, str(STANDIN), str(ports[track]), track],
                stdin=subprocess.DEVNULL, start_new_session=True))
            servers[track] = started[-1]
            wait_http(f"http://127.0.0.1:{ports[track]}/healthz")
        cfg = SplitConfig("127.0.0.1", free_port(), [Server("127.0.0.1", ports["stable"])],
                          [Server("127.0.0.1", ports["canary"])],
                          tmp_path / "admin.sock", tmp_path / "weights.map")
        path = tmp_path / "haproxy.cfg"
        write_config(cfg, path, weight=10)
        check_config(path)
        log = open(tmp_path / "haproxy.log", "wb")  # noqa: SIM115  (closed with the process)
        started.append(subprocess.Popen(argv(path), stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True))
        log.close()
        url = f"http://127.0.0.1:{cfg.bind_port}"
        api = RuntimeApi(cfg.admin_socket, cfg.weight_map)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(AuroraError, httpx.HTTPError):
                if api.weight() == 10 and httpx.post(f"{url}/aurora/order",
                                                     json={"tenant_id": "probe"}).is_success:
                    break
            assert started[-1].poll() is None, (tmp_path / "haproxy.log").read_text()
            assert time.monotonic() < deadline, "haproxy did not come up"
            time.sleep(0.1)
        yield Split(url, api, path, servers["canary"])
    finally:
        for process in reversed(started):
            _stop(process)


@dataclass(frozen=True)
class Answer:
    tenant: str
    started: float
    finished: float
    status: int
    track: str | None


async def _send(url: str, tenants: list[str], concurrency: int,
                during: tuple[int, asyncio.Event] | None = None) -> list[Answer]:
    """Send one order per entry of ``tenants`` with ``concurrency`` in flight; bounded."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for t in tenants:
        queue.put_nowait(t)
    answers: list[Answer] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            tenant = queue.get_nowait()
            started = time.monotonic()
            try:
                r = await client.post(f"{url}/aurora/order",
                                      json={"tenant_id": tenant, "gpu_hours": 0.1})
                status, track = r.status_code, r.json().get("track")
            except httpx.HTTPError:
                status, track = 0, None
            answers.append(Answer(tenant, started, time.monotonic(), status, track))
            if during is not None and len(answers) == during[0]:
                during[1].set()

    async with httpx.AsyncClient(timeout=10.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return answers


def test_rendered_config_is_valid_and_a_broken_one_is_refused(tmp_path: Path) -> None:
    cfg = SplitConfig("127.0.0.1", free_port(), [Server("127.0.0.1", free_port())],
                      [Server("127.0.0.1", free_port())], tmp_path / "a.sock",
                      tmp_path / "w.map")
    path = tmp_path / "haproxy.cfg"
    write_config(cfg, path, weight=10)
    check_config(path)
    (tmp_path / "w.map").unlink()  # the map the config names is gone
    with pytest.raises(ConfigError, match="haproxy rejects"):
        check_config(path)
    path.write_text(render(cfg).replace("mode http", "mode htttp", 1))
    with pytest.raises(ConfigError, match="haproxy rejects"):
        check_config(path)
    with pytest.raises(ConfigError):
        write_config(cfg, path, weight=101)
    with pytest.raises(ConfigError):
        SplitConfig("127.0.0.1", 1, [], [Server("127.0.0.1", 2)], tmp_path / "a", tmp_path / "b")


def test_split_is_sticky_per_tenant_follows_the_weight_and_moves_without_a_failed_order(
        split: Split) -> None:
    before = split.api.served()
    # 50 tenants, 4 orders each, 8 in flight, at 10 %
    answers = asyncio.run(_send(split.url, TENANTS * 4, 8))
    assert [a.status for a in answers] == [200] * len(answers)
    for tenant in TENANTS:
        tracks = {a.track for a in answers if a.tenant == tenant}
        assert tracks == {track_of(tenant, 10)}, tenant  # sticky, and where the hash says
    served = {k: v - before[k] for k, v in split.api.served().items()}
    assert served["canary"] == sum(a.track == "canary" for a in answers)
    assert served["stable"] == sum(a.track == "stable" for a in answers)
    measured = check_split(served["canary"], served["stable"], 10, Plan())
    assert not measured.drifted
    on_canary = sum(bucket_of(t) < 10 for t in TENANTS)
    assert measured.share == pytest.approx(on_canary / len(TENANTS))

    # 10 -> 50 through the runtime API while 16 orders are in flight: none fails
    changed: dict[str, float] = {}

    async def run() -> list[Answer]:
        go = asyncio.Event()
        sending = asyncio.create_task(_send(split.url, TENANTS * 8, 16, (100, go)))
        await go.wait()
        changed["start"] = time.monotonic()
        await asyncio.to_thread(split.api.set_weight, 50)
        changed["done"] = time.monotonic()
        return await sending

    before = split.api.served()
    answers = asyncio.run(run())
    assert len(answers) == 400
    assert [a.status for a in answers] == [200] * 400  # zero failed requests
    assert split.api.weight() == 50
    early = [a for a in answers if a.finished < changed["start"]]
    late = [a for a in answers if a.started > changed["done"]]
    assert early and late
    assert all(a.track == track_of(a.tenant, 10) for a in early)
    assert all(a.track == track_of(a.tenant, 50) for a in late)
    # orders routed while the change was landing went to one of the two: never elsewhere
    assert all(a.track in (track_of(a.tenant, 10), track_of(a.tenant, 50)) for a in answers)
    served = {k: v - before[k] for k, v in split.api.served().items()}
    assert served["canary"] == sum(a.track == "canary" for a in answers)
    assert served["stable"] == sum(a.track == "stable" for a in answers)
    assert split.config.with_name("weights.map").read_text() == "canary 50\n"

    # weight 0: no order reaches the canary any more
    split.api.set_weight(0)
    answers = asyncio.run(_send(split.url, TENANTS * 2, 8))
    assert {a.track for a in answers} == {"stable"}


def test_orders_without_a_tenant_go_to_stable_and_bad_weights_are_refused(
        split: Split) -> None:
    split.api.set_weight(100)
    assert httpx.post(f"{split.url}/aurora/order", json={"tenant_id": "x-1"}).json()["track"] \
        == "canary"
    for body in (b"{\"no_tenant\": 1}", b"[1, 2]"):
        r = httpx.post(f"{split.url}/aurora/order", content=body)
        assert r.json()["track"] == "stable"
    with pytest.raises(ConfigError):
        split.api.set_weight(-1)
    assert split.api.weight() == 100

    # the canary dies: its tenants' orders are served by stable instead of failing
    _stop(split.canary)
    deadline = time.monotonic() + 60
    while ",DOWN," not in split.api.command("show stat"):
        assert time.monotonic() < deadline, "haproxy never marked the canary down"
        time.sleep(0.5)
    r = httpx.post(f"{split.url}/aurora/order", json={"tenant_id": "x-1"})
    assert (r.status_code, r.json()["track"]) == (200, "stable")
