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
import socket
from pathlib import Path

from aurora.home import Home

PORTS = ("bridge_port", "metrics_port", "providers_port", "prometheus_port",
         "alertmanager_port", "incidents_port", "split_stable_port", "split_canary_port",
         "canary_metrics_port")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (a replica group's metrics)."""
    for _ in range(100):
        base = free_port()
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise OSError(f"no {count} consecutive free ports")


def isolated_home(root: Path, source: Home | None = None) -> Home:
    """``root`` as an initialised home (created from ``source`` if needed); sets
    ``$AURORA_HOME`` for this process, as the services it starts get it too."""
    from aurora.provision import init_home

    source = source or Home.discover()
    root = root.resolve()
    if not (root / "config" / "stack.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        for part in ("config", "templates", "schemas"):
            shutil.copytree(source.root / part, root / part, dirs_exist_ok=True)
        shutil.copytree(source.ops, root / "ops", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("data", "run", "backups", "keys"))
        stack_file = root / "config" / "stack.json"
        stack = json.loads(stack_file.read_text())
        stack.update({name: free_port() for name in PORTS})
        stack["replica_metrics_port"] = free_port_run(8)
        stack["split_metrics_port"] = free_port_run(16)
        stack_file.write_text(json.dumps(stack, indent=2) + "\n")
    home = Home(root)
    init_home(home)
    os.environ["AURORA_HOME"] = str(root)
    return home
