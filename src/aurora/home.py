"""Where Aurora keeps its files.

A *home* is a directory laid out like this repository: ``config/``,
``templates/``, ``schemas/``, ``ops/`` (keys, data, backups, run files),
``secrets/`` (private keys), ``logs/`` and ``reports/``. The home is
``$AURORA_HOME`` when set (tests use throwaway homes), else the checkout this
package was installed from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def discover(cls) -> Home:
        env = os.environ.get("AURORA_HOME")
        return cls(Path(env).resolve() if env else _CHECKOUT)

    # configuration shipped with the project
    # A canary candidate that is a changed configuration runs stable's code with its own
    # copy of the configuration (aurora.canary.candidate); nothing else sets these.
    @property
    def config_dir(self) -> Path:
        env = os.environ.get("AURORA_CONFIG_DIR")
        return Path(env) if env else self.root / "config"

    @property
    def treaty_file(self) -> Path:
        env = os.environ.get("AURORA_TREATY_FILE")
        return Path(env) if env else self.root / "templates" / "aurora-treaty-akash.json"

    @property
    def order_schema_file(self) -> Path:
        return self.root / "schemas" / "axelar-order.schema.json"

    # operational state
    @property
    def ops(self) -> Path:
        return self.root / "ops"

    @property
    def data_dir(self) -> Path:
        return self.ops / "data"

    @property
    def run_dir(self) -> Path:
        return self.ops / "run"

    @property
    def backups_dir(self) -> Path:
        return self.ops / "backups"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def ledger_db(self) -> Path:
        env = os.environ.get("AURORA_LEDGER_DB")
        return Path(env) if env else self.data_dir / "remembrancer.db"

    @property
    def checkpoint_file(self) -> Path:
        return self.data_dir / "checkpoint"

    # keys: private under secrets/, public under ops/keys/
    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    @property
    def keys_dir(self) -> Path:
        return self.ops / "keys"

    @property
    def ledger_key(self) -> Path:
        return self.secrets_dir / "ledger.key"

    @property
    def ledger_vkey(self) -> Path:
        return self.keys_dir / "ledger.vkey"

    def tenant_key(self, tenant_id: str) -> Path:
        return self.secrets_dir / "tenants" / f"{tenant_id}.key"

    def tenant_pub(self, tenant_id: str) -> Path:
        return self.keys_dir / "tenants" / f"{tenant_id}.pub"

    def provider_key(self, provider_id: str) -> Path:
        return self.secrets_dir / "providers" / f"{provider_id}.key"

    def provider_pub(self, provider_id: str) -> Path:
        return self.keys_dir / "providers" / f"{provider_id}.pub"

    def pid_file(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.logs_dir / f"{service}.log"
