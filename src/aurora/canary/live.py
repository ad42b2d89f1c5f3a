"""The canary's processes: stable and candidate replica groups behind HAProxy on bridge_port.

``split`` puts the split in front of a running replicated stack without dropping it:

1. stable's release starts again as the group ``split-stable-K`` on ``split_stable_port``,
   the candidate as ``split-canary-K`` on ``split_canary_port`` (same home, same PostgreSQL
   treaty state and log, so quotas and nonces are shared, never doubled);
2. HAProxy starts on ``bridge_port`` beside stable's replicas (both set ``SO_REUSEPORT``),
   at weight 0: every order still goes to stable;
3. stable's own replicas stop gracefully (uvicorn stops accepting and finishes what it
   has), so from then on the kernel gives every new connection to HAProxy;
4. Prometheus's bridge targets (a ``file_sd`` file) follow each change, with ``track``
   and ``version`` labels on every series.

``set_weight`` moves traffic through HAProxy's runtime API (no reload, no connection
touched). ``retire_canary`` (abort) sets weight 0, then *measures* that no order reaches the
candidate any more before stopping it; ``promote`` stops stable's group and relabels the
candidate's as stable. ``aurora down`` stops every process here by its PID file.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurora import procs
from aurora.canary import haproxy
from aurora.canary.candidate import Candidate, stable_version
from aurora.config import StackConfig, load_stack
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.slo.promconfig import (
    TargetGroup,
    bridge_targets_path,
    read_bridge_labels,
    write_bridge_targets,
)

if TYPE_CHECKING:
    from aurora.canary.analysis import Thresholds
    from aurora.canary.evidence import Rollout
    from aurora.canary.plan import Plan

PROXY = "split-proxy"
CONTROLLER = "canary-controller"
GROUP = {"stable": "split-stable", "canary": "split-canary"}
CANARY_METRICS_OFFSET = 8  # canary replica k: split_metrics_port + 8 + k - 1


class SplitError(AuroraError):
    """The split could not be put in place or changed."""


def member(track: str, k: int) -> str:
    return f"{GROUP[track]}-{k}"


def metrics_port(stack: StackConfig, track: str, k: int) -> int:
    return stack.split_metrics_port + (CANARY_METRICS_OFFSET if track == "canary" else 0) + k - 1


def order_port(stack: StackConfig, track: str) -> int:
    return stack.split_canary_port if track == "canary" else stack.split_stable_port


def members(home: Home, track: str) -> list[str]:
    """The running members of a group, in replica order."""
    prefix = GROUP[track] + "-"
    found = [p.stem for p in home.run_dir.glob(f"{prefix}*.pid")
             if p.stem[len(prefix):].isdigit() and procs.running(home, p.stem) is not None]
    return sorted(found, key=lambda name: int(name[len(prefix):]))


def split_services(home: Home) -> list[str]:
    """Every process of a canary, in the order they are stopped (``aurora down``)."""
    return [CONTROLLER, PROXY, *members(home, "canary"), *members(home, "stable")]


@dataclass(frozen=True)
class Split:
    home: Home
    stack: StackConfig

    @classmethod
    def of(cls, home: Home) -> Split:
        return cls(home, load_stack(home))

    @property
    def dir(self) -> Path:
        return self.home.data_dir / "canary"

    @property
    def admin_socket(self) -> Path:
        """HAProxy's admin socket. A Unix socket path has at most 107 bytes (HAProxy takes
        97), which a home deep in a temporary directory exceeds: it lives in the temporary
        directory, named after the home."""
        digest = hashlib.sha256(str(self.home.root.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"aurora-split-{digest}.sock"

    @property
    def api(self) -> haproxy.RuntimeApi:
        return haproxy.RuntimeApi(self.admin_socket, self.dir / "weight.map")

    def config(self) -> haproxy.SplitConfig:
        s = self.stack
        return haproxy.SplitConfig(
            s.bind, s.bridge_port,
            stable=[haproxy.Server(s.bind, s.split_stable_port)],
            canary=[haproxy.Server(s.bind, s.split_canary_port)],
            admin_socket=self.admin_socket, weight_map=self.dir / "weight.map")

    # --- groups -----------------------------------------------------------------------

    def start_group(self, track: str, replicas: int, python: str,
                    env: dict[str, str] | None = None) -> None:
        for k in range(1, replicas + 1):
            name = member(track, k)
            port = metrics_port(self.stack, track, k)
            procs.spawn(self.home, name, [python, "-m", "aurora", "bridge", "--replica", str(k),
                                          "--order-port", str(order_port(self.stack, track)),
                                          "--metrics-port", str(port)], env=env)
            try:
                # readiness on the member's own metrics port, as `aurora up` checks replicas
                procs.wait_http(self.stack.url(port, "/favicon.ico"), timeout=60,
                                pid_check=(self.home, name))
            except AuroraError:
                for j in range(1, k + 1):
                    procs.stop(self.home, member(track, j))
                raise

    def stop_group(self, track: str) -> None:
        for name in reversed(members(self.home, track)):
            procs.stop(self.home, name, timeout=30)

    def write_targets(self, groups: list[TargetGroup]) -> None:
        path = bridge_targets_path(self.home)
        write_bridge_targets(path, self.stack, read_bridge_labels(path), groups)

    def group_targets(self, track: str, version: str, label: str | None = None) -> TargetGroup:
        ports = tuple(metrics_port(self.stack, track, int(n.rsplit("-", 1)[1]))
                      for n in members(self.home, track))
        return TargetGroup(ports, label or track, version)

    # --- the split --------------------------------------------------------------------

    def put_in_front(self, candidate: Candidate, *, on_step: Callable[[str], None]) -> int:
        """Steps 1-4 above; returns how many replicas each group has."""
        from aurora.stack import running_replicas

        if not self.stack.database_url:
            raise SplitError("a canary needs the replicated mode (database_url = PostgreSQL): "
                             "without one treaty state the two tracks would each spend the "
                             "quotas")
        if procs.running(self.home, PROXY) is not None:
            raise SplitError("a canary split is already in front of the bridge "
                             "(`aurora canary status`; `aurora canary abort` ends it)")
        stable = [n for n in running_replicas(self.home) if procs.running(self.home, n)]
        if not stable:
            raise SplitError("no bridge replica is running: `aurora up --replicas N` first")
        binary = haproxy.haproxy_binary()
        self.dir.mkdir(parents=True, exist_ok=True)
        replicas = len(stable)
        on_step(f"starting stable's group ({replicas} replicas on :{self.stack.split_stable_port})")
        self.start_group("stable", replicas, sys.executable)
        on_step(f"starting the candidate {candidate.version} ({replicas} replicas on "
                f":{self.stack.split_canary_port})")
        try:
            self.start_group("canary", replicas, candidate.python, candidate.env)
        except AuroraError:
            self.stop_group("stable")
            raise
        old = TargetGroup(tuple(self.stack.replica_metrics(k) for k in range(1, replicas + 1)),
                          "stable", stable_version())
        self.write_targets([old, self.group_targets("stable", stable_version()),
                            self.group_targets("canary", candidate.version)])
        on_step("starting HAProxy on the order port at weight 0")
        path = self.dir / "haproxy.cfg"
        haproxy.write_config(self.config(), path, weight=0)
        haproxy.check_config(path, binary)
        procs.spawn(self.home, PROXY, haproxy.argv(path, binary))
        self._wait_proxy()
        self._wait_backends_up()
        on_step("retiring stable's own replicas (in-flight orders finish)")
        for name in reversed(stable):
            procs.stop(self.home, name, timeout=30)
        self.write_targets([self.group_targets("stable", stable_version()),
                            self.group_targets("canary", candidate.version)])
        return replicas

    def _wait_proxy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api.served()
                return
            except AuroraError:
                if procs.running(self.home, PROXY) is None or time.monotonic() > deadline:
                    raise SplitError(f"HAProxy did not come up; see "
                                     f"{self.home.log_file(PROXY)}") from None
                time.sleep(0.1)

    def _wait_backends_up(self, timeout: float = 30.0) -> None:
        """Both tracks pass HAProxy's health checks (a down canary's tenants would go to
        stable and the first step's split would drift)."""
        deadline = time.monotonic() + timeout
        while (status := self.api.backend_status()) != {"stable": "UP", "canary": "UP"}:
            if time.monotonic() > deadline:
                raise SplitError(f"HAProxy's health checks do not pass: {status}")
            time.sleep(0.2)

    def set_weight(self, weight: int) -> None:
        self.api.set_weight(weight)

    def served(self) -> dict[str, int]:
        return self.api.served()

    def retire_canary(self, *, quiet_s: float = 3.0, timeout_s: float = 60.0) -> dict[str, int]:
        """Weight 0, then proof that the candidate gets no order: its count must hold still
        for ``quiet_s`` (in-flight orders finish first); then the candidate stops."""
        self.set_weight(0)
        deadline = time.monotonic() + timeout_s
        last = self.served()["canary"]
        still_since = time.monotonic()
        while time.monotonic() - still_since < quiet_s:
            if time.monotonic() > deadline:
                raise SplitError("orders still reach the candidate at weight 0")
            time.sleep(0.5)
            now = self.served()["canary"]
            if now != last:
                last, still_since = now, time.monotonic()
        served = self.served()
        self.stop_group("canary")
        self.write_targets([self.group_targets("stable", stable_version())])
        return served

    def promote(self, version: str) -> None:
        """At 100 %: stable's group stops; the candidate's series are labelled stable."""
        self.stop_group("stable")
        self.write_targets([self.group_targets("canary", version, label="stable")])


