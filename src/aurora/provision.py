"""Provisioning a home (``aurora init``, and ``aurora up`` before it starts anything): the
ops/ folders, a dev key pair for every tenant and provider, the ledger key and its verifier
key. Idempotent; a key is never overwritten."""

from __future__ import annotations

from aurora.home import Home


def init_home(home: Home) -> list[tuple[str, str]]:
    """Create every missing directory and key; never overwrite a key. Returns (what, outcome)."""
    from aurora.config import load_providers, load_stack, load_tenants
    from aurora.keys import ensure_keypair, load_private_key, write_new_file
    from aurora.ledger.note import vkey_for
    from aurora.tokens import NAMES, ensure_token
    from aurora.treaty import load_treaty

    load_treaty(home)  # a bad treaty is a start-up error, so it is one at init too
    stack = load_stack(home)
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
    ledger_pub = home.keys_dir / "ledger.pub"
    made = ensure_keypair(home.ledger_key, ledger_pub)
    vkey = vkey_for(stack.ledger_origin, load_private_key(home.ledger_key).public_key()) + "\n"
    if not home.ledger_vkey.exists():
        write_new_file(home.ledger_vkey, vkey.encode())
    elif home.ledger_vkey.read_text() != vkey:
        from aurora.errors import KeyFileError

        raise KeyFileError(f"{home.ledger_vkey} does not match {home.ledger_key} and origin "
                           f"{stack.ledger_origin!r}")
    done.append(("ledger key", "created" if made else "kept"))
    for name in NAMES:
        made = ensure_token(home, name)
        done.append((f"{name} token", "created" if made else "kept"))
    return done
