"""Remembrancer on PostgreSQL: durable appends from several writer processes, verify-audit.

    .venv/bin/python benchmarks/ledger_pg_bench.py                 # 1M entries (~3 min)
    .venv/bin/python benchmarks/ledger_pg_bench.py --size 100000   # quicker
    .venv/bin/python benchmarks/ledger_pg_bench.py --backups-only  # backups (verified) only

Starts its own PostgreSQL 15 cluster (initdb + postgres on a free port in a temp dir,
default durability: fsync on, synchronous_commit on, so every acknowledged append is
on disk), stopped by PID at the end. Appends: each writer is its own process with its
own Ledger (group commit: 8 threads x 64 appends in flight), all appending to one log
through the tree-state row lock, as bridge replicas do. verify-audit runs as the
operator runs it (``aurora ledger verify-audit --json --db URL``), with its peak RSS;
the log is built by COPY of precomputed leaves and stored hashes, 50,000 per
transaction, then signed. Backups: ``aurora ledger backup`` (pg_dump, loaded into the
scratch database, audited, sealed) in a row on a ledger of ``--backup-size`` entries, with
the server's forced checkpoints (``pg_stat_bgwriter.checkpoints_req``) counted over them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from ledger_bench import make_home, order_entry, run_for, timed_verify  # noqa: E402

from aurora.db import cluster, schema  # noqa: E402
from aurora.db.postgres import connect  # noqa: E402
from aurora.home import Home  # noqa: E402
from aurora.ledger import Ledger  # noqa: E402
from aurora.ports import free_port  # noqa: E402

WRITER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from ledger_bench import run_for
from aurora.ledger import Ledger
seconds = float(sys.argv[2])
with Ledger.open() as ledger:
    ledger.append(__import__("ledger_bench").order_entry(0))  # connected and warm
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    rate, count = run_for(seconds, 8, 64, ledger)
print(count, flush=True)
"""


def bench_processes(home: Home, processes: int, seconds: float) -> dict[str, object]:
    env = {**os.environ, "AURORA_HOME": str(home.root)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(REPO / "benchmarks"),
                               str(seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env) for _ in range(processes)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    counts = [int(proc.communicate(timeout=seconds + 120)[0].strip()) for proc in procs]
    wall = time.perf_counter() - started
    rate = sum(counts) / wall
    print(f"  {processes} writer process(es): {rate:,.0f} appends/s ({sum(counts)} in "
          f"{wall:.1f}s)", flush=True)
    return {"processes": processes, "appends_per_s": round(rate), "appends": sum(counts)}


def bench_appends(home: Home, url: str, seconds: float) -> None:
    os.environ["AURORA_DATABASE_URL"] = url
    schema.init(url)
    print("durable appends (group commit, 8 threads x 64 in flight per process):")
    with Ledger.open(home) as ledger:
        ledger.extend(order_entry(i) for i in range(10_000))  # not an empty tree
        one = run_for(seconds, 8, 64, ledger)[0]
        print(f"  in-process, 1 Ledger: {one:,.0f} appends/s", flush=True)
    for processes in (1, 2, 4):
        bench_processes(home, processes, seconds)


def bench_backups(home: Home, server: str, url: str, size: int, count: int) -> None:
    from aurora.ledger.backup import backup

    os.environ["AURORA_DATABASE_URL"] = url
    schema.init(url)
    bulk_load(url, size)
    with Ledger.open(home) as ledger:
        ledger.checkpoint()

    def forced() -> int:
        with connect(server) as conn:
            row = conn.execute("SELECT checkpoints_req FROM pg_stat_bgwriter").fetchone()
        return int(row[0]) if row else 0

    backup(home)  # the first makes the scratch database
    before, times = forced(), []
    for _ in range(count):
        t0 = time.perf_counter()
        backup(home)
        times.append(time.perf_counter() - t0)
    times.sort()
    print(f"backups of a {size:,}-entry ledger: {count} in a row, median "
          f"{times[len(times) // 2]:.3f} s, max {times[-1]:.3f} s, "
          f"{forced() - before} forced checkpoint(s)", flush=True)


def bulk_load(url: str, size: int) -> None:
    """COPY ``size`` precomputed leaves and their stored hashes (the entry is prepared
    once and numbered per row: the audit's work does not depend on the content)."""
    from aurora.ledger import merkle
    from aurora.ledger.entry import prepare
    from aurora.ledger.files import now_rfc3339
    from aurora.ledger.pgstore import PgStore

    entry = prepare(order_entry(0))
    store = PgStore(url, readonly=False)
    frontier = merkle.Frontier()
    ts = now_rfc3339()
    try:
        for start in range(0, size, 50_000):
            rows, hashes = [], []
            first = merkle.stored_hash_count(start)
            for seq in range(start, min(size, start + 50_000)):
                payload = entry.payload(seq, ts)
                leaf = merkle.leaf_hash(payload)
                hashes += frontier.append(leaf)
                rows.append((seq, ts, entry.kind, entry.treaty_id, entry.tenant_id,
                             entry.subject, payload.decode(), leaf))
            with store.transaction(write=True):
                store.insert(rows, first, hashes)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="entries for verify-audit")
    parser.add_argument("--seconds", type=float, default=5.0, help="per append case")
    parser.add_argument("--no-appends", action="store_true", help="verify-audit only")
    parser.add_argument("--backups", type=int, default=20, help="backups in a row")
    parser.add_argument("--backup-size", type=int, default=5_000, help="entries backed up")
    parser.add_argument("--backups-only", action="store_true", help="the backup case only")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="aurora-pgbench-"))
    root.chmod(0o755)  # the server runs as the postgres user when we are root
    pg_home = Home(root / "pg")
    started = cluster.start(pg_home, root / "pg" / "data", free_port())
    try:
        home = make_home(root / "home")
        with connect(started.url("postgres")) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            conn.execute("CREATE DATABASE appends")
            conn.execute("CREATE DATABASE audit")
            conn.execute("CREATE DATABASE backups")
        print(f"PostgreSQL {version[0] if version else '?'}, {os.cpu_count()} CPUs, "
              f"{platform.python_version()}, load {os.getloadavg()}", flush=True)

        if args.backups:
            bench_backups(home, started.url("postgres"), started.url("backups"),
                          args.backup_size, args.backups)
            if args.backups_only:
                return
        if not args.no_appends:
            bench_appends(home, started.url("appends"), args.seconds)

        audit_url = started.url("audit")
        schema.init(audit_url)
        os.environ["AURORA_DATABASE_URL"] = audit_url
        t0 = time.perf_counter()
        bulk_load(audit_url, args.size)
        with Ledger.open(home) as ledger:
            ledger.checkpoint()  # signed at the full size: the audit checks it
        build_s = time.perf_counter() - t0
        print(f"built {args.size:,} entries in {build_s:.1f}s (COPY)", flush=True)
        verify = timed_verify(home, audit_url)  # type: ignore[arg-type]
        print(f"verify-audit {args.size:,}: {verify['wall_s']} s wall, {verify['audit_s']} s "
              f"audit, {verify['peak_rss_mb']} MB peak RSS", flush=True)
    finally:
        cluster.stop(pg_home)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
