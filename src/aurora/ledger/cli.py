"""`aurora ledger ...` (and `./ops/bin/remembrancer ...`): the Remembrancer's commands, and
`aurora rollback` (:mod:`aurora.ledger.rollback`).

Bad input and bad files raise ``AuroraError`` subclasses, which ``aurora.command.run_app``
prints as one ``error: ...`` line with a non-zero exit. ``verify-audit`` reports
tampering itself: ``AUDIT LOG TAMPERED: leaf <i>: <what>`` and exit 1.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer

from aurora.cliopts import DURATION, bounded
from aurora.home import Home
from aurora.terminal import json_text

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from aurora.ledger.audit import AuditReport
    from aurora.ledger.errors import TamperedError
    from aurora.ledger.ledger import Ledger

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

DB_HELP = ("Ledger database: a SQLite file or a postgresql:// URL (default: database_url of "
           "config/stack.json, else $AURORA_LEDGER_DB, else ops/data/remembrancer.db).")
JSON_HELP = "Print JSON (hashes in lowercase hex)."
PROGRESS_MIN = 100_000  # entries; smaller logs verify in well under a second


DbOption = Annotated[str | None, typer.Option("--db", help=DB_HELP)]
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
VkeyOption = Annotated[Path | None, typer.Option(
    "--vkey", help="Verifier key (default: ops/keys/ledger.vkey).")]


# A proof, receipt, bridge answer or checkpoint note is a few KiB (an answer is at most the
# bridge's 64 KiB body plus the receipt); anything far larger is the wrong file.
MAX_INPUT_BYTES = 4 * 1024 * 1024


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _emit(obj: Any) -> None:
    print(json_text(obj))


def _read_text(path: Path, what: str) -> str:
    from aurora.ledger.errors import LedgerError

    try:
        if str(path) == "-":
            raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with path.open("rb") as f:  # /dev/zero or a FIFO never ends: read a bounded prefix
                raw = f.read(MAX_INPUT_BYTES + 1)
        if len(raw) > MAX_INPUT_BYTES:
            raise LedgerError(f"{what} {path} is over {MAX_INPUT_BYTES // 1024 // 1024} MiB: "
                              "not a proof, receipt, answer or checkpoint", exit_code=2)
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise LedgerError(f"{what} {path} does not exist", exit_code=2) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(f"{what} {path} is unreadable: {exc}", exit_code=2) from None


class _ProgressBar:
    """A rich progress bar on stderr, only for large logs on a terminal."""

    def __init__(self) -> None:
        self._progress: Progress | Literal[False] | None = None
        self._task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            console = Console(stderr=True)
            if total < PROGRESS_MIN or not console.is_terminal:
                self._progress = False
                return
            self._progress = Progress("verifying", BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), console=console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("audit", total=total)
        if self._progress and self._task is not None:
            self._progress.update(self._task, completed=done)

    def close(self) -> None:
        if self._progress:
            self._progress.stop()


def _checkpoint_note(home: Home, db: str | None, location: Any,
                     explicit: Path | None) -> tuple[str, str] | None:
    """The checkpoint file verify-audit checks besides the database's own checkpoints."""
    from aurora.ledger.storage import checkpoint_path, open_store

    if explicit is not None:
        return _read_text(explicit, "checkpoint file"), f"checkpoint file {explicit}"
    candidate = checkpoint_path(home, db)
    if candidate.exists():
        return _read_text(candidate, "checkpoint file"), f"checkpoint file {candidate}"
    if candidate != home.checkpoint_file and home.checkpoint_file.exists():
        # A table-only copy (`.dump audit_log | sqlite3 other.db`) has no checkpoints of
        # its own: check it against the home ledger's.
        store = open_store(location, readonly=True)
        try:
            own = store.checkpoint_rows(latest_only=True)
        finally:
            store.close()
        if not own:
            return (_read_text(home.checkpoint_file, "checkpoint file"),
                    f"checkpoint file {home.checkpoint_file}")
    return None


