"""Detached, armored GnuPG signatures and sha256 files for reports.

``sign(path, key_id)`` writes ``path.asc`` (verifiable with ``gpg --verify path.asc path``)
and ``path.sha256`` (``sha256sum -c`` format, file name without directories so that the
check works next to the file). ``verify(path)`` checks both; the Day-7 gate uses it.
The ``gpg`` binary does the cryptography; ``GNUPGHOME`` (or ``gnupghome=``) picks the keyring.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aurora.digests import sha256_file
from aurora.errors import AuroraError

LIST_KEYS_HINT = "list keys with: gpg --list-secret-keys --keyid-format long"


class GpgError(AuroraError):
    """Signing or verification could not be done (no gpg, unknown key, gpg failed)."""

    exit_code = 2


@dataclass(frozen=True)
class Signed:
    path: Path
    signature: Path
    checksum: Path
    sha256: str


@dataclass(frozen=True)
class Verification:
    ok: bool  # signature good and checksum (when present) matching
    signature_ok: bool
    checksum_ok: bool | None  # None: no .sha256 file
    fingerprint: str | None
    signer: str | None
    detail: str


def _gpg() -> str:
    binary = shutil.which("gpg")
    if binary is None:
        raise GpgError("gpg is not installed (Debian/Ubuntu: apt-get install gnupg)")
    return binary


def _run(args: list[str], gnupghome: Path | None) -> subprocess.CompletedProcess[str]:
    argv = [_gpg()]
    if gnupghome is not None:
        argv += ["--homedir", str(gnupghome)]
    # --batch never prompts; a person at a terminal may need pinentry for a passphrase
    if not sys.stdin.isatty():
        argv.append("--batch")
    try:
        return subprocess.run(argv + args, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL if "--batch" in argv else None)
    except subprocess.TimeoutExpired:
        raise GpgError(f"gpg {' '.join(args[:2])} did not finish within 60 s "
                       "(waiting for a passphrase?)") from None


def _keyring() -> str:
    return os.environ.get("GNUPGHOME", "~/.gnupg")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("gpg: ") if lines else "no detail"


def check_secret_key(key_id: str, *, gnupghome: Path | None = None) -> str:
    """The fingerprint of secret key ``key_id``; GpgError naming the key when there is none."""
    result = _run(["--with-colons", "--list-secret-keys", key_id], gnupghome)
    fingerprints = re.findall(r"^fpr:(?:[^:]*:){8}([0-9A-F]+):", result.stdout, re.M)
    if result.returncode != 0 or not fingerprints:
        where = gnupghome or _keyring()
        raise GpgError(f"no GnuPG secret key {key_id} in {where}; {LIST_KEYS_HINT}")
    return str(fingerprints[0])


def write_checksum(path: Path) -> tuple[Path, str]:
    """``path.sha256`` in ``sha256sum`` format; returns it and the digest."""
    digest = sha256_file(path)
    out = path.with_name(path.name + ".sha256")
    out.write_text(f"{digest}  {path.name}\n", encoding="utf-8")
    return out, digest


def sign(path: Path, key_id: str, *, gnupghome: Path | None = None) -> Signed:
    """Detached armored signature ``path.asc`` by ``key_id`` and checksum ``path.sha256``."""
    check_secret_key(key_id, gnupghome=gnupghome)
    signature = path.with_name(path.name + ".asc")
    result = _run(["--yes", "--armor", "--local-user", key_id, "--output", str(signature),
                   "--detach-sign", str(path)], gnupghome)
    if result.returncode != 0:
        raise GpgError(f"gpg could not sign {path} with key {key_id}: "
                       f"{_last_line(result.stderr)}")
    checksum, digest = write_checksum(path)
    return Signed(path, signature, checksum, digest)


def verify_checksum(path: Path, checksum: Path | None = None) -> bool | None:
    """Whether ``path.sha256`` names this file's digest; None when there is no such file."""
    checksum = checksum or path.with_name(path.name + ".sha256")
    try:
        text = checksum.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    match = re.match(r"^([0-9a-f]{64}) [ *](.+)$", text.strip())
    return bool(match and match.group(2) == path.name and match.group(1) == sha256_file(path))


def verify(path: Path, signature: Path | None = None, *, gnupghome: Path | None = None,
           expected_fingerprint: str | None = None) -> Verification:
    """Check ``path.asc`` (or ``signature``) over ``path``, and ``path.sha256`` if present.

    With ``expected_fingerprint`` (or a key id suffix of it) a good signature by another
    key does not count.
    """
    signature = signature or path.with_name(path.name + ".asc")
    if not path.exists() or not signature.exists():
        missing = path if not path.exists() else signature
        return Verification(False, False, None, None, None, f"{missing} is missing")
    result = _run(["--status-fd", "1", "--verify", str(signature), str(path)], gnupghome)
    valid = re.search(r"^\[GNUPG:\] VALIDSIG ([0-9A-F]+) ", result.stdout, re.M)
    good = re.search(r"^\[GNUPG:\] GOODSIG [0-9A-F]+ (.*)$", result.stdout, re.M)
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
