"""What the canary split (HAProxy 2.6 reading the tenant from the body) adds to an order.

    .venv/bin/python benchmarks/haproxy_bench.py [--rate 200] [--seconds 30]

A throwaway home, the provider network with ``--zero-delay`` (so the order's own time is
mostly the bridge's, and the proxy's share is not lost in provider latency) and the bridge
as real processes; HAProxy with the rendered split config in front, both of its backends
pointing at that bridge (weight 10). An open-loop Poisson client sends pre-signed orders at
``--rate``, each one to the bridge directly or through HAProxy by a coin flip, so both
paths see the same machine at the same moments. Only 200s count. The overhead is the
difference of the two paths' latency quantiles (client-observed, full order path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from bridge_bench import bench_home, open_loop, quantile, signed_orders  # noqa: E402

from aurora.canary.haproxy import (  # noqa: E402
    RuntimeApi,
    Server,
    SplitConfig,
    argv,
    check_config,
    write_config,
)
from aurora.config import load_stack  # noqa: E402
from aurora.ports import free_port  # noqa: E402
from aurora.stack import UpOptions, down, up  # noqa: E402


async def _run(direct: str, proxied: str, bodies: list[str], rate: float, seconds: float,
               warmup: float = 5.0) -> dict[str, list[float]]:
    import aiohttp

    latencies: dict[str, list[float]] = {"direct": [], "haproxy": []}
    rng = random.Random(1)
    failures = 0

    async def one(session: aiohttp.ClientSession, path: str, body: str, measured: bool) -> None:
        nonlocal failures
        url = proxied if path == "haproxy" else direct
        t0 = time.perf_counter()
        async with session.post(f"{url}/aurora/order", data=body,
                                headers={"content-type": "application/json"}) as response:
            await response.read()
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status != 200:
            failures += 1
        elif measured:
            latencies[path].append(elapsed)

    async with aiohttp.ClientSession() as session:
        await open_loop(bodies, rate, seconds, warmup, rng, lambda body, measured: one(
            session, "haproxy" if rng.random() < 0.5 else "direct", body, measured))
    if failures:
        raise SystemExit(f"{failures} orders were not answered 200")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = bench_home(Path(tmp) / "home")
        stack = load_stack(home)
        up(home, UpOptions(traffic=False, observatory=False, backups=False, zero_delay=True))
        proxy = None
        try:
            bridge = Server("127.0.0.1", stack.bridge_port)
            cfg = SplitConfig("127.0.0.1", free_port(), [bridge], [bridge],
                              Path(tmp) / "admin.sock", Path(tmp) / "weights.map")
            path = Path(tmp) / "haproxy.cfg"
            write_config(cfg, path, weight=10)
            check_config(path)
            proxy = subprocess.Popen(argv(path), stdin=subprocess.DEVNULL,
                                     start_new_session=True)
            api = RuntimeApi(cfg.admin_socket, cfg.weight_map)
            for _ in range(100):
                try:
                    api.weight()
                    break
                except Exception:
                    time.sleep(0.1)
            bodies = signed_orders(home, int(args.rate * (args.seconds + 5)) + 100)
            lat = asyncio.run(_run(stack.bridge_url, f"http://127.0.0.1:{cfg.bind_port}",
                                   bodies, args.rate, args.seconds))
            served = api.served()
        finally:
            if proxy is not None:
                proxy.terminate()
                proxy.wait(timeout=10)
            down(home)
    result = {"rate": args.rate, "seconds": args.seconds, "served_by_haproxy": served}
    for name, values in lat.items():
        ordered = sorted(values)
        result[name] = {"orders": len(values), "p50_ms": quantile(ordered, 0.5),
                        "p90_ms": quantile(ordered, 0.9), "p99_ms": quantile(ordered, 0.99),
                        "max_ms": round(max(values), 3)}
    result["overhead_p50_ms"] = round(result["haproxy"]["p50_ms"]  # type: ignore[index]
                                      - result["direct"]["p50_ms"], 3)  # type: ignore[index]
    result["overhead_p99_ms"] = round(result["haproxy"]["p99_ms"]  # type: ignore[index]
                                      - result["direct"]["p99_ms"], 3)  # type: ignore[index]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
