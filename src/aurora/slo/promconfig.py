"""The Prometheus configuration a running stack needs, rendered from the seed's file.

``ops/prometheus.yml`` names the seed's fixed ports; a test, a rehearsal or an operator with
other ports in ``config/stack.json`` needs the same jobs and rules pointing at the stack's
real ports. ``write_runtime_config`` renders ``ops/prometheus.yml`` and its rule files into
``ops/data/prometheus-runtime/`` (or ``out_dir``):

* every job Aurora knows (``aurora-metrics``, ``simulator-metrics``, ``aurora-incidents``)
  and the Alertmanager target get the stack's bind address and port;
* scrape and evaluation intervals are set as asked;
* with ``time_scale < 1`` (the compressed soak rehearsal: a simulated day in N seconds) every
  ``for:`` and every PromQL range / subquery / offset duration is multiplied by
  ``time_scale``, floored at ``FLOOR_INTERVALS`` scrape (or evaluation) intervals so that
  ``rate()`` still sees several samples. Numbers outside brackets are not durations and stay
  as they are: the burn-rate traffic guard ``rate * 3600 >= 100`` therefore keeps asking for
  the same traffic per unit of real time.

Starting and stopping Prometheus is ``aurora.procs``' job; ``prometheus_argv`` gives the
command line.
"""

from __future__ import annotations

import glob
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aurora import __version__
from aurora.config import StackConfig
from aurora.durable import atomic_write
from aurora.durations import parse_duration
from aurora.errors import ConfigError
from aurora.home import Home
from aurora.slo.queries import prom_duration

FLOOR_INTERVALS = 4
RUNTIME_DIR = "prometheus-runtime"
HEADER = ("# Rendered by aurora.slo.promconfig from {source}; do not edit (it is rewritten at "
          "every start).\n")

BRIDGE_TARGETS = "bridge-targets.json"
CANARY_TARGETS = "canary-targets.json"

# job name in ops/prometheus.yml -> StackConfig port field
JOB_PORTS = {
    "aurora-metrics": "metrics_port",
    "simulator-metrics": "providers_port",
    "aurora-incidents": "incidents_port",
    "aurora-canary": "canary_metrics_port",
}

_DURATION = r"(?:[0-9]+(?:ms|y|w|d|h|m|s))+"
# strings first, so that a bracket inside a label value or regex is left alone
_PROMQL_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"'
    r"|'(?:[^'\\]|\\.)*'"
    r"|`[^`]*`"
    rf"|\[(?P<range>\s*{_DURATION}\s*)(?::(?P<step>\s*(?:{_DURATION})?\s*))?\]"
    rf"|\boffset(?P<gap>\s+)(?P<sign>-?)(?P<offset>{_DURATION})"
)


def runtime_dir(home: Home) -> Path:
    return home.data_dir / RUNTIME_DIR


def scale_seconds(seconds: float, time_scale: float, floor_s: float) -> float:
    """``seconds * time_scale``, never below ``floor_s`` (nor above ``seconds``)."""
    return min(seconds, max(seconds * time_scale, floor_s))


def scale_duration(text: str, time_scale: float, floor_s: float) -> str:
    """A Prometheus duration (``15m``) scaled and floored, as a Prometheus duration."""
    return prom_duration(scale_seconds(parse_duration(text), time_scale, floor_s))


def scale_promql(expr: str, time_scale: float, floor_s: float, step_floor_s: float) -> str:
    """``expr`` with range, subquery and offset durations scaled; strings untouched."""

    def replace(match: re.Match[str]) -> str:
        if match.group("range") is not None:
            scaled = scale_duration(match.group("range").strip(), time_scale, floor_s)
            if match.group("step") is None:
                return f"[{scaled}]"
            step = match.group("step").strip()
            return f"[{scaled}:{scale_duration(step, time_scale, step_floor_s) if step else ''}]"
        if match.group("offset") is not None:
            offset = scale_duration(match.group("offset"), time_scale, 0.001)
            return f"offset{match.group('gap')}{match.group('sign')}{offset}"
        return match.group(0)

    return _PROMQL_TOKEN.sub(replace, expr)


def scale_rules(document: dict[str, Any], time_scale: float, floor_s: float,
                evaluation_s: float) -> dict[str, Any]:
    """A rule file (parsed) with ``for:``, group ``interval:`` and expressions scaled."""
    groups = []
    for group in document.get("groups") or []:
        group = dict(group)
        if "interval" in group:
            group["interval"] = scale_duration(str(group["interval"]), time_scale, evaluation_s)
        rules = []
        for rule in group.get("rules") or []:
            rule = dict(rule)
            rule["expr"] = scale_promql(str(rule["expr"]), time_scale, floor_s, evaluation_s)
            if "for" in rule and parse_duration(str(rule["for"])) > 0:
                rule["for"] = scale_duration(str(rule["for"]), time_scale, floor_s)
            rules.append(rule)
        group["rules"] = rules
        groups.append(group)
    return {**document, "groups": groups}


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file is missing") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML ({str(exc).splitlines()[0]})") from None


