"""The whole stack as an ordered list of services: start, stop, report.

Each service is a command started through ``aurora.procs`` (PID file, log
file) and, where it serves HTTP, a URL that must answer before the next one
starts. Prometheus and Alertmanager come from the OS packages; when a binary
is missing the rest of the stack still comes up and ``up`` says what to install.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from aurora import procs
from aurora.config import StackConfig, load_stack
from aurora.errors import AuroraError
from aurora.home import Home

AURORA = [sys.executable, "-m", "aurora"]


@dataclass(frozen=True)
class Service:
    name: str
    argv: Callable[[Home, StackConfig], list[str]]
    ready_url: Callable[[StackConfig], str | None] = lambda _: None
    binary: str | None = None  # an OS binary that must exist, with the package that ships it
    package: str | None = None
    role: str = "core"  # core | observatory | traffic | backup
    start_timeout: float = 30.0


@dataclass
class UpOptions:
    traffic: bool = True
    traffic_rate: float | None = None
    pace: bool = True
    observatory: bool = True
    backups: bool = True
    scenario: str | None = None
    zero_delay: bool = False  # benchmarks: no provider delay or refusals, unlimited capacity
    replicas: int = 1  # bridge processes on the one order port (PostgreSQL mode for N > 1)
    extra_env: dict[str, str] = field(default_factory=dict)
    # Observatory timing. The production values are the seed's; tests and the compressed
    # soak rehearsal shorten intervals and scale every rule window and `for:` by time_scale.
    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    time_scale: float = 1.0
    alert_group_wait: str | None = None
    alert_group_interval: str | None = None
    alert_repeat_interval: str | None = None


def _prometheus_argv(options: UpOptions) -> Callable[[Home, StackConfig], list[str]]:
    def argv(home: Home, stack: StackConfig) -> list[str]:
        from aurora.slo.promconfig import prometheus_argv, write_runtime_config

        config = write_runtime_config(home, stack, scrape_interval=options.scrape_interval,
                                      evaluation_interval=options.evaluation_interval,
                                      time_scale=options.time_scale, replicas=options.replicas)
        return prometheus_argv(config, stack.prometheus_port, home.data_dir / "prometheus",
                               bind=stack.bind)
    return argv


def _alertmanager_argv(options: UpOptions) -> Callable[[Home, StackConfig], list[str]]:
    def argv(home: Home, stack: StackConfig) -> list[str]:
        from aurora.incidents.alertmanager import alertmanager_argv, render_alertmanager_config

        config = render_alertmanager_config(home, stack, group_wait=options.alert_group_wait,
                                            group_interval=options.alert_group_interval,
                                            repeat_interval=options.alert_repeat_interval)
        return alertmanager_argv(config, stack.alertmanager_port,
                                 home.data_dir / "alertmanager", bind=stack.bind)
    return argv


def replica_name(replica: int) -> str:
    """Replica 1 is the service ``bridge`` (as with one bridge); the others ``bridge-K``."""
    return "bridge" if replica <= 1 else f"bridge-{replica}"


def _replica(replica: int) -> Service:
    # The order port is shared, so a replica's own readiness shows on its metrics port
    # (served just before its order socket opens; SO_REUSEPORT hands connections only to
    # sockets that listen). Not /metrics itself: a fresh replica's first scrape re-verifies
    # the provenance window from the ledger, which takes seconds under load; the exporter
    # answers /favicon.ico at once without collecting.
    return Service(replica_name(replica),
                   lambda h, s: [*AURORA, "bridge", "--replica", str(replica)],
                   lambda s: s.url(s.replica_metrics(replica), "/favicon.ico"))


def running_replicas(home: Home) -> list[str]:
    """Every bridge replica with a PID file, in replica order (``bridge`` first)."""
    found = [p.stem for p in home.run_dir.glob("bridge-*.pid") if p.stem[7:].isdigit()]
    return ["bridge", *sorted(found, key=lambda name: int(name[7:]))]


def check_replicas(stack: StackConfig, replicas: int) -> None:
    """N > 1 needs the shared treaty state, and N metrics ports that collide with nothing."""
    if replicas < 1:
        raise AuroraError("--replicas must be at least 1")
    if replicas > 1 and not stack.database_url:
        raise AuroraError(f"--replicas {replicas} needs a PostgreSQL database_url (config/"
                          "stack.json or AURORA_DATABASE_URL): replicas share nonces and quotas "
                          "only there (see README, Replicated mode)")
    others = {stack.bridge_port, stack.providers_port, stack.prometheus_port,
              stack.alertmanager_port, stack.incidents_port}
    for k in range(1, replicas + 1):
        if (port := stack.replica_metrics(k)) in others:
            raise AuroraError(f"replica {k}'s metrics port {port} is taken by another service; "
                              "set replica_metrics_port in config/stack.json")


def services(options: UpOptions) -> list[Service]:
    providers = [*AURORA, "providers"]
    if options.scenario:
        providers += ["--scenario", options.scenario]
    if options.zero_delay:
        providers += ["--zero-delay", "--unlimited-capacity"]
    traffic = [*AURORA, "traffic"]
    if options.traffic_rate:
        traffic += ["--rate", str(options.traffic_rate)]
    if not options.pace:
        traffic.append("--no-pace")
    return [
        Service("providers", lambda h, s: providers,
                lambda s: s.url(s.providers_port, "/healthz")),
        Service("bridge", lambda h, s: [*AURORA, "bridge"],
                lambda s: s.url(s.bridge_port, "/readyz")),
        *(_replica(k) for k in range(2, options.replicas + 1)),
        Service("incidents", lambda h, s: [*AURORA, "incident", "serve"],
                lambda s: s.url(s.incidents_port, "/healthz")),
        Service("alertmanager", _alertmanager_argv(options),
                lambda s: s.url(s.alertmanager_port, "/-/ready"),
                binary="prometheus-alertmanager", package="prometheus-alertmanager",
                role="observatory"),
        Service("prometheus", _prometheus_argv(options),
                lambda s: s.url(s.prometheus_port, "/-/ready"),
                binary="prometheus", package="prometheus", role="observatory"),
        Service("backup", lambda h, s: [*AURORA, "ledger", "backup", "--every",
                                        options.extra_env.get("AURORA_BACKUP_EVERY",
                                                              s.backup_every)],
                role="backup"),
        Service("traffic", lambda h, s: traffic, role="traffic"),
    ]


ALL_SERVICES = [s.name for s in services(UpOptions())]


@dataclass
class Started:
    name: str
    pid: int | None
    note: str


def up(home: Home, options: UpOptions, *, on_step: Callable[[str], None] = lambda _: None
       ) -> list[Started]:
    stack = load_stack(home)
    check_replicas(stack, options.replicas)
    results: list[Started] = []
    for service in services(options):
        if service.role == "observatory" and not options.observatory:
            continue
        if service.role == "traffic" and not options.traffic:
            continue
        if service.role == "backup" and not options.backups:
            continue
        if (pid := procs.running(home, service.name)) is not None:
            results.append(Started(service.name, pid, "already running"))
            continue
        if service.binary and shutil.which(service.binary) is None:
            note = (f"not started: `{service.binary}` is missing — install it with "
                    f"`sudo apt-get install -y {service.package}` (or `make up` as root)")
            results.append(Started(service.name, None, note))
            continue
        on_step(f"starting {service.name}")
        pid = procs.spawn(home, service.name, service.argv(home, stack), env=options.extra_env)
        url = service.ready_url(stack)
        if url is not None:
            try:
                procs.wait_http(url, timeout=service.start_timeout,
                                pid_check=(home, service.name))
            except AuroraError:
                procs.stop(home, service.name)
                raise
        results.append(Started(service.name, pid, "started"))
    return results


def down(home: Home, names: list[str] | None = None) -> list[tuple[str, bool]]:
    """Stop services (reverse start order) by their PID files; (name, was running)."""
    from aurora.canary.live import split_services

    order = []
    for name in reversed(ALL_SERVICES):
        # a canary's controller, proxy and replica groups go with the bridge
        order += ([*split_services(home), *reversed(running_replicas(home))]
                  if name == "bridge" else [name])
    chosen = [n for n in order if names is None or n in names
              or (n.startswith(("bridge-", "split-", "canary-")) and "bridge" in names)]
    return [(name, procs.stop(home, name)) for name in chosen]


def urls(stack: StackConfig) -> list[tuple[str, str]]:
    return [
        ("Bridge (orders)", stack.url(stack.bridge_port, "/aurora/order")),
        ("Aurora metrics", stack.metrics_url),
        ("Simulator metrics", stack.url(stack.providers_port, "/metrics")),
        ("Prometheus", stack.prometheus_url),
        ("Alertmanager", stack.alertmanager_url),
        ("Incident receiver", stack.url(stack.incidents_port, "/incidents")),
    ]
