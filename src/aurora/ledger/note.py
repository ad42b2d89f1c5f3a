"""C2SP signed notes and tlog checkpoints (pure; no I/O).

Key IDs and verifier keys follow c2sp.org/signed-note: for Ed25519,
``key_id = SHA-256(name || "\\n" || 0x01 || public_key)[:4]`` and the verifier
key string is ``<name>+<hex key id>+<base64(0x01 || public_key)>``.
"""

from __future__ import annotations

import base64
import hashlib

from aurora.keys import Ed25519PublicKey, public_key_bytes

ED25519_TYPE = b"\x01"


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + public_key).digest()[:4]


def vkey_for(name: str, public_key: Ed25519PublicKey) -> str:
    raw = public_key_bytes(public_key)
    encoded = base64.b64encode(ED25519_TYPE + raw).decode()
    return f"{name}+{key_id(name, raw).hex()}+{encoded}"
