"""Remembrancer ledger benchmark: durable appends, verify-audit, proof times.

    .venv/bin/python benchmarks/ledger_bench.py            # 100k and 1M entries (~2 min)
    .venv/bin/python benchmarks/ledger_bench.py --quick    # 10k and 100k (~20 s)
    .venv/bin/python benchmarks/ledger_bench.py --write    # also update docs/PERFORMANCE.md

Everything runs in a temporary home (deleted afterwards). Appends are durable
(``synchronous=FULL``, fsync per commit) with order-sized entries (a signed order
and ACK, ~700-byte payload). verify-audit runs as the operator runs it
(``aurora ledger verify-audit --json`` in a subprocess), its peak RSS read from
``wait4``; the log is built through the bulk path (``Ledger.extend``) first, so
the page cache is warm.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from aurora.home import Home  # noqa: E402
from aurora.ledger import Entry, Ledger  # noqa: E402

SIGNATURE = "A" * 86 + "=="
WEEK_OF_CHECKPOINTS = 7 * 86400 // 5


def order_entry(i: int) -> Entry:
    nonce = f"nonce-{i:016d}"
    order = {"treaty_id": "AURORA-AKASH-001", "tenant_id": "tenant-42", "region": "us-east-1",
             "gpu_hours": 2.5, "nonce": nonce, "deadline_utc": "2026-05-09T07:40:25Z",
             "callback_url": "https://tenant-42.example.com/callback", "signature": SIGNATURE}
    ack = {"ack_id": f"AKASH-JOB-{i:06d}", "provider_id": "akash", "rtt_ms": 251.5,
           "nonce": nonce, "signature": SIGNATURE}
    return Entry(kind="order", treaty_id="AURORA-AKASH-001", tenant_id="tenant-42",
                 subject=nonce, data={"order": order, "ack": ack})


def make_home(root: Path) -> Home:
    """An initialised throwaway home (config copied from the checkout, fresh keys)."""
    from aurora.provision import init_home

    for part in ("config", "templates", "schemas"):
        shutil.copytree(REPO / part, root / part)
    shutil.copytree(REPO / "ops", root / "ops", ignore=shutil.ignore_patterns(
        "data", "run", "backups", "keys"))
    home = Home(root)
    init_home(home)
    return home


# --- appends -------------------------------------------------------------------------------


def run_for(seconds: float, writers: int, in_flight: int, ledger: Ledger) -> tuple[float, int]:
    """Appends/s with ``writers`` threads each keeping ``in_flight`` appends outstanding."""
    stop = time.monotonic() + seconds
    counts = [0] * writers

    def work(slot: int) -> None:
        pending: collections.deque[object] = collections.deque()
        i = slot * 10_000_000
        while time.monotonic() < stop:
            pending.append(ledger.submit(order_entry(i)))
            i += 1
            if len(pending) >= in_flight:
                pending.popleft().result()  # type: ignore[attr-defined]
                counts[slot] += 1
        while pending:
            pending.popleft().result()  # type: ignore[attr-defined]
            counts[slot] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return sum(counts) / elapsed, sum(counts)


def bench_appends(home: Home, seconds: float) -> list[dict[str, object]]:
    db = home.data_dir / "appends.db"
    rows = []
    with Ledger.open(home, db=db) as ledger:
        ledger.extend(order_entry(i) for i in range(10_000))  # not an empty tree
        for name, writers, in_flight in (
                ("1 writer, append() one at a time", 1, 1),
                ("8 writers (threads), append() one at a time each", 8, 1),
                ("8 writers, 64 appends in flight each (submit(); the bridge's pattern)", 8, 64)):
            rate, count = run_for(seconds, writers, in_flight, ledger)
            rows.append({"case": name, "appends_per_s": round(rate), "appends": count})
            print(f"  {name}: {rate:,.0f} appends/s ({count} in {seconds:.0f}s)", flush=True)
        payload = len(ledger.get(0).payload)
    rows.append({"payload_bytes": payload})
    return rows


# --- verify-audit and proofs ---------------------------------------------------------------


def build(home: Home, size: int) -> tuple[Path, float]:
    db = home.data_dir / f"log-{size}.db"
    started = time.perf_counter()
    with Ledger.open(home, db=db) as ledger:
        ledger.extend(order_entry(i) for i in range(size))
    return db, time.perf_counter() - started


# `aurora ledger ...` exactly as the console script runs it, reporting its peak RSS
# (VmHWM) on exit. wait4's ru_maxrss would also count this benchmark's own memory,
# which Linux carries into a child across fork and exec.
CLI_WITH_PEAK_RSS = """
import atexit, re, sys
def peak():
    status = open("/proc/self/status").read()
    sys.stderr.write("VmHWM_kB=" + re.search(r"VmHWM:\\s+(\\d+)", status).group(1) + "\\n")