def _interval(text: str, name: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    if seconds <= 0:
        raise ConfigError(f"{name} must be positive")
    return seconds


def rule_files(config_path: Path, config: dict[str, Any]) -> list[Path]:
    """The rule files ``config`` names, globs expanded, relative to the config's folder."""
    found: list[Path] = []
    for pattern in config.get("rule_files") or []:
        full = pattern if Path(pattern).is_absolute() else str(config_path.parent / pattern)
        found += sorted(Path(p) for p in glob.glob(full))
    return found


def write_runtime_config(
    home: Home,
    stack: StackConfig,
    *,
    scrape_interval: str = "15s",
    evaluation_interval: str = "15s",
    time_scale: float = 1.0,
    out_dir: Path | None = None,
    replicas: int = 1,
) -> Path:
    """Render ``ops/prometheus.yml`` and its rules for ``stack``; returns the config's path.

    With ``replicas`` bridges (``aurora up --replicas N``) the ``aurora-metrics`` job lists
    every replica's metrics port; the rules aggregate over the ``instance`` label.
    """
    if not 0 < time_scale <= 1:
        raise ConfigError(f"time_scale must be in (0, 1], not {time_scale}")
    scrape_s = _interval(scrape_interval, "scrape_interval")
    evaluation_s = _interval(evaluation_interval, "evaluation_interval")
    floor_s = FLOOR_INTERVALS * max(scrape_s, evaluation_s)
    source = home.ops / "prometheus.yml"
    config = _load_yaml(source)
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: not a Prometheus configuration")

    out = out_dir or runtime_dir(home)
    rules_out = out / "rules"
    shutil.rmtree(rules_out, ignore_errors=True)  # no rule file of an earlier render survives
    rules_out.mkdir(parents=True)
    written = []
    for path in rule_files(source, config):
        document = _load_yaml(path) or {}
        if time_scale < 1:
            document = scale_rules(document, time_scale, floor_s, evaluation_s)
        target = rules_out / path.name
        target.write_text(HEADER.format(source=path) + yaml.safe_dump(document, sort_keys=False),
                          encoding="utf-8")
        written.append(str(target))

    config["global"] = {**(config.get("global") or {}),
                        "scrape_interval": prom_duration(scrape_s),
                        "evaluation_interval": prom_duration(evaluation_s)}
    config["rule_files"] = written
    out.mkdir(parents=True, exist_ok=True)
    for job in config.get("scrape_configs") or []:
        field = JOB_PORTS.get(job.get("job_name", ""))
        if field is None:
            continue
        if field == "canary_metrics_port":
            # only while a rollout runs (the controller lists itself): no target is down
            path = canary_targets_path(home, out)
            write_canary_target(path, stack, running=False)
            job.pop("static_configs", None)
            job["file_sd_configs"] = [{"files": [str(path)], "refresh_interval": "5s"}]
            continue
        if field == "metrics_port":
            # The bridges' targets live in a file Prometheus watches, so a canary can add
            # its replica groups (and retire stable's) without a reload.
            labels = {k: v for static in job.pop("static_configs", None) or []
                      for k, v in (static.get("labels") or {}).items()}
            ports = [stack.replica_metrics(k) for k in range(1, replicas + 1)]
            path = bridge_targets_path(home, out)
            write_bridge_targets(path, stack, labels,
                                 [TargetGroup(tuple(ports), "stable", __version__)])
            job["file_sd_configs"] = [{"files": [str(path)], "refresh_interval": "5s"}]
            continue
        for static in job.get("static_configs") or []:
            static["targets"] = [f"{stack.bind}:{getattr(stack, field)}"]
    for manager in (config.get("alerting") or {}).get("alertmanagers") or []:
        for static in manager.get("static_configs") or []:
            static["targets"] = [f"{stack.bind}:{stack.alertmanager_port}"]

    config_path = out / "prometheus.yml"
    config_path.write_text(HEADER.format(source=source) + yaml.safe_dump(config, sort_keys=False),
                           encoding="utf-8")
    return config_path


@dataclass(frozen=True)
class TargetGroup:
    """Bridge replicas of one track and version, by metrics port."""

    ports: tuple[int, ...]
    track: str  # "stable" | "canary"
    version: str


def bridge_targets_path(home: Home, out: Path | None = None) -> Path:
    return (out or runtime_dir(home)) / BRIDGE_TARGETS


def write_bridge_targets(path: Path, stack: StackConfig, labels: dict[str, str],
                         groups: list[TargetGroup]) -> None:
    """The ``file_sd`` document of the ``aurora-metrics`` job: every series a replica
    exports gets ``track`` and ``version`` (and the seed's ``treaty_id``) from its group."""
    document = [{"targets": [f"{stack.bind}:{port}" for port in g.ports],
                 "labels": {**labels, "track": g.track, "version": g.version}}
                for g in groups if g.ports]
    atomic_write(path, (json.dumps(document, indent=2) + "\n").encode())


def canary_targets_path(home: Home, out: Path | None = None) -> Path:
    return (out or runtime_dir(home)) / CANARY_TARGETS


def write_canary_target(path: Path, stack: StackConfig, *, running: bool) -> None:
    """The ``aurora-canary`` job's ``file_sd`` document: the controller, or nothing."""
    document = [{"targets": [f"{stack.bind}:{stack.canary_metrics_port}"]}] if running else []
    atomic_write(path, (json.dumps(document) + "\n").encode())


def read_bridge_labels(path: Path) -> dict[str, str]:
    """The labels every bridge group shares (the seed's), from the current targets file."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: no bridge targets to extend ({exc}); is the stack "
                          "up?") from None
    first = document[0]["labels"] if document else {}
    return {k: v for k, v in first.items() if k not in ("track", "version")}


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        raise ConfigError("prometheus is not installed: run `make system-deps` "
                          "(Debian/Ubuntu: sudo apt-get install prometheus)")
    return binary


def prometheus_argv(config: Path, port: int, data_dir: Path, *,
                    bind: str = "127.0.0.1") -> list[str]:
    """The command line of a Prometheus serving ``config`` on ``bind:port``.

    ``--web.enable-lifecycle`` lets ``POST /-/reload`` pick up a re-rendered config.
    """
    return [
        prometheus_binary(),
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={bind}:{port}",
        "--web.enable-lifecycle",
    ]
