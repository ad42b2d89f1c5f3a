"""Ed25519 keys on disk and the signatures made with them.

Private keys are PEM PKCS#8 files under ``secrets/`` (mode 0600), public keys
PEM SubjectPublicKeyInfo files under ``ops/keys/``. Key files are written once
and never overwritten.

Key files are read with ``cryptography``; the per-order signatures are made
and checked with libsodium (PyNaCl), which on this hardware verifies an
Ed25519 signature in under half the time (see docs/PERFORMANCE.md). Both
implement RFC 8032; libsodium additionally refuses non-canonical encodings
and small-order keys, which no honest signer produces.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aurora.errors import KeyFileError

__all__ = [
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "b64decode_strict",
    "ensure_keypair",
    "load_private_key",
    "load_public_key",
    "public_key_bytes",
    "sign_b64",
    "verify_b64",
    "write_new_file",
]


def write_new_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create ``path`` with ``data``; refuse to replace an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    """The raw 32-byte RFC 8032 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{what} {path} is missing (run `aurora init`)") from None
    except OSError as exc:
        raise KeyFileError(f"{what} {path} is unreadable: {exc.strerror}") from None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read_key_file(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"private key {path} is not a PEM PKCS#8 key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"private key {path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = _read_key_file(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"public key {path} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"public key {path} is not an Ed25519 key")
    return key


def ensure_keypair(private_path: Path, public_path: Path) -> bool:
    """Create an Ed25519 key pair unless the private key exists; return True if created.

    An existing private key is never replaced. A missing public key is derived
    from it; an existing public key that does not match it is an error.
    """
    if private_path.exists():
        key = load_private_key(private_path)
        pem = public_pem(key.public_key())
        if not public_path.exists():
            write_new_file(public_path, pem)
        elif public_path.read_bytes() != pem:
            raise KeyFileError(f"{public_path} does not match the private key {private_path}")
        return False
    if public_path.exists():
        raise KeyFileError(
            f"{public_path} exists but its private key {private_path} is missing; "
            "restore the private key or remove the public key"
        )
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_new_file(private_path, private_pem(key), mode=0o600)
    write_new_file(public_path, public_pem(key.public_key()))
    return True


def b64decode_strict(text: str) -> bytes:
    """The bytes of canonical standard base64 (padded); anything else raises ValueError.

    The one decoder for base64 from outside (signatures, keys, signed notes). Canonical
    means decoding and re-encoding gives the text back: the unused low bits of the last
    character before ``=`` must be zero, or one signature would have several spellings
    (and an order several ``order_sha256``).
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"not standard base64: {exc}") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("not canonical base64 (nonzero padding bits)")
    return raw


# libsodium key objects per cryptography key object. The entry keeps the key object
# alive, so its id() cannot be reused by another key while it is cached.
_SODIUM: dict[int, tuple[object, nacl.signing.VerifyKey | nacl.signing.SigningKey]] = {}
_SODIUM_MAX = 4096


def _sodium(key: Ed25519PublicKey | Ed25519PrivateKey) -> Any:
    cached = _SODIUM.get(id(key))
    if cached is not None and cached[0] is key:
        return cached[1]
    if isinstance(key, Ed25519PrivateKey):
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        sodium: nacl.signing.VerifyKey | nacl.signing.SigningKey = nacl.signing.SigningKey(raw)
    else:
        sodium = nacl.signing.VerifyKey(public_key_bytes(key))
    if len(_SODIUM) >= _SODIUM_MAX:
        _SODIUM.clear()
    _SODIUM[id(key)] = (key, sodium)
    return sodium


def sign_b64(key: Ed25519PrivateKey, message: bytes) -> str:
    signature = _sodium(key).sign(message).signature
    return base64.b64encode(signature).decode("ascii")


def verify_b64(key: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    """True when ``signature_b64`` is a valid Ed25519 signature of ``message``."""
    try:
        signature = b64decode_strict(signature_b64)
    except ValueError:
        return False
    if len(signature) != 64:
        return False
    try:
        _sodium(key).verify(message, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True