def _audit(db: str | None, checkpoint: Path | None, vkey: Path | None) -> AuditReport:
    from aurora.ledger.audit import audit
    from aurora.ledger.files import load_verifier, origin
    from aurora.ledger.storage import describe, ledger_location

    home = Home.discover()
    location = ledger_location(home, db)
    verifier = load_verifier(home, vkey)
    if isinstance(location, Path) and not location.exists():
        from aurora.ledger.errors import LedgerDatabaseError

        raise LedgerDatabaseError(f"no ledger database at {describe(location)}")
    note = _checkpoint_note(home, db, location, checkpoint)
    bar = _ProgressBar()
    try:
        return audit(location, [verifier], origin=origin(home), checkpoint_note=note, progress=bar)
    finally:
        bar.close()


def _report_audit(report: AuditReport, as_json: bool) -> None:
    if as_json:
        _emit(report.to_json())
        return
    print(f"audit log OK: {_entries(report.tree_size)} verified in {report.seconds:.2f}s")
    print(f"tree size {report.tree_size}")
    print(f"root {report.root.hex()}")
    print(f"stored hashes checked: {report.stored_hashes_checked}; signed checkpoints "
          f"verified: {report.checkpoints_verified}")
    for warning in report.warnings:
        print(f"warning: {warning}")


def _tampered(exc: TamperedError, as_json: bool) -> NoReturn:
    if as_json:
        _emit({"ok": False, "tampered": True, "first_bad_index": exc.index, "problem": exc.what})
    else:
        print(str(exc))
    raise typer.Exit(1)


@app.command("verify-audit")
def verify_audit(
    db: DbOption = None,
    as_json: JsonOption = False,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="Also check this signed checkpoint (default: "
        "ops/data/checkpoint).")] = None,
    vkey: VkeyOption = None,
) -> None:
    """Recompute every leaf, interior hash and root; check every signed checkpoint.

    Exit 0 with the tree size and root, or exit 1 printing AUDIT LOG TAMPERED and
    the first bad leaf index.
    """
    from aurora.ledger.errors import TamperedError

    try:
        report = _audit(db, checkpoint, vkey)
    except TamperedError as exc:
        _tampered(exc, as_json)
    _report_audit(report, as_json)


