"""Provisioning a home (``aurora init``, and ``aurora up`` before it starts anything): the
ops/ folders, a dev key pair for every tenant and provider, the ledger key and its verifier
key. Idempotent; a key is never overwritten."""

from __future__ import annotations

from aurora.home import Home


def init_home(home: Home) -> list[tuple[str, str]]:
    """Create every missing directory and key; never overwrite a key. Returns (what, outcome)."""
    from aurora.config import load_providers, load_stack, load_tenants
    from aurora.keys import ensure_keypair
    from aurora.ledger.files import ensure_ledger_keys
    from aurora.tokens import NAMES, ensure_token
    from aurora.treaty import load_treaty

    load_treaty(home)  # a bad treaty is a start-up error, so it is one at init too
    load_stack(home)
    done: list[tuple[str, str]] = []
    for directory in (home.data_dir, home.run_dir, home.backups_dir, home.logs_dir,
                      home.reports_dir, home.keys_dir):
        directory.mkdir(parents=True, exist_ok=True)
    home.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for tenant in load_tenants(home):
        made = ensure_keypair(home.tenant_key(tenant.id), tenant.public_key_path(home))
        done.append((f"tenant key {tenant.id}", "created" if made else "kept"))
    for provider in load_providers(home).providers:
        made = ensure_keypair(home.provider_key(provider.id), home.provider_pub(provider.id))
        done.append((f"provider key {provider.id}", "created" if made else "kept"))
    made = ensure_ledger_keys(home)
    done.append(("ledger key", "created" if made else "kept"))
    for name in NAMES:
        made = ensure_token(home, name)
        done.append((f"{name} token", "created" if made else "kept"))
    return done