def launch(home: Home, candidate: Candidate, *, plan: Plan, gate: Mapping[str, Any],
           sizes: Sequence[Mapping[str, Any]], thresholds: Thresholds, baseline_s: float,
           interval_s: float, linger_s: float, treaty_id: str,
           on_step: Callable[[str], None] = lambda _: None) -> Rollout:
    """Put the split in front, record the start, set the first weight, start the controller."""
    from aurora.canary.evidence import weight_entry
    from aurora.canary.rollout import Settings, begin
    from aurora.durations import format_duration
    from aurora.ledger.ledger import Ledger
    from aurora.wire import rfc3339_at

    split = Split.of(home)
    replicas = split.put_in_front(candidate, on_step=on_step)
    with Ledger.open(home) as ledger:
        rollout = begin(ledger, treaty_id=treaty_id, plan=plan,
                        candidate={**candidate.describe(), "replicas": replicas}, gate=gate,
                        dry_run=False, sizes=sizes,
                        settings=Settings(thresholds, baseline_s, "canary"))
        split.set_weight(plan.steps[0])
        ledger.append(weight_entry(rollout.rollout, treaty_id, at=rfc3339_at(time.time()),
                                   weight=plan.steps[0], why="first step"))
    on_step("starting the controller")
    procs.spawn(home, CONTROLLER, [sys.executable, "-m", "aurora", "canary", "run",
                                   "--rollout", rollout.rollout,
                                   "--interval", format_duration(interval_s),
                                   "--linger", format_duration(linger_s)])
    return rollout
