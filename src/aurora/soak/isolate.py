"""An isolated home for a rehearsal (``aurora soak rehearse --home DIR``).

A copy of the current home's configuration (``config/``, ``templates/``, ``schemas/`` and
``ops/`` without its data, run files, backups and keys) with its own free loopback ports and
fresh keys, so a rehearsal never touches the real ledger, backups or services. An existing
home at ``DIR`` is reused as it is.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from aurora.home import Home
from aurora.ports import free_ports

PORTS = ("bridge_port", "metrics_port", "providers_port", "prometheus_port",
         "alertmanager_port", "incidents_port", "split_stable_port", "split_canary_port",
         "canary_metrics_port")


def own_ports(stack: dict[str, object], *, replicas: int, split: int) -> None:
    """Give a stack configuration free ports of its own, none shared by two services:
    one per service, ``replicas`` in a run for replicas 2.., ``split`` for a canary's."""
    *singles, replica_run, split_run = free_ports(*[1] * len(PORTS), replicas, split)
    stack.update(zip(PORTS, singles, strict=True))
    stack.update(replica_metrics_port=replica_run, split_metrics_port=split_run)


def copy_home(source: Path, root: Path, *, replicas: int, split: int,
              **stack_overrides: object) -> None:
    """Make ``root`` a home with ``source``'s configuration (``config/``, ``templates/``,
    ``schemas/``, ``ops/`` without data, run files, backups and keys) and free ports of its
    own, then ``stack_overrides`` in its ``config/stack.json``; not yet initialised."""
    root.mkdir(parents=True, exist_ok=True)
    for part in ("config", "templates", "schemas"):
        shutil.copytree(source / part, root / part, dirs_exist_ok=True)
    shutil.copytree(source / "ops", root / "ops", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("data", "run", "backups", "keys"))
    stack_file = root / "config" / "stack.json"
    stack = json.loads(stack_file.read_text())
    own_ports(stack, replicas=replicas, split=split)
    stack.update(stack_overrides)
    stack_file.write_text(json.dumps(stack, indent=2) + "\n")


def isolated_home(root: Path, source: Home | None = None) -> Home:
    """``root`` as an initialised home (created from ``source`` if needed); sets
    ``$AURORA_HOME`` for this process, as the services it starts get it too."""
    from aurora.provision import init_home

    source = source or Home.discover()
    root = root.resolve()
    if not (root / "config" / "stack.json").exists():
        copy_home(source.root, root, replicas=8, split=16)
    home = Home(root)
    init_home(home)
    os.environ["AURORA_HOME"] = str(root)
    return home
