"""GnuPG: detached signatures and sha256 files for the documents Aurora publishes.

The public API is small:

* ``publish(path, data, key=None)``: write a document and what describes it in one durable
  step (``aurora.durable.publish``): the old ``.asc``/``.sha256`` go first, then the new
  content, its ``path.sha256`` (``sha256sum -c`` format) and, with a key, ``path.asc``.
  A document is thus either signed by the run that wrote it or visibly unsigned.
* ``sign_detached(path, key) -> Path``: ``path.asc``, verifiable with
  ``gpg --verify path.asc path``; ``verify_detached(path, sig=None)`` checks it (and
  ``path.sha256`` when present).
* keys: ``chosen_key`` (``--key`` else ``$AURORA_GPG_KEY``), ``secret_key_fingerprint``,
  ``export_public``, ``temporary_keyring``, ``keyring_with(pub)``, ``make_throwaway_key``.

The ``gpg`` binary does the cryptography, always the same way: ``--batch`` unless a person
at a terminal may have to type a passphrase, one timeout, fingerprints read from
``--with-colons`` output. ``GNUPGHOME`` (or ``gnupghome=``) picks the keyring.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aurora import durable
from aurora.digests import sha256_file
from aurora.errors import AuroraError

ENV_KEY = "AURORA_GPG_KEY"
TIMEOUT_S = 120
LIST_KEYS_HINT = "list keys with: gpg --list-secret-keys --keyid-format long"


class GpgError(AuroraError):
    """Signing or verification could not be done (no gpg, unknown key, gpg failed)."""

    exit_code = 2


@dataclass(frozen=True)
class Published:
    path: Path
    checksum: Path
    sha256: str
    signature: Path | None  # None: visibly unsigned
    fingerprint: str | None


@dataclass(frozen=True)
class Verification:
    ok: bool  # signature good and checksum (when present) matching
    signature_ok: bool
    checksum_ok: bool | None  # None: no .sha256 file
    fingerprint: str | None
    signer: str | None
    detail: str


def chosen_key(key: str | None) -> str | None:
    return key or os.environ.get(ENV_KEY) or None


def signature_path(path: Path) -> Path:
    return durable.sidecar(path, ".asc")


def checksum_path(path: Path) -> Path:
    return durable.sidecar(path, ".sha256")


def _run(args: list[str], gnupghome: Path | None, *, stdin: bytes | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("gpg")
    if binary is None:
        raise GpgError("gpg is not installed (Debian/Ubuntu: apt-get install gnupg)")
    argv = [binary] + (["--homedir", str(gnupghome)] if gnupghome else [])
    interactive = stdin is None and sys.stdin.isatty()
    if not interactive:  # never prompt; a person at a terminal may need pinentry
        argv.append("--batch")
    try:
        if stdin is not None:
            return subprocess.run(argv + args, input=stdin, capture_output=True,
                                  timeout=TIMEOUT_S)
        return subprocess.run(argv + args, capture_output=True, timeout=TIMEOUT_S,
                              stdin=None if interactive else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise GpgError(f"gpg {' '.join(args[:2])} did not finish within {TIMEOUT_S} s "
                       "(waiting for a passphrase?)") from None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _last_line(raw: bytes) -> str:
    lines = [line for line in _text(raw).strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("gpg: ") if lines else "no detail"


def _fingerprints(colons: bytes) -> list[str]:
    """The primary keys' fingerprints in ``--with-colons`` output (field 10 of ``fpr``
    right after a ``pub``/``sec`` line; subkeys' ``fpr`` lines are skipped)."""
    out, primary = [], False
    for line in _text(colons).splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sec"):
            primary = True
        elif fields[0] in ("sub", "ssb"):
            primary = False
        elif fields[0] == "fpr" and primary and len(fields) > 9:
            out.append(fields[9])
            primary = False
    return out


def _keyring() -> str:
    return os.environ.get("GNUPGHOME", "~/.gnupg")


def secret_key_fingerprint(key_id: str, *, gnupghome: Path | None = None) -> str:
    """The fingerprint of secret key ``key_id``; GpgError naming the key when there is none."""
    result = _run(["--with-colons", "--list-secret-keys", key_id], gnupghome)
    fingerprints = _fingerprints(result.stdout)
    if result.returncode != 0 or not fingerprints:
        where = gnupghome or _keyring()
        raise GpgError(f"no GnuPG secret key {key_id} in {where}; {LIST_KEYS_HINT}")
    return fingerprints[0]


