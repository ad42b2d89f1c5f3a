"""Rendering the runtime Prometheus configuration: ports, intervals, time-compressed rules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

import aurora
from aurora.config import load_stack
from aurora.errors import ConfigError
from aurora.home import Home
from aurora.slo.promconfig import (
    prometheus_argv,
    runtime_dir,
    scale_duration,
    scale_promql,
    write_runtime_config,
)


def scale(expr: str, time_scale: float = 0.01, floor: float = 4.0, step_floor: float = 1.0) -> str:
    return scale_promql(expr, time_scale, floor, step_floor)


@pytest.mark.parametrize("expr,scaled", [
    ("rate(x[5m])", "rate(x[4s])"),  # 3 s, floored at 4 s
    ("rate(x[1d])", "rate(x[14m24s])"),
    ("rate(x[1h30m])", "rate(x[54s])"),
    ("rate(x[ 2h ])", "rate(x[1m12s])"),
    ("rate(x[500ms])", "rate(x[500ms])"),  # never longer than it was
    ("max_over_time(rate(x[1h])[6h:5m])", "max_over_time(rate(x[36s])[3m36s:3s])"),
    ("max_over_time(rate(x[1h])[6h:])", "max_over_time(rate(x[36s])[3m36s:])"),
    ("x offset 1h", "x offset 36s"),
    ("rate(x[5m] offset -2h)", "rate(x[4s] offset -1m12s)"),
    # numbers outside brackets are not durations
    ("rate(x[1h]) * 3600 >= 100", "rate(x[36s]) * 3600 >= 100"),
    # brackets inside strings are label values or regexes, not ranges
    ('x{le=~"[5m]", a=\'[1h]\', b=`[2h]`}[1h]', 'x{le=~"[5m]", a=\'[1h]\', b=`[2h]`}[36s]'),
    ('x{a="say \\"[1h]\\""}[1h]', 'x{a="say \\"[1h]\\""}[36s]'),
    ("x[1h] / y[1h]", "x[36s] / y[36s]"),
])
def test_scale_promql(expr: str, scaled: str) -> None:
    assert scale(expr) == scaled


def test_scale_duration_floors_and_caps() -> None:
    assert scale_duration("15m", 0.001, 4.0) == "4s"
    assert scale_duration("1d", 0.5, 4.0) == "12h"
    assert scale_duration("2s", 0.5, 4.0) == "2s"


def render(home: Path, **kwargs: object) -> tuple[Path, dict]:  # type: ignore[type-arg]
    h = Home(home)
    path = write_runtime_config(h, load_stack(h), **kwargs)  # type: ignore[arg-type]
    return path, yaml.safe_load(path.read_text())


def test_runtime_config_points_at_the_stacks_ports(home: Path) -> None:
    stack = json.loads((home / "config" / "stack.json").read_text())
    path, config = render(home, scrape_interval="1s", evaluation_interval="2s")
    assert path == runtime_dir(Home(home)) / "prometheus.yml"
    assert config["global"] == {"scrape_interval": "1s", "evaluation_interval": "2s"}
    targets = {job["job_name"]: job["static_configs"][0]["targets"]
               for job in config["scrape_configs"] if "static_configs" in job}
    assert targets == {"simulator-metrics": [f"127.0.0.1:{stack['providers_port']}"],
                       "aurora-incidents": [f"127.0.0.1:{stack['incidents_port']}"]}
    # the canary controller is a target only while a rollout runs
    [canary_sd] = next(j for j in config["scrape_configs"]
                       if j["job_name"] == "aurora-canary")["file_sd_configs"]
    assert json.loads(Path(canary_sd["files"][0]).read_text()) == []
    # the bridges are in a file Prometheus watches (a canary adds its groups there),
    # with the seed's labels, and track and version
    [sd] = config["scrape_configs"][0]["file_sd_configs"]
    [group] = json.loads(Path(sd["files"][0]).read_text())
    assert group["targets"] == [f"127.0.0.1:{stack['metrics_port']}"]
    assert group["labels"] == {"treaty_id": "AURORA-AKASH-001", "track": "stable",
                               "version": aurora.__version__}
    (manager,) = config["alerting"]["alertmanagers"]
    assert manager["static_configs"][0]["targets"] == [f"127.0.0.1:{stack['alertmanager_port']}"]
    sources = sorted(p.name for p in (home / "ops" / "prometheus" / "rules").glob("*.yml"))
    assert sorted(Path(p).name for p in config["rule_files"]) == sources
    result = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unscaled_rules_are_copied_unchanged(home: Path) -> None:
    _, config = render(home)
    for rendered in map(Path, config["rule_files"]):
        source = home / "ops" / "prometheus" / "rules" / rendered.name
        assert yaml.safe_load(rendered.read_text()) == yaml.safe_load(source.read_text())


def test_compressed_rehearsal_scales_every_for_and_range(home: Path) -> None:
    day_in_100s = 100 / 86400
    path, config = render(home, scrape_interval="1s", evaluation_interval="1s",
                          time_scale=day_in_100s)
    rules = {r.get("alert") or r["record"]: r
             for f in config["rule_files"]
             for g in yaml.safe_load(Path(f).read_text())["groups"] for r in g["rules"]}
    assert rules["TreatyFillRateLow"]["for"] == "4s"  # 15m -> ~1 s, floored at 4 scrapes
    assert "[4s]" in rules["TreatyRttP95High"]["expr"]
    assert "[1m40s]" in rules["slo:fill_errors:ratio_rate1d"]["expr"]  # a day in 100 s
    assert "[8s333ms]" in rules["slo:fill_errors:ratio_rate2h"]["expr"]
    # the minimum-traffic guard counts the orders in the compressed day, not a day's worth
    assert rules["slo:rtt_events:increase1d"]["expr"] == (
        "sum by (treaty_id) (increase(treaty_rtt_ms_count[1m40s]))")
    assert next(r["expr"] for r in rules.values() if r.get("labels", {}).get(
        "long_window") == "1d").endswith("slo:fill_events:increase1d >= 100")
    result = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


RTT_SERIES = 'treaty_rtt_ms_{kind}{{{le}treaty_id="AURORA-AKASH-001"}}'


def _rtt_burn_test(per_second: int, slow_every: int) -> dict:  # type: ignore[type-arg]
    """A promtool test: ``per_second`` orders a second, every ``slow_every``-th over 350 ms."""
    orders = [per_second * t for t in range(61)]
    fast = [n - n // slow_every for n in orders]
    return {
        "interval": "1s",
        "input_series": [
            {"series": RTT_SERIES.format(kind="bucket", le='le="350.0",'),
             "values": " ".join(map(str, fast))},
            {"series": RTT_SERIES.format(kind="count", le=""),
             "values": " ".join(map(str, orders))},
        ],
        "alert_rule_test": [{"eval_time": "50s", "alertname": "TreatyRttBudgetBurn",
                             "exp_alerts": []}],
    }


def test_compressed_burn_alerts_keep_the_traffic_guard(home: Path, tmp_path: Path) -> None:
    # A rehearsal's night: a 12-s day, an order a second, one in three slow. Its "6h" and
    # "30m" windows are 4 s of real time: 4 orders. Counted as rate x 6 h that passed the
    # 100-event guard and paged on one slow order (a SEV2 that failed a Day-7 gate).
    _, config = render(home, scrape_interval="1s", evaluation_interval="1s",
                       time_scale=12 / 86400)
    burn = next(Path(f) for f in config["rule_files"] if Path(f).name == "aurora-burn-rate.yml")
    quiet = _rtt_burn_test(1, 3)
    # the same share of slow orders at 30 a second: 120 in each 4-s window, so it pages
    # (6h/30m: over 28 % slow; 1h/5m needs 84 %) and tickets (1d/2h)
    busy = _rtt_burn_test(30, 3)
    del busy["alert_rule_test"]
    busy["promql_expr_test"] = [{
        "expr": 'count by (long_window) (ALERTS{alertname="TreatyRttBudgetBurn", '
                'alertstate="firing"})',
        "eval_time": "50s",
        "exp_samples": [{"labels": f'{{long_window="{w}"}}', "value": 1} for w in ("6h", "1d")],
    }]
    tests = tmp_path / "compressed.test.yml"
    tests.write_text(yaml.safe_dump({"rule_files": [str(burn)], "evaluation_interval": "1s",
                                     "tests": [quiet, busy]}))
    result = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rerender_drops_rule_files_of_an_earlier_render(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "runtime"
    render(home, out_dir=out)
    (out / "rules" / "leftover.yml").write_text("groups: []\n")
    _, config = render(home, out_dir=out)
    assert not (out / "rules" / "leftover.yml").exists()
    assert all(Path(p).parent == out / "rules" for p in config["rule_files"])


@pytest.mark.parametrize("kwargs", [{"time_scale": 0}, {"time_scale": 2},
                                    {"scrape_interval": "soon"}, {"evaluation_interval": "0s"}])
def test_bad_parameters_are_config_errors(home: Path, kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError):
        render(home, **kwargs)


def test_prometheus_argv(tmp_path: Path) -> None:
    argv = prometheus_argv(tmp_path / "p.yml", 19090, tmp_path / "data")
    assert argv[0].endswith("prometheus")
    assert f"--config.file={tmp_path / 'p.yml'}" in argv
    assert f"--storage.tsdb.path={tmp_path / 'data'}" in argv
    assert "--web.listen-address=127.0.0.1:19090" in argv
    assert "--web.enable-lifecycle" in argv
