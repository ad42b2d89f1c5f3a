"""The operator's commands, run as written, against one running stack.

Every command of the README's "Operating it" table and every line of the code blocks of
docs/RUNBOOK.md is run here by ``Operator.sh`` (or ``Operator.start``), through bash in the
home's directory, the way an operator types it. Only two things are changed on the way
(``Operator.localize``): ``localhost:<default port>`` becomes this stack's port (the home has
free ports of its own) and the seed's GnuPG key id becomes a throwaway key's.
``tests/core/test_documented_commands.py`` checks that each documented command appears here
as the literal argument of ``sh``/``start``, so a newly documented command without a test fails.

One stack for the module (``integration.live.running_stack``: rules time-compressed, 5 orders/s),
with the bridge's production fill sampling (one fill-rate observation a minute); the tests run
in order, as an operator's day would:

1. the seed's fill-rate quantile has a number from the first order on (not after a minute);
2. the stack commands (`aurora status|init|up`, `make smoke-e2e`, health check);
3. an order by hand and every ledger command on it;
4. tenant traffic and every kind of fault;
5. the drills (`aurora drill alert|restore|rollback`) and the incident commands;
6. the SLO report and the runbook's soak blocks (before day 1, hour 72, day 7);
7. tampering with the live ledger: the provenance auditor's counters move, the SEV1 alert
   fires in Prometheus, an incident opens; the runbook's SEV1 steps and emergency rollback;
8. rotating the chaos and incident-receiver bearer tokens (the runbook's block);
9. `make down` leaves a self-contained ledger file; the runbook's data recovery.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aurora.slo.queries import SEED_FILL_P95
from aurora.tokens import CHAOS, INCIDENTS, NAMES, bearer_header, read_token
from integration.live import LiveStack, running_stack, wait_until
from support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

SEED_KEY = "6E4082C6A410F340"  # the seed's key id in docs/RUNBOOK.md
DEFAULT_PORTS = {"8080": "bridge_port", "9109": "metrics_port", "9110": "providers_port",
                 "9090": "prometheus_port", "9093": "alertmanager_port",
                 "9111": "incidents_port"}
# the live tests' bridge settings, but the production fill sampling (fill_bucket_every 1m)
BRIDGE_ENV = {"AURORA_FILL_WINDOW": "10s", "AURORA_PROVENANCE_WINDOW": "5m"}
# what `make up` needs in a home: the checkout's Makefile, scripts and virtual environment
CHECKOUT = ("Makefile", "pyproject.toml", "requirements.lock", "scripts", ".venv")


@dataclass
class Operator:
    live: LiveStack
    env: dict[str, str]
    key: str

    @property
    def root(self) -> Path:
        return self.live.home.root

    def localize(self, command: str) -> str:
        stack = json.loads((self.root / "config" / "stack.json").read_text())
        for port, name in DEFAULT_PORTS.items():
            command = re.sub(rf"localhost:{port}\b", f"127.0.0.1:{stack[name]}", command)
        return command.replace(SEED_KEY, self.key)

    def sh(self, command: str, *, expect: int | None = 0, errexit: bool = True,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``command`` (one line or a whole runbook block) with bash in the home."""
        flags = ["-e", "-o", "pipefail"] if errexit else []
        done = subprocess.run(["bash", *flags, "-c", self.localize(command)], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        assert expect is None or done.returncode == expect, (
            f"$ {command}\nexit {done.returncode}, expected {expect}\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        return done

    def start(self, command: str) -> subprocess.Popen[str]:
        """Start ``command`` in the background (it is stopped by its PID)."""
        return subprocess.Popen(["bash", "-c", f"exec {self.localize(command)}"],
                                cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    def entries(self) -> int:
        db = sqlite3.connect(f"file:{self.live.home.ledger_db}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT count(*) FROM audit_log").fetchone()[0])
        finally:
            db.close()


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory, gnupghome: tuple[Path, str]
       ) -> Iterator[Operator]:
    root = tmp_path_factory.mktemp("operator")
    keyring, key = gnupghome
    user = root / "user"  # $HOME: `make up` writes ~/.curlrc
    user.mkdir()
    # the seed's and the runbook's commands as written: the SQLite default (its sqlite3
    # commands, .db.gz backups, aurora rollback), also under AURORA_TEST_BACKEND=postgresql
    with running_stack(root / "home", stack={"database_url": ""}, extra_env=BRIDGE_ENV) as live:
        for name in CHECKOUT:
            (live.home.root / name).symlink_to(REPO / name)
        env = {**os.environ, "AURORA_HOME": str(live.home.root), "HOME": str(user),
               "GNUPGHOME": str(keyring), "COLUMNS": "200",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        env.pop("AURORA_LEDGER_DB", None)
        env.pop("AURORA_GPG_KEY", None)
        yield Operator(live, env, key)


def prometheus_at(live: LiveStack, expr: str, at: float) -> list[float]:
    answer = httpx.get(f"{live.prometheus}/api/v1/query", params={"query": expr, "time": at},
                       timeout=10).json()
    return [float(item["value"][1]) for item in answer["data"]["result"]]


# --- 1. the seed's 09:00 query ------------------------------------------------------------


def test_the_seeds_fill_quantile_is_a_number_as_soon_as_the_fill_rate_is(op: Operator) -> None:
    live = op.live
    # the first scrape in which treaty_fill_rate has a value (seconds after start: the
    # bridge's periodic fill sampling first runs a minute after start)
    [first] = wait_until("the first fill-rate sample",
                         lambda: live.values("min_over_time(timestamp(treaty_fill_rate)[5m:1s])"))
    # the buckets come from the same scrape: the seed's query has a number at that moment
    [p95] = prometheus_at(live, SEED_FILL_P95, first)
    assert not math.isnan(p95) and 0.0 <= p95 <= 1.0
    [observed] = prometheus_at(live, "treaty_fill_rate_count", first)
    assert observed >= 1


# --- 2. the stack -------------------------------------------------------------------------


def test_the_stack_commands(op: Operator) -> None:
    assert "bridge" in op.sh("aurora status").stdout
    op.sh("aurora init")  # idempotent: the keys exist
    op.sh("aurora up")  # everything runs: starts nothing
    smoke = op.sh("make smoke-e2e").stdout
    assert "smoke-e2e: PASS" in smoke
    # a backup first: the health check wants one younger than a day
    op.sh("./ops/bin/remembrancer backup --name ledger-$(date +%Y%m%d).db.gz")
    health = op.sh("./ops/bin/health-check").stdout
    assert "FAIL" not in health
    op.sh("aurora health-check")
    assert "stable slice" in op.sh("aurora canary plan").stdout  # sizing: pure, offline


# --- 3. an order and the ledger -----------------------------------------------------------


def test_an_order_by_hand_and_the_ledger_commands(op: Operator) -> None:
    answer = op.sh("aurora order --tenant tenant-42 --region eu-west-1 --gpu-hours 0.5").stdout
    body = json.loads(answer)
    assert body["receipt"]["entry"]["kind"] == "order"
    (op.root / "answer.json").write_text(answer)
    op.sh("aurora ledger verify-proof answer.json")
    op.sh("./ops/bin/remembrancer verify-proof answer.json")
    seq = body["receipt"]["leaf_index"]
    assert body["nonce"] in op.sh(f"aurora ledger show --index {seq}").stdout
    assert "audit log OK" in op.sh("./ops/bin/remembrancer verify-audit").stdout
    op.sh("aurora ledger verify-audit")
    assert "root" in op.sh("./ops/bin/remembrancer root").stdout
    op.sh(f"./ops/bin/remembrancer prove --index {seq}")
    op.sh("./ops/bin/remembrancer consistency --old 1")
    op.sh("./ops/bin/remembrancer checkpoint")
    op.sh("./ops/bin/remembrancer integrity")


# --- 4. traffic and faults ----------------------------------------------------------------


def test_tenant_traffic_ends_with_a_summary_on_ctrl_c(op: Operator) -> None:
    before = op.live.value('sum(treaty_requests_total)') or 0.0
    traffic = op.start("aurora traffic --rate 2 --duration 10m")
    try:
        assert traffic.stdout is not None
        ready, _, _ = select.select([traffic.stdout], [], [], 120)
        assert ready, "aurora traffic printed nothing"
        assert traffic.stdout.readline().startswith("traffic: 2 orders/s offered")
        wait_until("orders flowing", lambda: (op.live.value('sum(treaty_requests_total)')
                                              or 0.0) >= before + 10)
        traffic.send_signal(signal.SIGINT)  # the operator's Ctrl-C
        out, err = traffic.communicate(timeout=60)
    finally:
        if traffic.poll() is None:
            traffic.kill()
            traffic.wait()
    assert traffic.returncode == 0, err
    summary = json.loads(out[out.index("{"):])
    assert summary["sent"] >= 0 and "statuses" in summary


def test_every_kind_of_fault(op: Operator) -> None:
    op.sh("aurora chaos outage --provider akash --for 5m")
    op.sh("aurora chaos latency-spike --provider ionet --for 5m")
    op.sh("aurora chaos price-spike --provider render --for 5m")
    op.sh("aurora chaos capacity-surge --provider flux --for 5m")
    op.sh("aurora chaos reputation-drop --provider salad --for 5m --to 40")
    op.sh("aurora chaos bad-ack --provider vastai --for 5m")
    assert "akash" in op.sh("aurora chaos list").stdout
    assert len(json.loads(op.sh("aurora chaos list --json").stdout)["events"]) == 6
    op.sh("aurora chaos clear")
    assert json.loads(op.sh("aurora chaos list --json").stdout)["events"] == []


# --- 5. drills and incidents --------------------------------------------------------------


def test_the_drills_and_the_incident_commands(op: Operator) -> None:
    # bounded by the drill's own waits; a loaded machine makes the compressed path slow
    drill = op.sh("aurora drill alert --alert TreatyFillRateLow", timeout=800).stdout
    assert "TreatyFillRateLow" in drill
    [incident] = [i for i in op.live.incidents(alertname="TreatyFillRateLow")]
    assert incident["drill"] and incident["status"] == "resolved"
    assert incident["id"] in op.sh(f"aurora incident show {incident['id']}").stdout
    op.sh("aurora incident list --open")
    assert "SLA" in op.sh("aurora incident report --since 7d").stdout
    op.sh("aurora drill restore")
    op.sh("aurora drill rollback")


# --- 6. the SLO report and the soak -------------------------------------------------------


def test_the_slo_report_and_the_runbooks_soak_blocks(op: Operator) -> None:
    op.sh("python3 scripts/canary-slo-reporter.py --prometheus http://localhost:9090 "
          "--output reports/daily-by-hand.json")
    assert json.loads((op.root / "reports" / "daily-by-hand.json").read_text())["window"]
    op.sh("aurora slo report")
    by_hand = op.root / "reports" / "daily-by-hand.json"
    op.sh(f"aurora slo render {by_hand}")
    assert (op.root / "reports" / "daily-by-hand.pdf").read_bytes().startswith(b"%PDF")
    # the soak in the foreground, interrupted (the runbook's `nohup ... &` below resumes it)
    soak = op.start("aurora soak start")
    try:
        wait_until("the soak to start", lambda: soak.poll() is not None or _soak_running(op))
        assert soak.poll() is None, soak.communicate()
    finally:
        soak.send_signal(signal.SIGTERM)
        soak.communicate(timeout=60)
    # docs/RUNBOOK.md, "Before day 1"
    op.sh("""
make up                                   # bridge, providers, incident receiver, Prometheus,
                                          # Alertmanager, 15-minute backup loop, traffic
./ops/bin/health-check                    # every line PASS
curl -s http://localhost:9090/api/v1/targets | jq '.data.activeTargets[] | {job, health}'
gpg --list-secret-keys --keyid-format long 6E4082C6A410F340   # the signing key is there
export AURORA_GPG_KEY=6E4082C6A410F340
nohup .venv/bin/aurora soak start > logs/soak.out 2>&1 &
.venv/bin/aurora soak status
""")
    try:
        wait_until("the soak to run", lambda: _soak_running(op))
        # "Hour 72: governance report"
        op.sh("""
# the seed's commands (what the soak does):
python3 scripts/canary-slo-reporter.py --prometheus http://localhost:9090 \\
  --output reports/canary-72h.json --key 6E4082C6A410F340
gpg --verify reports/canary-72h.json.asc reports/canary-72h.json
""")
        # "Day 7": the soak has only begun, so the gate cannot decide: inconclusive (3)
        day7 = op.sh("""
aurora soak gate --key 6E4082C6A410F340      # writes and signs reports/day7-gate.json
echo $?                                      # 0 pass, 1 fail, 3 inconclusive
""", errexit=False).stdout
        assert day7.rstrip().endswith("3")
        assert (op.root / "reports" / "day7-gate.json.asc").is_file()
    finally:
        for lock in op.live.home.run_dir.glob("soak-*.lock"):
            pid = lock.read_text().strip()
            if pid.isdigit():
                os.kill(int(pid), signal.SIGTERM)  # the soak this test started
        wait_until("the soak to stop", lambda: all(
            _gone(lock.read_text().strip()) for lock in op.live.home.run_dir.glob("soak-*.lock")))


def test_a_one_day_rehearsal_as_a_command(op: Operator) -> None:
    # its own isolated home and stack; one day cannot pass a 7-day checklist: inconclusive
    out = op.sh("aurora soak rehearse --days 1 --day-seconds 5 --drills none --home rehearsal",
                expect=3).stdout
    assert "INCONCLUSIVE" in out and "exit 3" in out


def _status(live: LiveStack, incident_id: str) -> str:
    [found] = [i for i in live.incidents() if i["id"] == incident_id]
    return str(found["status"])


def _soak_running(op: Operator) -> bool:
    from aurora.soak.runner import is_running

    return any(is_running(op.live.home, lock.stem.removeprefix("soak-"))
               for lock in op.live.home.run_dir.glob("soak-*.lock"))


def _gone(pid: str) -> bool:
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


# --- 7. tampering: the provenance auditor's failure path, SEV1, the rollback ------------------


def test_tampering_with_the_live_ledger_fires_the_sev1_alert(op: Operator) -> None:
    live = op.live
    failures = ('sum(treaty_provenance_checks_total{result="failed"})'
                " + sum(aurora_ledger_consistency_failures_total)")
    wait_until("verified provenance checks", lambda: live.value(
        'sum(treaty_provenance_checks_total{result="verified"})'))
    assert live.value(failures) == 0.0
    assert not live.incidents(alertname="AuroraLedgerTampering")
    # rewrite the stored Merkle hashes under the running bridge, as someone covering up an
    # altered record must (the append-only trigger dropped first, as in the README); again
    # every second, so that the alert keeps firing while the runbook's steps are followed
    op.sh('sqlite3 -cmd ".timeout 10000" ops/data/remembrancer.db '
          '"DROP TRIGGER merkle_hashes_no_update"')
    tamper = subprocess.Popen(
        ["bash", "-c", 'while :; do sqlite3 -cmd ".timeout 10000" ops/data/remembrancer.db '
         '"UPDATE merkle_hashes SET hash = randomblob(32)"; sleep 1; done'],
        cwd=op.root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # the auditor's counters move ...
        wait_until("the auditor to count failures", lambda: (live.value(failures) or 0) > 0)
        # ... the SEV1 alert fires in Prometheus, and an incident opens
        wait_until("AuroraLedgerTampering firing",
                   lambda: live.alert_states().get("AuroraLedgerTampering") == "firing")
        [incident] = wait_until("the tampering incident", lambda: live.incidents(
            alertname="AuroraLedgerTampering", open="1"))
        assert incident["sev"] == "SEV1" and incident["drill"] is None
        assert incident["runbook_url"] == "docs/RUNBOOK.md#auroraledgertampering"
        inc = incident["id"]
        # the runbook's SEV1 steps; the alert's compressed 10-minute hold is seconds here, so
        # the incident may be resolved (and a new one opened) by the time the list runs
        listed = op.sh("aurora incident list --open").stdout
        assert inc in listed or _status(live, inc) == "resolved", listed
        # acknowledging it; in this compressed stack the alert's 10-minute hold is seconds,
        # so Alertmanager may have resolved it first: then one clear line, nothing changed
        acked = op.sh(f"aurora incident ack {inc} --by alice --note \"looking at akash outage\"",
                      expect=None)
        assert acked.returncode == 0 or (acked.returncode == 1 and
                                         f"error: {inc} is already resolved" in acked.stderr)
        assert "AuroraLedgerTampering" in op.sh(f"aurora incident show {inc}").stdout
        assert "TAMPERED" in op.sh("aurora ledger verify-audit", expect=1).stdout
        # closing it by hand; the alert may have cleared first (its 10-minute hold is seconds
        # here), then the command says so in one line and changes nothing
        closed = op.sh(f"aurora incident resolve {inc} --note \"failed over to render\"",
                       expect=None)
        assert closed.returncode == 0 or (
            closed.returncode == 1 and closed.stderr.startswith(f"error: {inc} is already "
                                                                "resolved"))
        assert _status(live, inc) == "resolved"
        [done] = [i for i in live.incidents(alertname="AuroraLedgerTampering") if i["id"] == inc]
        assert acked.returncode != 0 or done["acknowledged_by"] == "alice"
    finally:
        os.killpg(tamper.pid, signal.SIGTERM)  # the loop this test started, and its sqlite3
        tamper.wait(timeout=30)
    # without --yes, and nobody at a terminal to ask: one clear line, nothing stopped
    refused = op.sh("aurora rollback", expect=2)
    assert refused.stderr.startswith("error: ") and "--yes" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert op.live.values("up")  # Prometheus (and the rest) still up
    # docs/RUNBOOK.md, "Immediate rollback": restores the newest backup that verifies
    rollback = op.sh("""
aurora rollback --dry-run    # which backup would be restored (the newest that verifies)
aurora rollback --yes        # stop the stack, restore it, keep ledger-latest.db.gz on it
./ops/bin/remembrancer verify-audit
make up
""").stdout
    assert "audit log OK" in rollback
    assert (op.root / "ops" / "backups" / "ledger-latest.db.gz").is_file()


# --- 8. rotating the bearer tokens ---------------------------------------------------------


def test_rotating_the_tokens(op: Operator) -> None:
    home = op.live.home
    before = {name: read_token(home, name) for name in NAMES}
    assert all(before.values())
    keys = {p: p.read_bytes() for p in home.secrets_dir.rglob("*")
            if p.is_file() and p.suffix != ".token"}
    # docs/RUNBOOK.md, "Tokens": rotating them
    op.sh("""
rm secrets/incidents.token secrets/chaos.token   # the ones to rotate
aurora init                                      # writes new ones, keeps every key
aurora down && aurora up                          # the services read their token at start
""")
    after = {name: read_token(home, name) for name in NAMES}
    assert all(after[name] and after[name] != before[name] for name in NAMES)
    assert {p: p.read_bytes() for p in keys} == keys
    # the old tokens are refused by the restarted services, the new ones accepted
    stack = op.live.stack
    for url, name in ((f"{stack.incidents_url}/incidents", INCIDENTS),
                      (f"{stack.providers_url}/chaos", CHAOS)):
        assert httpx.get(url, headers=bearer_header(before[name]), timeout=10
                         ).status_code == 401, url
        assert httpx.get(url, headers=bearer_header(after[name]), timeout=10
                         ).status_code == 200, url
    assert json.loads(op.sh("aurora chaos list --json").stdout)["events"] == []
    op.sh("aurora incident list --open")


# --- 9. a clean stop; data recovery -------------------------------------------------------


def test_make_down_leaves_a_self_contained_ledger_file(op: Operator, tmp_path: Path) -> None:
    op.sh("aurora order --tenant tenant-42 --region eu-west-1 --gpu-hours 0.5")
    op.sh("make down")
    db = op.live.home.ledger_db
    # the way operators copy it: the database file alone, no -wal, no -shm
    copy = tmp_path / "remembrancer.db"
    shutil.copyfile(db, copy)
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    alone = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        copied = alone.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    finally:
        alone.close()
    assert copied == op.entries() > 0
    op.sh(f"aurora ledger verify-audit --db {copy}")
    op.sh("aurora down")  # nothing left to stop


def test_the_runbooks_data_recovery(op: Operator) -> None:
    recovered = op.sh("""
# the seed's commands (backups are .db.gz: unpack a copy first)
gunzip -k ops/backups/ledger-$(date +%Y%m%d).db.gz
sqlite3 ops/backups/ledger-$(date +%Y%m%d).db "PRAGMA integrity_check;"           # → ok
sqlite3 ops/data/remembrancer.db ".dump audit_log" | sqlite3 ops/backups/audit_log_backup.db
# checking what they produced
aurora ledger integrity --db ops/backups/ledger-$(date +%Y%m%d).db
aurora ledger verify-audit --db ops/backups/audit_log_backup.db
aurora ledger restore ops/backups/ledger-$(date +%Y%m%d).db.gz    # the whole backup, verified
""").stdout
    assert "ok" in recovered.splitlines()
    op.sh("./ops/bin/remembrancer restore ops/backups/ledger-latest.db.gz")