atexit.register(peak)
sys.argv[0] = "aurora"
from aurora.cli import main
main()
"""


def timed_verify(home: Home, db: Path) -> dict[str, object]:
    env = {**os.environ, "AURORA_HOME": str(home.root)}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CLI_WITH_PEAK_RSS, "ledger", "verify-audit",
                           "--json", "--db", str(db)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"verify-audit failed: {proc.stdout} {proc.stderr}")
    report = json.loads(proc.stdout)
    peak_kb = int(re.search(r"VmHWM_kB=(\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    return {"wall_s": round(wall, 2), "audit_s": report["seconds"],
            "peak_rss_mb": round(peak_kb / 1024, 1), "tree_size": report["tree_size"],
            "hashes_checked": report["stored_hashes_checked"],
            "checkpoints_verified": report["checkpoints_verified"]}


def time_calls(call: Callable[[int], object], args: Iterator[int], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        arg = next(args)
        started = time.perf_counter()
        call(arg)
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return {"mean_us": round(statistics.fmean(samples), 1),
            "p99_us": round(samples[int(len(samples) * 0.99)], 1)}


def add_checkpoints(home: Home, db: Path, count: int) -> None:
    """Store ``count`` signed checkpoints spread over the log, as a week of a writer
    persisting one every 5 s would (7 * 86400 / 5 = 120,960)."""
    import sqlite3

    from aurora.ledger import merkle
    from aurora.ledger.files import load_signer
    from aurora.ledger.note import Checkpoint, sign_checkpoint

    signer = load_signer(home)
    conn = sqlite3.connect(db)
    frontier = merkle.Frontier()
    rows = []
    size = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    step = max(1, size // count)
    for (leaf,) in conn.execute("SELECT leaf_hash FROM audit_log ORDER BY seq"):
        frontier.append(leaf)
        if frontier.size % step == 0:
            root = frontier.root()
            rows.append((frontier.size, root, "2025-10-22T00:00:00.000000Z",
                         sign_checkpoint(Checkpoint(signer.name, frontier.size, root), signer)))
    conn.executemany("INSERT OR IGNORE INTO checkpoints VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()


def bench_proofs(home: Home, db: Path, size: int) -> dict[str, dict[str, float]]:
    rng = random.Random(1)
    with Ledger.open(home, db=db, readonly=True) as ledger:
        ledger.tree_head()  # open the connection
        inclusion = time_calls(lambda i: ledger.inclusion_proof(i).verify(),
                               iter(lambda: rng.randrange(size), None), 2000)
        consistency = time_calls(lambda m: ledger.consistency_proof(m).verify(),
                                 iter(lambda: rng.randrange(1, size), None), 2000)
        head = time_calls(lambda _: ledger.tree_head(), iter(int, None), 2000)
    return {"inclusion": inclusion, "consistency": consistency, "tree_head": head}


# --- report --------------------------------------------------------------------------------


def markdown(results: dict[str, object], command: str) -> str:
    appends = results["appends"]
    assert isinstance(appends, list)
    payload = appends[-1]["payload_bytes"]
    lines = ["## Ledger", "",
             f"Measured {results['date']} on {results['machine']}; load average "
             f"{results['load']} when the run started. Reproduce with:", "",
             "```", command, "```", "",
             f"### Durable appends (WAL, `synchronous=FULL`, group commit; {payload}-byte "
             "order entries, each append returns a receipt with its inclusion proof and a "
             "signed checkpoint)", "",
             "| writers | appends/s |", "| --- | ---: |"]
    lines += [f"| {row['case']} | {row['appends_per_s']:,} |" for row in appends[:-1]]
    lines += ["", "### verify-audit (`aurora ledger verify-audit --json`, every leaf, every "
              "stored interior hash, roots and checkpoint signatures)", "",
              "| entries | build (bulk path) | verify-audit wall | of which audit | peak RSS |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    verify = results["verify"]
    assert isinstance(verify, list)
    for row in verify:
        build = f"{row['build_s']} s" if isinstance(row["build_s"], float) else "same log"
        entries = f"{row['tree_size']:,}" + (
            "" if isinstance(row["build_s"], float)
            else f" + {row['checkpoints_verified'] - 1:,} stored checkpoints (about a week "
                 "at one per 5 s)")
        lines.append(f"| {entries} | {build} | {row['wall_s']} s | {row['audit_s']} s | "
                     f"{row['peak_rss_mb']} MB |")
    proofs = results["proofs"]
    assert isinstance(proofs, dict)
    lines += ["", f"### Proofs at {proofs['size']:,} entries (read from stored hashes, and "
              "verified; 2000 random indexes)", "",
              "| | mean | p99 |", "| --- | ---: | ---: |"]
    for name in ("inclusion", "consistency", "tree_head"):
        row = proofs[name]
        lines.append(f"| {name.replace('_', ' ')} | {row['mean_us']} µs | {row['p99_us']} µs |")
    lines += ["", "Targets: ≥ 20,000 durable appends/s with group commit; verify-audit of 1M "
              "entries ≤ 5 s and ≤ 256 MB; each proof ≤ 1 ms at 1M entries. One writer "
              "that waits for each append before the next is bound by the fsync and the "
              "Python work per commit; appenders that keep several appends in flight "
              "(the asyncio bridge) share each fsync.", ""]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace (or add) the "## Ledger" section, leaving the other sections alone."""
    text = path.read_text() if path.exists() else "# Performance\n"
    pattern = re.compile(r"^## Ledger\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k entries only")
    parser.add_argument("--seconds", type=float, default=4.0, help="per append case")
    parser.add_argument("--write", action="store_true", help="update docs/PERFORMANCE.md")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [100_000, 1_000_000]
    command = "make install && .venv/bin/python benchmarks/ledger_bench.py" + (
        " --quick" if args.quick else "") + " --write"
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, Python "
                   f"{platform.python_version()}, SQLite {__import__('sqlite3').sqlite_version}"}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        home = make_home(Path(tmp) / "home")
        print("appends:", flush=True)
        results["appends"] = bench_appends(home, args.seconds)
        verify = []
        db = None
        for size in sizes:
            db, build_s = build(home, size)
            row = {"build_s": round(build_s, 1), **timed_verify(home, db)}
            verify.append(row)
            print(f"verify-audit {size:,}: {row}", flush=True)
        assert db is not None
        add_checkpoints(home, db, WEEK_OF_CHECKPOINTS)
        row = {"build_s": "+ checkpoints", **timed_verify(home, db)}
        verify.append(row)
        print(f"verify-audit {sizes[-1]:,} + {WEEK_OF_CHECKPOINTS:,} checkpoints: {row}",
              flush=True)
        results["verify"] = verify
        proofs: dict[str, object] = {"size": sizes[-1], **bench_proofs(home, db, sizes[-1])}
        results["proofs"] = proofs
        print(f"proofs at {sizes[-1]:,}: {proofs}", flush=True)
    section = markdown(results, command)
    print()
    print(section)
    if args.write:
        write_section(REPO / "docs" / "PERFORMANCE.md", section)


if __name__ == "__main__":
    main()
