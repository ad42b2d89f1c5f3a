"""Bridge throughput and latency through the full order path, on loopback.

    .venv/bin/python benchmarks/bridge_bench.py [--seconds 10] [--connections 1,16,64]
    .venv/bin/python benchmarks/bridge_bench.py --overhead [--rate 200] [--seconds 20]
    .venv/bin/python benchmarks/bridge_bench.py --postgres [--replicas 2] [--connections 64]

Throughput mode: a throwaway home whose treaty has caps high enough not to end
the run (everything else as shipped), the provider network with
``--zero-delay --unlimited-capacity`` and the bridge, all as real processes.
``wrk`` replays pre-signed orders, each with its own nonce, so every request
walks the whole path: size check, strict JSON, schema, deadline, Ed25519
signature, replay guard, policy, routing, provider HTTP call, ACK signature
check, durable ledger append (group commit) and the receipt. Every answer is
checked: a run counts only 200s.

Overhead mode: realistic provider delays, an open-loop client at ``--rate``
orders/s (after 5 s of unmeasured warm-up at the same rate); overhead per order =
client-observed latency − the time spent waiting on providers (the sum of every
attempt's duration, failed ones included, as the bridge recorded them in the ledger
entry the receipt carries), i.e. what the bridge, the client's HTTP hop and the ledger add.

PostgreSQL mode (``--postgres``): the same throughput run with ``database_url`` set to a
throwaway local cluster started for the run (``aurora.db.cluster``, durable settings:
fsync and synchronous_commit on, as ``aurora db up``), the schema created, and
``--replicas N`` bridge processes sharing the order port (SO_REUSEPORT), so the ledger
appends and the treaty state's claims all go to PostgreSQL.

``--bridge-cpus 1`` (Linux) splits the machine in two: the bridges on the CPUs listed,
everything else (PostgreSQL, the provider network, wrk, this script) on the others. The
bridges' figure is then what that many cores of bridge give with the database and the
providers on other machines: a measured stand-in for one bridge machine of a larger layout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from aurora.config import load_stack, load_workloads  # noqa: E402
from aurora.home import Home  # noqa: E402
from aurora.keys import load_private_key  # noqa: E402
from aurora.stack import UpOptions, down, up  # noqa: E402
from aurora.wire import new_order, sign_order  # noqa: E402
from support import make_home  # noqa: E402

LUA = r"""
local bodies = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
request = function()
  i = i + 1
  if i > #bodies then i = 1 end
  return wrk.format("POST", "/aurora/order", {["Content-Type"] = "application/json"}, bodies[i])
