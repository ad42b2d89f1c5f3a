"""C2SP signed notes and tlog checkpoints (pure; no I/O).

Key IDs and verifier keys follow c2sp.org/signed-note: for Ed25519,
``key_id = SHA-256(name || "\\n" || 0x01 || public_key)[:4]`` and the verifier
key string is ``<name>+<hex key id>+<base64(0x01 || public_key)>``.

A note is its text (UTF-8, LF line ends, ending in a newline), a blank line,
and signature lines ``— <name> <base64(key id || signature)>``. Verification
follows Go's ``golang.org/x/mod/sumdb/note.Open``: signatures from unknown keys
are ignored, a signature from a trusted key that fails rejects the note, and a
note needs at least one verified signature. A checkpoint
(c2sp.org/tlog-checkpoint) is a note whose text is ``origin``, the tree size in
decimal, the base64 root hash and optional non-empty extension lines.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from aurora.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    b64decode_strict,
    public_key_bytes,
    sign_b64,
    verify_b64,
)
from aurora.ledger.errors import KeyMismatchError, NoteError

ED25519_TYPE = b"\x01"
SIG_PREFIX = "\u2014 "  # EM DASH and a space
MAX_SIGNATURES = 100  # Go's limit; C2SP asks verifiers to accept at least 16
_SIZE = re.compile(r"(0|[1-9][0-9]*)")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # every ASCII control character but LF


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + public_key).digest()[:4]


def vkey_for(name: str, public_key: Ed25519PublicKey) -> str:
    raw = public_key_bytes(public_key)
    encoded = base64.b64encode(ED25519_TYPE + raw).decode()
    return f"{name}+{key_id(name, raw).hex()}+{encoded}"


def is_valid_name(name: str) -> bool:
    """Key names are non-empty, without Unicode spaces and without ``+``."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _b64decode(text: str) -> bytes:
    try:
        return b64decode_strict(text)
    except ValueError:
        raise NoteError("not canonical standard base64") from None


# --- keys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verifier:
    """A trusted Ed25519 note key: name, 4-byte key ID and public key."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<hex id>+<base64(0x01 || key)>`` (split at the first two ``+`` only)."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("verifier key is not <name>+<hex id>+<base64 key>")
        name, id_hex, key_b64 = parts
        if not is_valid_name(name):
            raise NoteError(f"verifier key name {name!r} is not a valid key name")
        if not re.fullmatch(r"[0-9a-f]{8}", id_hex):
            raise NoteError("verifier key ID is not 8 lowercase hex digits")
        try:
            raw = _b64decode(key_b64)
        except NoteError:
            raise NoteError("verifier key is not standard base64") from None
        if len(raw) != 33 or raw[:1] != ED25519_TYPE:
            raise NoteError("verifier key is not an Ed25519 (type 0x01) key")
        if key_id(name, raw[1:]).hex() != id_hex:
            raise NoteError("verifier key ID does not match its name and key")
        return cls(name, bytes.fromhex(id_hex), Ed25519PublicKey.from_public_bytes(raw[1:]))

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> Verifier:
        return cls(name, key_id(name, public_key_bytes(public_key)), public_key)

    def vkey(self) -> str:
        return vkey_for(self.name, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        # aurora.keys checks Ed25519 with libsodium: faster, and it releases the GIL.
        return len(signature) == 64 and verify_b64(
            self.public_key, base64.b64encode(signature).decode("ascii"), message)

    def verify_checkpoint_note(self, note: str, checkpoint: Checkpoint) -> bool | None:
        """Check a note that should be exactly ``checkpoint`` signed by this key alone.

        True or False if the note has that exact shape (text, blank line, one
        signature line of this key); None otherwise, for the caller to fall back to
        ``open_checkpoint``. Auditing a week of checkpoints (one per 5 s) this way
        costs little more than the signature checks themselves.
        """
        text = checkpoint.text()
        head = f"{text}\n{SIG_PREFIX}{self.name} "
        if not note.startswith(head) or not note.endswith("\n") or "\n" in note[len(head):-1]:
            return None
        try:
            raw = _b64decode(note[len(head):-1])
        except NoteError:
            return None
        if raw[:4] != self.key_id:
            return None
        return self.verify(text.encode("utf-8"), raw[4:])


@dataclass(frozen=True)
class Signer:
    """An Ed25519 note signing key with its name."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        if not is_valid_name(self.name):
            raise KeyMismatchError(f"{self.name!r} is not a valid note key name "
                                   "(no spaces, no '+')")

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse Go's ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("signer key is not PRIVATE+KEY+<name>+<hex id>+<base64 seed>")
        _, _, name, id_hex, seed_b64 = parts
        raw = _b64decode(seed_b64)
        if len(raw) != 33 or raw[:1] != ED25519_TYPE:
            raise NoteError("signer key is not an Ed25519 (type 0x01) seed")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.verifier.key_id.hex() != id_hex:
            raise NoteError("signer key ID does not match its public key")
        return signer

    @property
    def verifier(self) -> Verifier:
        return Verifier.from_public_key(self.name, self.private_key.public_key())

    def signature_line(self, text: str) -> str:
        signature = base64.b64decode(sign_b64(self.private_key, text.encode("utf-8")))
        encoded = base64.b64encode(self.verifier.key_id + signature).decode("ascii")
        return f"{SIG_PREFIX}{self.name} {encoded}\n"


