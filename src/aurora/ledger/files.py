"""The ledger's files besides the database: keys, the latest-checkpoint file."""

from __future__ import annotations

import os
from pathlib import Path

from aurora.durable import FileLock, atomic_write, file_lock
from aurora.home import Home
from aurora.keys import ensure_keypair, load_private_key, write_new_file
from aurora.ledger.errors import KeyMismatchError, NoteError
from aurora.ledger.note import Checkpoint, Signer, Verifier, parse_note
from aurora.wire import format_rfc3339, utc_now

HomeLike = Home | str | os.PathLike[str] | None


def resolve_home(home: HomeLike) -> Home:
    if home is None:
        return Home.discover()
    if isinstance(home, Home):
        return home
    return Home(Path(home).resolve())


def origin(home: Home) -> str:
    from aurora.config import load_stack

    return load_stack(home).ledger_origin


def load_verifier(home: Home, vkey: Path | None = None) -> Verifier:
    """The ledger's verifier key (``ops/keys/ledger.vkey`` unless given)."""
    path = vkey or home.ledger_vkey
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyMismatchError(f"verifier key {path} is missing (run `aurora init`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyMismatchError(f"verifier key {path} is unreadable: {exc}") from None
    try:
        return Verifier.from_vkey(text)
    except NoteError as exc:
        raise KeyMismatchError(f"verifier key {path}: {exc}") from None


def ensure_ledger_keys(home: Home) -> bool:
    """Create the ledger's key pair and ``ledger.vkey`` if missing (never overwrite);
    refuse a ``ledger.vkey`` that does not match the key and origin. True if created."""
    from aurora.errors import KeyFileError
    from aurora.ledger.note import vkey_for

    made = ensure_keypair(home.ledger_key, home.keys_dir / "ledger.pub")
    name = origin(home)
    vkey = vkey_for(name, load_private_key(home.ledger_key).public_key()) + "\n"
    if not home.ledger_vkey.exists():
        write_new_file(home.ledger_vkey, vkey.encode())
    elif home.ledger_vkey.read_text() != vkey:
        raise KeyFileError(f"{home.ledger_vkey} does not match {home.ledger_key} and origin "
                           f"{name!r}")
    return made


def load_signer(home: Home) -> Signer:
    """The ledger's signing key, named after the origin, checked against ``ledger.vkey``.

    A checkpoint signed by a key other than the published one could never be
    verified, so a mismatch is refused before anything is signed.
    """
    signer = Signer(origin(home), load_private_key(home.ledger_key))
    if home.ledger_vkey.exists():
        published = load_verifier(home)
        mine = signer.verifier
        if (published.name, published.key_id) != (mine.name, mine.key_id):
            raise KeyMismatchError(
                f"{home.ledger_key} (as {mine.name}+{mine.key_id.hex()}) does not match "
                f"{home.ledger_vkey} ({published.name}+{published.key_id.hex()})")
    return signer


def writer_lock(db: Path) -> FileLock:
    """The lock every ledger writer holds, shared, while it has ``db`` open (``.<db>.lock``).

    Blocking: a writer that starts during a restore waits for it and then opens the
    restored file.
    """
    return FileLock(db, shared=True)


def restore_lock(db: Path, stop_hint: str) -> FileLock:
    """The same lock, exclusive and non-blocking: held only while no writer has ``db`` open."""
    return FileLock(db, blocking=False, busy_message=(
        f"the ledger {db} is open in a running ledger writer; {stop_hint}"))


def now_rfc3339() -> str:
    return format_rfc3339(utc_now())


def read_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint in a file, unverified; None if absent or unreadable."""
    try:
        return Checkpoint.parse(parse_note(path.read_bytes()).text)
    except (OSError, NoteError):
        return None


def write_checkpoint_file(path: Path, note: str, size: int) -> bool:
    """Write the latest checkpoint unless the file already holds a larger tree.

    Several processes append to one ledger; each writes its own checkpoints, so
    an older one must not replace a newer one. Returns True if written.
    """
    with file_lock(path):
        current = read_checkpoint(path)
        if current is not None and current.size > size:
            return False
        atomic_write(path, note.encode("utf-8"))
        return True


def move_aside(path: Path, tag: str, stamp: str | None = None) -> Path | None:
    """Rename ``path`` to ``<path>.<tag>-<UTC time>`` (never delete); None if absent."""
    if not path.exists():
        return None
    stamp = stamp or utc_now().strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.{tag}-{stamp}")
    os.replace(path, target)
    return target
