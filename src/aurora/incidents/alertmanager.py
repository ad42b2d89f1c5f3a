"""Running Alertmanager for Aurora: the rendered config and the command line.

``ops/alertmanager.yml`` is written for the default ports and production timings. Stacks
on other ports (tests, a second stack on one machine) and tests that cannot wait minutes
use ``render_alertmanager_config`` to write a copy with the receiver URL from
``config/stack.json`` and shorter intervals.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from aurora.config import StackConfig
from aurora.durable import atomic_write
from aurora.errors import ConfigError
from aurora.home import Home
from aurora.incidents.webhook import MAX_ALERTS
from aurora.tokens import INCIDENTS, token_path

BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's name
RECEIVER_PATH = "/alerts"


def _routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes") or []:
        yield from _routes(child)


def render_alertmanager_config(
    home: Home,
    stack: StackConfig,
    *,
    group_wait: str | None = None,
    group_interval: str | None = None,
    repeat_interval: str | None = None,
    out_dir: Path | None = None,
) -> Path:
    """Write ``out_dir/alertmanager.yml``: ``ops/alertmanager.yml`` pointed at this stack's
    receiver, with the given intervals (e.g. ``"1s"``) on every route. Returns its path.

    ``out_dir`` defaults to ``ops/data/alertmanager-runtime`` (what ``aurora up`` runs);
    intervals not given keep the production values of ``ops/alertmanager.yml``."""
    source = home.ops / "alertmanager.yml"
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{source}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not YAML ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("route"), dict):
        raise ConfigError(f"{source}: no route")
    timings = {"group_wait": group_wait, "group_interval": group_interval,
               "repeat_interval": repeat_interval}
    for route in _routes(document["route"]):
        for name, value in timings.items():
            if value is not None:
                route[name] = value
    url = stack.url(stack.incidents_port, RECEIVER_PATH)
    # Alertmanager reads the token file on each notification: a rotated token needs no
    # re-render, only the receiver's restart.
    credentials = token_path(home, INCIDENTS).resolve()
    for receiver in document.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            hook["url"] = url
            hook["max_alerts"] = MAX_ALERTS  # what the receiver accepts in one notification
            hook["http_config"] = {"authorization": {"type": "Bearer",
                                                     "credentials_file": str(credentials)}}
    out_dir = out_dir or home.data_dir / "alertmanager-runtime"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "alertmanager.yml"
    atomic_write(target, ("# rendered from ops/alertmanager.yml by "
                          "aurora.incidents.alertmanager\n"
                          + yaml.safe_dump(document, sort_keys=False)).encode())
    return target


def find_alertmanager() -> str:
    for name in BINARIES:
        if found := shutil.which(name):
            return found
    raise ConfigError("Alertmanager is not installed (Debian/Ubuntu: "
                      "apt-get install prometheus-alertmanager)")


def alertmanager_argv(config: Path, port: int, data_dir: Path, *, bind: str = "127.0.0.1",
                      binary: str | None = None) -> list[str]:
    """The command line for one Alertmanager on ``bind:port``, clustering off."""
    return [
        binary or find_alertmanager(),
        f"--config.file={config}",
        f"--storage.path={data_dir}",
        f"--web.listen-address={bind}:{port}",
        # empty: no gossip cluster (it would bind :9094 and wait for peers at start)
        "--cluster.listen-address=",
    ]