# --- notes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes
    line: str  # the signature line as written, without its newline


@dataclass(frozen=True)
class Note:
    """A parsed note: its text and every signature line (verified or not)."""

    text: str
    signatures: tuple[Signature, ...]


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """The signed note of ``text`` (which must end in a newline)."""
    _check_text(text)
    lines = [signer.signature_line(text) for signer in signers]
    if not lines:
        raise NoteError("a note needs at least one signer")
    return text + "\n" + "".join(lines)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if _CONTROL.search(text):
        raise NoteError("note text holds a control character other than newline")


def parse_note(message: str | bytes) -> Note:
    """Split a note into text and signature lines, checking the format but no signature."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not UTF-8") from None
    else:
        try:
            message.encode("utf-8")
        except UnicodeEncodeError:
            raise NoteError("note is not valid Unicode (lone surrogate)") from None
    if _CONTROL.search(message):
        raise NoteError("note holds a control character other than newline (CR? tab?)")
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = message[:split + 1], message[split + 2:]
    if not block or not block.endswith("\n"):
        raise NoteError("note signatures must end with a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError("signature line does not start with an em dash and a space")
        name, _, encoded = line[len(SIG_PREFIX):].partition(" ")
        raw = _b64decode(encoded) if encoded else b""
        if not is_valid_name(name) or len(raw) < 5:
            raise NoteError("malformed signature line")
        signatures.append(Signature(name, raw[:4], raw[4:], line))
        if len(signatures) > MAX_SIGNATURES:
            raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(signatures))


def open_note(message: str | bytes, verifiers: Iterable[Verifier]) -> Note:
    """Parse and verify a note; return it with only its verified signatures.

    Unknown keys (name and ID not both matching a trusted key) are ignored; a
    trusted key whose signature fails rejects the note; no verified signature
    rejects the note.
    """
    note = parse_note(message)
    trusted = {(v.name, v.key_id): v for v in verifiers}
    text = note.text.encode("utf-8")
    verified: dict[tuple[str, bytes], Signature] = {}
    for sig in note.signatures:
        verifier = trusted.get((sig.name, sig.key_id))
        if verifier is None or (sig.name, sig.key_id) in verified:
            continue
        if not verifier.verify(text, sig.signature):
            raise NoteError(f"invalid signature by trusted key {sig.name}+{sig.key_id.hex()}")
        verified[(sig.name, sig.key_id)] = sig
    if not verified:
        names = ", ".join(f"{v.name}+{v.key_id.hex()}" for v in trusted.values()) or "none"
        raise NoteError(f"note is not signed by a trusted key (trusted: {names})")
    return Note(note.text, tuple(verified.values()))


# --- checkpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The body of a tlog checkpoint."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"),
                 *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body, enforcing the C2SP rules."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint needs an origin, a tree size and a root hash")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise NoteError("checkpoint origin is empty")
        if not _SIZE.fullmatch(size_text) or int(size_text) >= 1 << 64:
            raise NoteError(f"checkpoint size {size_text!r} is not a decimal number "
                            "without leading zeros")
        try:
            root = _b64decode(root_text)
        except NoteError:
            raise NoteError("checkpoint root is not standard base64") from None
        if len(root) != 32 or base64.b64encode(root).decode("ascii") != root_text:
            raise NoteError("checkpoint root is not the padded base64 of 32 bytes")
        if any(not line for line in extensions):
            raise NoteError("checkpoint has an empty extension line")
        return cls(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    return sign_note(checkpoint.text(), [signer])


def open_checkpoint(message: str | bytes, verifiers: Iterable[Verifier],
                    origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint and parse its body; optionally require its origin."""
    note = open_note(message, verifiers)
    checkpoint = Checkpoint.parse(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint
