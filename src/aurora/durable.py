"""Durable files: atomic replacement that survives a crash, and locks between processes.

Every file Aurora writes for someone else to trust later (signed reports, gate verdicts,
archives, backups' sidecars, PID files, checkpoint files) goes through here, so that a
crash leaves the old file or the new one, never a torn or empty one:

* ``atomic_write(path, data)`` / ``atomic_output(path)``: write a temporary file beside
  ``path``, fsync it, rename it over ``path``, fsync the directory;
* ``publish(path, data)``: the same for a document that has sidecars describing it
  (``.asc``, ``.sha256``): the sidecars of the old content are removed, durably, *before*
  the new content appears, so no signature or digest of the old file is ever seen beside
  the new one; the caller then writes the new sidecars (``aurora.gpg.publish``);
* ``FileLock(path)``: an advisory ``flock`` on ``.<name>.lock`` beside ``path``, shared or
  exclusive, blocking or not; the kernel releases it if the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from aurora.errors import AuroraError

# The artefacts that describe a published document: its detached signature and digest.
SIDECARS = (".asc", ".sha256")


class LockBusyError(AuroraError):
    """A non-blocking lock is held by another process."""


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_output(path: Path, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to (by any means: tarfile,
    gzip, sqlite); on success it is fsynced and renamed over ``path``, on failure removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_for(path)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if mode is not None:
            tmp.chmod(mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> Path:
    """Replace ``path`` with ``data``: readers see the old or the new file, never a mix,
    and after a crash the new file is either complete or absent."""
    with atomic_output(path, mode=mode) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return path


def atomic_copy(source: Path, target: Path) -> Path:
    """``target`` becomes a durable copy of ``source`` in one step."""
    with atomic_output(target) as tmp, open(source, "rb") as src, open(tmp, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    return target


def sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def remove_durably(paths: Iterable[Path]) -> list[Path]:
    """Unlink those of ``paths`` that exist, then fsync their directories; returns them."""
    removed = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    for directory in {p.parent for p in removed}:
        fsync_dir(directory)
    return removed


def publish(path: Path, data: bytes, *, sidecars: Iterable[str] = SIDECARS) -> Path:
    """Replace ``path`` by ``data`` after removing every sidecar that described the old
    content. A crash in between leaves a visibly unsigned document, never a stale signature
    beside new content."""
    remove_durably(sidecar(path, s) for s in sidecars)
    return atomic_write(path, data)


class FileLock:
    """An advisory lock on ``.<name>.lock`` beside ``path`` (or on ``lock_file``).

    ``shared=True`` lets several holders in (readers, or writers that only exclude an
    exclusive holder such as a restore); ``blocking=False`` raises LockBusyError at once.
    Usable as a context manager, or held with ``acquire()``/``release()`` for an object's
    lifetime. A lock is per open file: the same process taking it twice conflicts too.
    """

    def __init__(self, path: Path, *, shared: bool = False, blocking: bool = True,
                 lock_file: Path | None = None, busy_message: str | None = None) -> None:
        self.path = lock_file or path.with_name(f".{path.name}.lock")
        self.shared = shared
        self.blocking = blocking
        self.busy_message = busy_message
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        flags = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | \
            (0 if self.blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            os.close(fd)
            raise LockBusyError(self.busy_message or f"{self.path} is locked by another "
                                "process") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor releases the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def file_lock(path: Path) -> FileLock:
    """An exclusive, blocking lock between processes writing the same file."""
    return FileLock(path)
