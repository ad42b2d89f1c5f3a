"""GnuPG keys for the soak: which key signs, throwaway keys for rehearsals, verifying later.

The signing key is ``--key KEYID``, else ``$AURORA_GPG_KEY``, else none (reports stay
unsigned, and the gate's governance item fails). A rehearsal without a key makes a
throwaway ed25519 key in a temporary GNUPGHOME, removed when the rehearsal ends.

The public half of the key that signed the governance report is exported next to it
(``reports/canary-72h.pub.asc``) and its fingerprint recorded in the ledger: the gate
verifies the signature in a temporary keyring holding that file only, and accepts it only
from that fingerprint — so swapping both the key file and the signature is still caught.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aurora.slo.gpg import GpgError

ENV_KEY = "AURORA_GPG_KEY"


def chosen_key(key: str | None) -> str | None:
    return key or os.environ.get(ENV_KEY) or None


def _gpg(args: list[str], gnupghome: Path | None, *, stdin: bytes | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("gpg")
    if binary is None:
        raise GpgError("gpg is not installed (Debian/Ubuntu: apt-get install gnupg)")
    argv = [binary, "--batch"] + (["--homedir", str(gnupghome)] if gnupghome else []) + args
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise GpgError(f"gpg {' '.join(args[:2])} did not finish within 120 s") from None


def stop_agent(gnupghome: Path) -> None:
    """Stop the gpg-agent that gpg started for this keyring (addressed by its home only)."""
    if shutil.which("gpgconf"):
        subprocess.run(["gpgconf", "--homedir", str(gnupghome), "--kill", "all"],
                       capture_output=True, timeout=30)


@contextlib.contextmanager
def temporary_keyring() -> Iterator[Path]:
    # a short path: gpg-agent's socket path must stay under ~100 bytes
    home = Path(tempfile.mkdtemp(prefix="aurora-gpg-", dir="/tmp"))
    home.chmod(0o700)
    try:
        yield home
    finally:
        stop_agent(home)
        shutil.rmtree(home, ignore_errors=True)


def make_throwaway_key(gnupghome: Path, uid: str) -> str:
    """A fresh ed25519 signing key without passphrase; returns its fingerprint."""
    result = _gpg(["--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"],
                  gnupghome)
    if result.returncode != 0:
        raise GpgError(f"gpg could not create a key: {result.stderr.decode()[-200:]}")
    listing = _gpg(["--with-colons", "--list-secret-keys"], gnupghome).stdout.decode()
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))


def export_public(key: str, gnupghome: Path | None, out: Path) -> Path:
    result = _gpg(["--armor", "--export", key], gnupghome)
    if result.returncode != 0 or not result.stdout:
        raise GpgError(f"gpg could not export the public key {key}")
    out.write_bytes(result.stdout)
    return out


@contextlib.contextmanager
def keyring_with(public_key: Path) -> Iterator[Path]:
    """A temporary keyring holding only ``public_key``."""
    with temporary_keyring() as home:
        result = _gpg(["--import", str(public_key)], home)
        if result.returncode != 0:
            raise GpgError(f"gpg could not import {public_key}: "
                           f"{result.stderr.decode(errors='replace')[-200:]}")
        yield home