def write_checksum(path: Path) -> tuple[Path, str]:
    """``path.sha256`` in ``sha256sum`` format (durably); returns it and the digest."""
    digest = sha256_file(path)
    out = durable.atomic_write(checksum_path(path), f"{digest}  {path.name}\n".encode())
    return out, digest


def sign_detached(path: Path, key_id: str, *, gnupghome: Path | None = None) -> Path:
    """A detached armored signature ``path.asc`` by ``key_id``, written durably."""
    signature = signature_path(path)
    with durable.atomic_output(signature) as tmp:
        result = _run(["--yes", "--armor", "--local-user", key_id, "--output", str(tmp),
                       "--detach-sign", str(path)], gnupghome)
        if result.returncode != 0:
            raise GpgError(f"gpg could not sign {path} with key {key_id}: "
                           f"{_last_line(result.stderr)}")
    return signature


def publish(path: Path, data: bytes, key: str | None = None, *,
            gnupghome: Path | None = None) -> Published:
    """Write ``data`` to ``path`` with its ``.sha256`` and, given a key, its ``.asc``.

    The key is checked before anything is written; the old document's sidecars are removed
    before its new content appears, so a stale signature never describes new content.
    """
    fingerprint = secret_key_fingerprint(key, gnupghome=gnupghome) if key else None
    durable.publish(path, data)
    checksum, digest = write_checksum(path)
    signature = sign_detached(path, key, gnupghome=gnupghome) if key else None
    return Published(path, checksum, digest, signature, fingerprint)


def verify_checksum(path: Path, checksum: Path | None = None) -> bool | None:
    """Whether ``path.sha256`` names this file's digest; None when there is no such file."""
    checksum = checksum or checksum_path(path)
    try:
        text = checksum.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    match = re.match(r"^([0-9a-f]{64}) [ *](.+)$", text.strip())
    return bool(match and match.group(2) == path.name and match.group(1) == sha256_file(path))


def verify_detached(path: Path, sig: Path | None = None, *, gnupghome: Path | None = None,
                    expected_fingerprint: str | None = None) -> Verification:
    """Check ``path.asc`` (or ``sig``) over ``path``, and ``path.sha256`` if present.

    With ``expected_fingerprint`` (or a key id suffix of it) a good signature by another
    key does not count.
    """
    signature = sig or signature_path(path)
    if not path.exists() or not signature.exists():
        missing = path if not path.exists() else signature
        return Verification(False, False, None, None, None, f"{missing} is missing")
    result = _run(["--status-fd", "1", "--verify", str(signature), str(path)], gnupghome)
    status = _text(result.stdout)
    valid = re.search(r"^\[GNUPG:\] VALIDSIG ([0-9A-F]+) ", status, re.M)
    good = re.search(r"^\[GNUPG:\] GOODSIG [0-9A-F]+ (.*)$", status, re.M)
    fingerprint = valid.group(1) if valid else None
    signature_ok = result.returncode == 0 and valid is not None
    detail = f"good signature by {good.group(1)}" if good and signature_ok else \
        _last_line(result.stderr)
    if signature_ok and expected_fingerprint and fingerprint and \
            not fingerprint.endswith(expected_fingerprint.upper()):
        signature_ok, detail = False, f"signed by {fingerprint}, not {expected_fingerprint}"
    checksum_ok = verify_checksum(path)
    if checksum_ok is False:
        detail += f"; {path.name}.sha256 does not match"
    return Verification(signature_ok and checksum_ok is not False, signature_ok, checksum_ok,
                        fingerprint, good.group(1) if good else None, detail)


# --- keyrings -------------------------------------------------------------------------------


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
    result = _run(["--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"],
                  gnupghome, stdin=b"")
    if result.returncode != 0:
        raise GpgError(f"gpg could not create a key: {_last_line(result.stderr)}")
    listing = _run(["--with-colons", "--list-secret-keys"], gnupghome)
    fingerprints = _fingerprints(listing.stdout)
    if not fingerprints:
        raise GpgError(f"gpg created no secret key in {gnupghome}")
    return fingerprints[0]


def export_public(key: str, gnupghome: Path | None, out: Path) -> Path:
    result = _run(["--armor", "--export", key], gnupghome)
    if result.returncode != 0 or not result.stdout:
        raise GpgError(f"gpg could not export the public key {key}")
    return durable.atomic_write(out, result.stdout)


@contextlib.contextmanager
def keyring_with(public_key: Path) -> Iterator[Path]:
    """A temporary keyring holding only ``public_key``."""
    with temporary_keyring() as home:
        result = _run(["--import", str(public_key)], home)
        if result.returncode != 0:
            raise GpgError(f"gpg could not import {public_key}: {_last_line(result.stderr)}")
        yield home