end
statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
local threads = {}
function setup(thread) threads[#threads + 1] = thread end
done = function(summary, latency, requests)
  -- response() ran in each thread's own Lua state: collect the counts from there
  local merged = {}
  for _, thread in ipairs(threads) do
    for s, n in pairs(thread:get("statuses")) do merged[s] = (merged[s] or 0) + n end
  end
  local parts = {}
  for s, n in pairs(merged) do parts[#parts + 1] = string.format('"%d": %d', s, n) end
  io.write(string.format('STATUS {%s}\n', table.concat(parts, ", ")))
  io.write(string.format("P50 %d P90 %d P99 %d MAX %d\n", latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def bench_home(root: Path, **stack: object) -> Home:
    make_home(root, **stack)
    treaty_path = root / "templates" / "aurora-treaty-akash.json"
    treaty = json.loads(treaty_path.read_text())
    treaty["quota"]["total_gpu_hours"] = 1e12
    treaty["quota"]["per_tenant_daily_gpu_hours"] = 1e12
    treaty_path.write_text(json.dumps(treaty))
    return Home(root)


def signed_orders(home: Home, count: int) -> list[str]:
    workloads = load_workloads(home)
    tenants = [w for w in workloads.tenants if w.tenant != "grey-miner"]
    keys = {w.tenant: load_private_key(home.tenant_key(w.tenant)) for w in tenants}
    from datetime import timedelta

    out = []
    for i in range(count):
        w = tenants[i % len(tenants)]
        order = new_order(treaty_id="AURORA-AKASH-001", tenant_id=w.tenant, region=w.regions[0],
                          gpu_hours=0.1, ttl=timedelta(hours=2))
        out.append(json.dumps(sign_order(order, keys[w.tenant]), separators=(",", ":")))
    return out


def run_wrk(url: str, bodies: Path, connections: int, seconds: int, script: Path) -> dict:
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s",
         str(script), url, "--", str(bodies)],
        capture_output=True, text=True, check=True)
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    statuses = json.loads(re.search(r"STATUS (\{.*\})", out).group(1))  # type: ignore[union-attr]
    p50, p90, p99, worst = map(int, re.search(r"P50 (\d+) P90 (\d+) P99 (\d+) MAX (\d+)",
                                              out).groups())  # type: ignore[union-attr]
    ok = int(statuses.get("200", 0))
    total = sum(int(n) for n in statuses.values())
    return {"connections": connections, "seconds": seconds, "requests_per_s": rps,
            "ok_per_s": round(rps * ok / total, 1) if total else 0.0, "statuses": statuses,
            "p50_ms": p50 / 1000, "p90_ms": p90 / 1000, "p99_ms": p99 / 1000,
            "max_ms": worst / 1000}


def _cpu_s(pid: int) -> float:
    """User + system CPU of a process (all its threads), in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postmaster_pid(url: str) -> int:
    """The PostgreSQL server's main process, from the data directory it reports."""
    from aurora.db.postgres import connect

    with connect(url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    return int((Path(row[0]) / "postmaster.pid").read_text().split()[0])


def server_cpu_seconds(postmaster: int) -> float:
    """CPU used so far by the server: its postmaster and every backend alive now."""
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return sum(_cpu_s(pid) for pid in [postmaster, *map(int, children)])


def bridge_pids(home: Home, replicas: int) -> list[int | None]:
    """Each replica's PID, None for one not running."""
    from aurora.procs import running
    from aurora.stack import replica_name

    return [running(home, replica_name(r)) for r in range(1, replicas + 1)]


def cpu_seconds(home: Home, replicas: int, postmaster: int | None) -> dict[str, float]:
    """CPU used so far by the stack's bridges, the provider network and the server."""
    from aurora.procs import running

    out = {"bridges": sum(_cpu_s(pid) for pid in bridge_pids(home, replicas) if pid),
           "providers": _cpu_s(running(home, "providers") or 0)}
    if postmaster is not None:
        out["postgres"] = server_cpu_seconds(postmaster)
    return out


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` onto ``cpus`` (threads it starts later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def split_cpus(spec: str) -> tuple[set[int], set[int]]:
    """(bridges' CPUs, everyone else's) from ``--bridge-cpus`` such as ``1`` or ``2,3``."""
    bridges = {int(cpu) for cpu in spec.split(",")}
    allowed = os.sched_getaffinity(0)
    rest = allowed - bridges
    if not bridges <= allowed or not rest:
        sys.exit(f"--bridge-cpus {spec}: name CPUs this process may use, and leave one out")
    return bridges, rest


def throughput(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk (make system-deps does it)")
    split = split_cpus(args.bridge_cpus) if args.bridge_cpus else None
    if split:  # the cluster, the providers and wrk are started from here: they inherit it
        os.sched_setaffinity(0, split[1])
    with tempfile.TemporaryDirectory() as tmp, postgres(args.postgres, Path(tmp)) as url:
        home = bench_home(Path(tmp) / "home", **({"database_url": url} if url else {}))
        postmaster = postmaster_pid(url) if url else None
        stack = load_stack(home)
        up(home, UpOptions(traffic=False, observatory=False, backups=False, zero_delay=True,
                           replicas=args.replicas))
        try:
            if split:
                for r, pid in enumerate(bridge_pids(home, args.replicas), start=1):
                    if not pid:
                        sys.exit(f"bridge replica {r} is not running")
                    pin(pid, split[0])
                print(json.dumps({"bridge_cpus": sorted(split[0]),
                                  "other_cpus": sorted(split[1])}), flush=True)
            url = f"{stack.bridge_url}"
            script = Path(tmp) / "orders.lua"
            script.write_text(LUA)
            results = []
            for connections in args.connections:
                per_run = int(args.max_rate * args.seconds)
                bodies = Path(tmp) / f"orders-{connections}.jsonl"
                bodies.write_text("\n".join(signed_orders(home, per_run)) + "\n")
                run_wrk(url, bodies, connections, 2, script)  # warm-up (its orders are spent)
                bodies.write_text("\n".join(signed_orders(home, per_run)) + "\n")
                before = cpu_seconds(home, args.replicas, postmaster)
                result = run_wrk(url, bodies, connections, args.seconds, script)
                used = cpu_seconds(home, args.replicas, postmaster)
                orders = int(result["statuses"].get("200", 0))
                # CPU per acknowledged order over the measured run (/proc, every thread)
                result["cpu_ms_per_order"] = {
                    name: round((used[name] - before.get(name, 0.0)) * 1e3 / orders, 3)
                    for name in used} if orders else {}
                results.append(result)
                print(json.dumps(result), flush=True)
            verify = subprocess.run([sys.executable, "-m", "aurora", "ledger", "verify-audit"],
                                    env={"AURORA_HOME": str(home.root), "PATH": "/usr/bin:/bin"},
                                    capture_output=True, text=True)
            print(verify.stdout.strip().splitlines()[0] if verify.stdout else verify.stderr)
        finally:
            down(home)


@contextlib.contextmanager
def postgres(wanted: bool, tmp: Path) -> Iterator[str]:
    """A durable throwaway cluster with Aurora's schema, stopped by PID afterwards."""
    if not wanted:
        yield ""
        return
    from aurora.db import cluster, schema
    from aurora.ports import free_port

    root = Path(tempfile.mkdtemp(prefix="aurora-bench-pg-"))  # searchable by postgres
    root.chmod(0o755)
    pg_home = Home(root)
    running = cluster.start(pg_home, root / "data", free_port())
    try:
        schema.init(running.url())
        yield running.url()
    finally:
        cluster.stop(pg_home)
        shutil.rmtree(root, ignore_errors=True)


async def _overhead(home: Home, rate: float, seconds: float,
                    warmup: float = 5.0) -> tuple[list[float], int]:
    import aiohttp

    stack = load_stack(home)
    bodies = signed_orders(home, int(rate * (seconds + warmup)) + 50)
    overheads: list[float] = []
    failovers = 0
    rng = random.Random(1)

    async def one(session: aiohttp.ClientSession, body: str, measured: bool) -> None:
        t0 = time.perf_counter()
        async with session.post(f"{stack.bridge_url}/aurora/order", data=body,
                                headers={"content-type": "application/json"}) as response:
            answer = await response.json()
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status == 200 and measured:
            nonlocal failovers
            attempts = answer["receipt"]["entry"]["data"]["route"]["attempts"]
            failovers += len(attempts) - 1
            overheads.append(elapsed - sum(float(a["ms"]) for a in attempts))

    async with aiohttp.ClientSession() as session:
        await open_loop(bodies, rate, seconds, warmup, rng,
                        lambda body, measured: one(session, body, measured))
    return overheads, failovers


async def open_loop(bodies: list[str], rate: float, seconds: float, warmup: float,
                    rng: random.Random,
                    send: Callable[[str, bool], Coroutine[object, object, None]]) -> None:
    """Poisson arrivals at ``rate``/s for ``warmup + seconds``, each ``send(body, measured)``
    as its own task (an open loop: a slow answer does not delay the next order). The
    first ``warmup`` seconds open the keep-alive connections: not measured."""
    tasks = []
    start = time.perf_counter()
    at = 0.0
    for body in bodies:
        at += rng.expovariate(rate)
        if at > seconds + warmup:
            break
        delay = start + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(body, at > warmup)))
    await asyncio.gather(*tasks)


def quantile(ordered: list[float], p: float) -> float:
    """The ``p`` quantile of sorted ``ordered`` (nearest rank), in ms to 3 places."""
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)


def overhead(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = bench_home(Path(tmp) / "home")
        up(home, UpOptions(traffic=False, observatory=False, backups=False))
        try:
            measured, failovers = asyncio.run(_overhead(home, args.rate, args.seconds))
            values = sorted(measured)
        finally:
            down(home)
    print(json.dumps({"rate": args.rate, "seconds": args.seconds, "filled": len(values),
                      "failovers": failovers,
                      "overhead_p50_ms": quantile(values, 0.5),
                      "overhead_p99_ms": quantile(values, 0.99),
                      "overhead_max_ms": round(values[-1], 3)}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 16, 64])
    parser.add_argument("--max-rate", type=float, default=4000,
                        help="pre-signed orders per second of run (must exceed the throughput)")
    parser.add_argument("--overhead", action="store_true")
    parser.add_argument("--postgres", action="store_true",
                        help="PostgreSQL mode: a throwaway durable local cluster")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--bridge-cpus", default="",
                        help="CPUs for the bridges only, e.g. 1: everything else on the rest")
    parser.add_argument("--rate", type=float, default=200)
    args = parser.parse_args()
    if args.overhead:
        overhead(args)
    else:
        args.seconds = int(args.seconds)
        throughput(args)


if __name__ == "__main__":
    main()
