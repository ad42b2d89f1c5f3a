"""The canary split, done by HAProxy 2.6 (Debian's package): rendered config + runtime API.

How the split works (all inside HAProxy, nothing home-made on the order path):

- ``option http-buffer-request`` makes HAProxy wait for the order body, and
  ``req.body,json_query('$.tenant_id'),crc32,mod(100)`` hashes the tenant into one of 100
  buckets; ``aurora.canary.plan.bucket_of`` is the same function in Python (zlib's
  CRC-32), so the analysis can tell from a ledger row which track a tenant was on and
  which tenants form the matched stable slice (``plan.matched_sequences``).
- The weight lives in a map file (key ``canary``); a bucket below it goes to the canary
  backend. ``set_weight`` writes the file (so a restart keeps it) and changes the loaded
  map through the stats socket (``set map``): no reload, no connection touched, so no
  in-flight order is dropped. Raising the weight only moves tenants stable -> canary.
- If every canary server is down, its tenants' orders go to stable rather than fail; the
  measured split then drifts, which stops the rollout (``aurora.canary.plan.check_split``).
- A body that is not JSON or has no ``tenant_id`` goes to stable (whose bridge answers
  it 400/422); an order over ``tune.bufsize`` (16 KiB; orders are < 1 KiB) is not fully
  buffered, cannot be hashed, and goes to stable as well.
- ``served`` reads the per-backend totals (``show stat``, ``stot``) to measure the split.
"""

from __future__ import annotations

import csv
import io
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aurora.canary.plan import BUCKETS  # and plan.bucket_of: the Python twin of the hash below
from aurora.durable import atomic_write
from aurora.errors import AuroraError, ConfigError

MAP_KEY = "canary"
TRACKS = ("stable", "canary")


@dataclass(frozen=True)
class Server:
    host: str
    port: int


@dataclass(frozen=True)
class SplitConfig:
    bind_host: str
    bind_port: int
    stable: Sequence[Server]
    canary: Sequence[Server]
    admin_socket: Path
    weight_map: Path
    health_path: str = "/healthz"
    maxconn: int = 1024

    def __post_init__(self) -> None:
        if not self.stable or not self.canary:
            raise ConfigError("the split needs at least one stable and one canary server")


def _servers(prefix: str, servers: Sequence[Server]) -> str:
    return "\n".join(f"    server {prefix}{i} {s.host}:{s.port} check inter 2s fall 3 rise 2"
                     for i, s in enumerate(servers, 1))


def render(cfg: SplitConfig) -> str:
    """The haproxy.cfg text of the split (validate it with ``check_config``)."""
    return f"""# Rendered by aurora.canary.haproxy; the canary weight is in {cfg.weight_map}
global
    stats socket {cfg.admin_socket} mode 600 level admin
    maxconn {cfg.maxconn}

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    # a busy bridge answers /healthz late; that must not take a whole track down
    timeout check 5s

frontend orders
    bind {cfg.bind_host}:{cfg.bind_port}
    option http-buffer-request
    http-request set-var(txn.bucket) req.body,json_query('$.tenant_id'),crc32,mod({BUCKETS})
    http-request set-var(txn.weight) str({MAP_KEY}),map({cfg.weight_map},0)
    acl has_bucket var(txn.bucket) -m found
    acl below_weight var(txn.bucket),sub(txn.weight) lt 0
    acl canary_up nbsrv(canary) gt 0
    use_backend canary if has_bucket below_weight canary_up
    default_backend stable

backend stable
    option httpchk GET {cfg.health_path}
{_servers("stable", cfg.stable)}

backend canary
    option httpchk GET {cfg.health_path}
{_servers("canary", cfg.canary)}
"""


def _check_weight(weight: int) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= BUCKETS:
        raise ConfigError(f"canary weight must be an integer from 0 to 100, not {weight!r}")
    return weight


def write_weight_map(path: Path, weight: int) -> None:
    """The map file HAProxy loads at start (atomically replaced, durably)."""
    atomic_write(path, f"{MAP_KEY} {_check_weight(weight)}\n".encode())


def write_config(cfg: SplitConfig, path: Path, *, weight: int) -> None:
    write_weight_map(cfg.weight_map, weight)
    path.write_text(render(cfg))


def haproxy_binary() -> str:
    """Debian installs haproxy in /usr/sbin, which a normal user's PATH may lack."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if found is None:
        raise ConfigError("haproxy not found; run scripts/ensure-system-deps.sh")
    return found


def check_config(path: Path, haproxy: str | None = None) -> None:
    """``haproxy -c``; ConfigError with HAProxy's first complaint if it is not valid."""
    haproxy = haproxy or haproxy_binary()
    try:
        result = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True,
                                text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise ConfigError(f"{haproxy} not found; run scripts/ensure-system-deps.sh") from None
    if result.returncode != 0:
        lines = [ln for ln in (result.stdout + result.stderr).splitlines() if "ALERT" in ln]
        raise ConfigError(f"haproxy rejects {path}: "
                          f"{lines[0] if lines else result.stderr.strip()[:300]}")


def argv(path: Path, haproxy: str | None = None) -> list[str]:
    """The command that runs the split in the foreground (for ``aurora.procs.spawn``)."""
    return [haproxy or haproxy_binary(), "-db", "-f", str(path)]


class RuntimeApi:
    """HAProxy's runtime API on its admin stats socket."""

    def __init__(self, admin_socket: Path, weight_map: Path, timeout: float = 5.0) -> None:
        self.admin_socket = admin_socket
        self.weight_map = weight_map
        self.timeout = timeout

    def command(self, line: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.admin_socket))
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise AuroraError(f"HAProxy runtime API at {self.admin_socket}: {exc}") from None
        return b"".join(chunks).decode()

    def weight(self) -> int:
        """The weight HAProxy holds now (from the loaded map, not the file)."""
        for line in self.command(f"show map {self.weight_map}").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == MAP_KEY:
                return int(parts[2])
        raise AuroraError(f"HAProxy holds no {MAP_KEY!r} entry in {self.weight_map}")

    def set_weight(self, weight: int) -> None:
        """Change the split now, without a reload; checked by reading it back."""
        write_weight_map(self.weight_map, weight)
        answer = self.command(f"set map {self.weight_map} {MAP_KEY} {weight}").strip()
        if answer:
            raise AuroraError(f"HAProxy refused the weight change: {answer}")
        if (held := self.weight()) != weight:
            raise AuroraError(f"HAProxy holds weight {held} after setting {weight}")

    def _backends(self) -> dict[str, dict[str, str]]:
        text = self.command("show stat").lstrip("# ")
        out = {row["pxname"]: row for row in csv.DictReader(io.StringIO(text))
               if row.get("svname") == "BACKEND" and row.get("pxname") in TRACKS}
        if set(out) != set(TRACKS):
            raise AuroraError("HAProxy's statistics lack the stable or canary backend")
        return out

    def served(self) -> dict[str, int]:
        """Requests each backend has served since HAProxy started (``stot``)."""
        return {name: int(row["stot"] or 0) for name, row in self._backends().items()}

    def backend_status(self) -> dict[str, str]:
        """Each backend's health as HAProxy sees it (``UP``, ``DOWN``)."""
        return {name: row["status"] for name, row in self._backends().items()}