@app.command()
def integrity(
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The engine's own check (SQLite: PRAGMA integrity_check; PostgreSQL: amcheck), then
    verify-audit."""
    from aurora.ledger.backup import integrity_check
    from aurora.ledger.errors import BackupError, TamperedError
    from aurora.ledger.storage import ledger_location

    location = ledger_location(Home.discover(), db)
    try:
        what = integrity_check(location)
    except BackupError as exc:
        if as_json:
            _emit({"ok": False, "integrity_check": str(exc)})
            raise typer.Exit(1) from None
        raise
    if not as_json:
        print(f"integrity_check: ok ({what})")
    try:
        report = _audit(db, None, None)
    except TamperedError as exc:
        _tampered(exc, as_json)
    if as_json:
        _emit({**report.to_json(), "integrity_check": "ok"})
    else:
        _report_audit(report, False)


def _open_readonly(db: str | None) -> Ledger:
    from aurora.ledger.ledger import Ledger

    return Ledger.open(Home.discover(), db=db, readonly=True)


def _print_proof(header: list[str], proof: tuple[bytes, ...]) -> None:
    print("\n".join(header))
    print(f"proof ({len(proof)} hashes, first to last as RFC 6962 orders them):")
    for h in proof:
        print(f"  {h.hex()}")


@app.command()
def root(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The current tree size and root hash."""
    with _open_readonly(db) as ledger:
        head = ledger.tree_head()
    if as_json:
        _emit(head.to_json())
    else:
        print(f"tree size {head.size}")
        print(f"root {head.root_hex}")


@app.command()
def prove(
    index: Annotated[int, typer.Option("--index", parser=bounded(),
                                             help="Leaf index (seq), from 0.")],
    size: Annotated[int | None, typer.Option("--size", parser=bounded(), help="Tree size (default: "
                                             "current).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Inclusion proof of leaf --index in the tree of --size leaves."""
    with _open_readonly(db) as ledger:
        proof = ledger.inclusion_proof(index, size)
    if as_json:
        _emit(proof.to_json())
        return
    _print_proof([f"leaf {proof.leaf_index} in tree of size {proof.tree_size}",
                  f"leaf hash {proof.leaf_hash.hex()}", f"root {proof.root_hash.hex()}"],
                 proof.proof)


@app.command()
def consistency(
    old: Annotated[int, typer.Option("--old", parser=bounded(), help="Old tree size (>= 1).")],
    new: Annotated[int | None, typer.Option("--new", parser=bounded(),
                                            help="New tree size (default: "
                                            "current).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Consistency proof: the tree of --old leaves is a prefix of the tree of --new."""
    with _open_readonly(db) as ledger:
        proof = ledger.consistency_proof(old, new)
    if as_json:
        _emit(proof.to_json())
        return
    _print_proof([f"old size {proof.old_size} root {proof.old_root.hex()}",
                  f"new size {proof.new_size} root {proof.new_root.hex()}"], proof.proof)


@app.command()
def checkpoint(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Sign the current tree head now, store it and write ops/data/checkpoint."""
    from aurora.ledger.ledger import Ledger
    from aurora.ledger.note import Checkpoint, parse_note

    with Ledger.open(Home.discover(), db=db) as ledger:
        note = ledger.checkpoint()
    if as_json:
        body = Checkpoint.parse(parse_note(note).text)
        _emit({"tree_size": body.size, "root_hash": body.root.hex(), "checkpoint": note})
    else:
        sys.stdout.write(note)


@app.command()
def append(
    kind: Annotated[str, typer.Option("--kind", help="Entry kind, e.g. note, deploy.")],
    data: Annotated[str, typer.Option("--data", help="Entry data: a JSON object.")] = "{}",
    tenant: Annotated[str | None, typer.Option("--tenant", help="tenant_id.")] = None,
    treaty: Annotated[str | None, typer.Option("--treaty", help="treaty_id.")] = None,
    subject: Annotated[str | None, typer.Option(
        "--subject", help="subject (e.g. an order nonce).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Append one entry; prints its receipt once it is durable."""
    from aurora.canonical import StrictJSONError, parse_strict
    from aurora.ledger.entry import Entry
    from aurora.ledger.errors import EntryError
    from aurora.ledger.ledger import Ledger

    try:
        value = parse_strict(data)
    except StrictJSONError as exc:
        raise EntryError(f"--data is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EntryError("--data must be a JSON object")
    entry = Entry(kind=kind, data=value, treaty_id=treaty, tenant_id=tenant, subject=subject)
    with Ledger.open(Home.discover(), db=db) as ledger:
        receipt = ledger.append(entry)
    if as_json:
        _emit(receipt.to_json())
    else:
        print(f"appended leaf {receipt.leaf_index} ({kind}); tree size {receipt.tree_size}, "
              f"root {receipt.root_hash}")


@app.command()
def show(
    index: Annotated[int, typer.Option("--index", parser=bounded(), help="Leaf index (seq).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One stored entry with its columns and leaf hash."""
    with _open_readonly(db) as ledger:
        row = ledger.get(index)
    if as_json:
        _emit(row.to_json())
    else:
        print(json_text(row.to_json(), indent=2))  # entries hold tenants' and alerts' text


@app.command("verify-proof")
def verify_proof(
    file: Annotated[Path, typer.Argument(help="Proof JSON (prove/consistency --json), a "
                                         "receipt, or a bridge 200 body; - for stdin.")],
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="Signed checkpoint note (default: ops/data/checkpoint).")] = None,
    vkey: VkeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a proof offline against a signed checkpoint and the verifier key (no database)."""
    from aurora.canonical import StrictJSONError, parse_strict
    from aurora.config import load_order_keys
    from aurora.ledger.errors import ProofError
    from aurora.ledger.files import load_verifier
    from aurora.ledger.offline import OrderKeys, verify_document

    home = Home.discover()
    verifier = load_verifier(home, vkey)
    keys = OrderKeys(*load_order_keys(home))
    try:
        doc = parse_strict(_read_text(file, "proof file"))
    except StrictJSONError as exc:
        raise ProofError(f"{file} is not JSON: {exc}", exit_code=2) from None
    note = None
    if checkpoint is not None:
        note = _read_text(checkpoint, "checkpoint file")
    elif home.checkpoint_file.exists():
        note = _read_text(home.checkpoint_file, "checkpoint file")
    result = verify_document(doc, [verifier], origin=verifier.name, checkpoint_note=note,
                             keys=keys)
    if as_json:
        _emit(result.to_json())
    else:
        print(f"proof OK: {result.summary}")


@app.command("backup")
def backup_command(
    every: Annotated[str | None, typer.Option(
        "--every", parser=DURATION,
        help="Keep backing up at this interval (e.g. 15m), starting now; stop "
        "with SIGTERM or Ctrl-C.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Directory (default: ops/backups).", file_okay=False)] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="File name, e.g. ledger-20251022.db.gz (default: "
        "ledger-YYYYMMDD-HHMMSS.db.gz).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Online snapshot, verified, gzipped, recorded in the manifest and in the ledger."""
    from aurora.durations import parse_duration
    from aurora.errors import AuroraError, ConfigError
    from aurora.ledger.backup import backup

    home = Home.discover()
    interval = None
    if every is not None:
        try:
            interval = parse_duration(every)
        except ValueError as exc:
            raise ConfigError(f"--every: {exc}") from None
        if interval <= 0:
            raise ConfigError("--every must be longer than 0s")

    def once() -> None:
        info = backup(home, db=db, out_dir=out, name=name)
        if as_json:
            _emit(info.to_json())
        else:
            print(f"backup {(out or home.backups_dir) / info.file}: {_entries(info.tree_size)}, "
                  f"root {info.root_hash}, sha256 {info.sha256} (verified)", flush=True)

    if interval is None:
        once()
        return
    from aurora.priority import lower_this_thread

    lower_this_thread()  # the stack's backup loop: housekeeping, never ahead of the bridge
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        try:
            once()
        except AuroraError as exc:  # keep going: the next attempt may succeed
            print(f"error: backup failed: {exc}", file=sys.stderr, flush=True)
        stop.wait(interval)


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="A backup (.db.gz or .db).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a backup, move the current database aside (never deleted) and restore it.

    Stop the writers first (`aurora down`).
    """
    from aurora.ledger.backup import restore as restore_backup

    info = restore_backup(Home.discover(), file, db=db)
    if as_json:
        _emit(info.to_json())
        return
    print(f"restored {info.file}: {_entries(info.tree_size)}, root {info.root_hash}")
    for path in info.moved_aside:
        print(f"kept previous: {path}")
    for warning in info.warnings:
        print(f"warning: {warning}")


@app.command()
def migrate(
    to: Annotated[str, typer.Option("--to", help="The empty target: a postgresql:// URL or "
                                    "a SQLite file.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy the ledger (every leaf, stored hash and checkpoint) into another store; verify
    the copy, and link it to the source's last checkpoint by a consistency proof."""
    from aurora.ledger.migrate import migrate as run

    bar = _ProgressBar()
    try:
        info = run(Home.discover(), to, db=db, progress=bar)
    finally:
        bar.close()
    if as_json:
        _emit(info.to_json())
        return
    print(f"migrated {_entries(info.tree_size)} and {info.checkpoints} signed checkpoints "
          f"from {info.source} to {info.target}")
    print(f"root {info.root_hash} (equal on both; verify-audit ok on the target)")
    if info.last_checkpoint_before:
        print(f"consistency proof {info.last_checkpoint_before} -> "
              f"{info.first_checkpoint_after} verifies")
    print(f"use it: set database_url (or AURORA_DATABASE_URL) to {info.target}"
          if info.target.startswith("postgres") else f"use it: --db {info.target}")


def register(root: typer.Typer) -> None:
    @root.command()
    def rollback(
        yes: bool = typer.Option(False, "--yes", "-y", help="Do it without asking."),
        dry_run: bool = typer.Option(False, "--dry-run",
                                     help="Only say which backup would be restored."),
    ) -> None:
        """Emergency rollback: stop the services, restore the ledger from the newest backup
        that verifies (the current database is kept aside), keep ledger-latest on it."""
        from aurora.errors import AuroraError
        from aurora.ledger.rollback import emergency_rollback

        home = Home.discover()
        if not dry_run and not yes:
            if not sys.stdin.isatty():
                raise AuroraError("aurora rollback stops the stack and restores the ledger: "
                                  "pass --yes", exit_code=2)
            typer.confirm("Stop the stack and restore the ledger from the newest verified "
                          "backup?", abort=True)
        emergency_rollback(home, dry_run=dry_run)
        if not dry_run:
            print("rolled back; verify with `./ops/bin/remembrancer verify-audit`, then "
                  "`make up`")
