"""``treaty_provenance_coverage``: the share of provider-accepted orders whose ledger
record re-verifies end to end.

For each order a provider accepted, once a signed checkpoint covers its leaf:
the checkpoint's signature (ledger verifier key), the leaf hash of the stored
payload, its inclusion proof from the stored hashes up to the signed root,
and the tenant's and provider's signatures in the record
(``aurora.provenance``). An accepted order the ledger failed to record, or
one no checkpoint covers within ``grace_s``, counts as not covered. Coverage
is verified / checked over ``window_s``; with nothing checked in the window
the gauge is absent rather than a made-up 1.0.

It also proves the ledger append-only between the checkpoints it sees: each
newly signed checkpoint must be consistent (RFC 6962 consistency proof from
the stored hashes) with the previous one. Failures of either kind are
counted, so the tampering alert (SEV1) can fire on them.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter

from aurora import metricnames as names
from aurora.bridge.metrics import CallbackGauge
from aurora.config import load_stack
from aurora.home import Home
from aurora.keys import Ed25519PublicKey
from aurora.ledger import Ledger, LedgerError
from aurora.ledger.files import load_verifier
from aurora.ledger.merkle import leaf_hash
from aurora.ledger.note import open_checkpoint
from aurora.provenance import order_record_problem
from aurora.wire import parse_rfc3339, rfc3339_at, utc_now

log = logging.getLogger("aurora.provenance")


class ProvenanceAuditor:
    def __init__(self, home: Home, tenant_keys: Mapping[str, Ed25519PublicKey],
                 provider_keys: Mapping[str, Ed25519PublicKey], *, window_s: float,
                 grace_s: float = 60.0) -> None:
        self._home = home
        self._tenant_keys = tenant_keys
        self._provider_keys = provider_keys
        self._window = window_s
        self._grace = grace_s
        self._origin = load_stack(home).ledger_origin
        self._verifier = load_verifier(home)
        self._lock = threading.Lock()
        self._pending: list[tuple[int, float]] = []  # heap of (seq, accepted_at)
        self._results: deque[tuple[float, bool]] = deque()
        self._reader: Ledger | None = None
        self._last_checkpoint: tuple[int, bytes] | None = None
        self.last_problem = ""
        self._checks: Counter | None = None
        self._inconsistent: Counter | None = None

    def register(self, registry: CollectorRegistry, treaty_id: str) -> None:
        """Export the coverage gauge and the check counters into ``registry``."""
        registry.register(self.collector(treaty_id))
        self._checks = Counter(
            names.PROVENANCE_CHECKS, "Provider-accepted orders re-verified from the ledger, "
            "by result: verified, failed (record no longer proves itself), unrecorded, uncovered.",
            ["treaty_id", "result"], registry=registry)
        self._inconsistent = Counter(
            names.LEDGER_CONSISTENCY_FAILURES,
            "Signed checkpoints not provably an extension of the previous one.",
            ["treaty_id"], registry=registry)
        for result in ("verified", "failed", "unrecorded", "uncovered"):
            self._checks.labels(treaty_id, result)
        self._inconsistent.labels(treaty_id)
        self._treaty_id = treaty_id

    def _count(self, result: str) -> None:
        if self._checks is not None:
            self._checks.labels(self._treaty_id, result).inc()

    def note_recorded(self, seq: int, at: float) -> None:
        with self._lock:
            heapq.heappush(self._pending, (seq, at))

    def note_unrecorded(self, at: float) -> None:
        with self._lock:
            self._results.append((at, False))
            self.last_problem = "an accepted order was not recorded in the ledger"
        self._count("unrecorded")

    def seed_from_ledger(self, ledger: Ledger) -> None:
        """After a restart, re-check the orders of the last window from the ledger."""
        since = utc_now().timestamp() - self._window
        for row in ledger.scan(kinds=("order",), since_ts=rfc3339_at(since)):
            self.note_recorded(row.seq, parse_rfc3339(row.ts).timestamp())

    def _check(self, reader: Ledger, seq: int, size: int, root: bytes) -> str | None:
        row = reader.get(seq)
        if leaf_hash(row.payload) != row.leaf_hash:
            return f"leaf {seq}: stored payload does not hash to its leaf hash"
        proof = reader.inclusion_proof(seq, size)
        if proof.root_hash != root or proof.leaf_hash != row.leaf_hash:
            return f"leaf {seq}: not included under the signed root of size {size}"
        proof.verify()
        problem = order_record_problem(row.entry, self._tenant_keys, self._provider_keys)
        return f"leaf {seq}: {problem}" if problem else None

    def close(self) -> None:
        """Close the auditor's read connection to the ledger (at shutdown)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def audit(self, now: float) -> None:
        """Check every pending record a signed checkpoint now covers (scrape thread)."""
        try:
            if self._reader is None:
                self._reader = Ledger.open(self._home, readonly=True)
            note = self._reader.latest_checkpoint()
            checkpoint = (open_checkpoint(note, [self._verifier], self._origin)
                          if note else None)
        except LedgerError as exc:
            log.warning("provenance audit cannot read the ledger: %s", exc)
            checkpoint = None
        if checkpoint is not None and self._reader is not None:
            self._check_consistency(self._reader, checkpoint.size, checkpoint.root)
        while True:
            with self._lock:
                if not self._pending:
                    break
                seq, at = self._pending[0]
                covered = checkpoint is not None and seq < checkpoint.size
                if not covered and now - at <= self._grace:
                    break
                heapq.heappop(self._pending)
            if covered:
                assert checkpoint is not None and self._reader is not None
                try:
                    problem = self._check(self._reader, seq, checkpoint.size, checkpoint.root)
                except LedgerError as exc:
                    problem = f"leaf {seq}: {exc}"
                self._count("failed" if problem else "verified")
            else:
                problem = f"leaf {seq}: no signed checkpoint covers it after {self._grace:.0f}s"
                self._count("uncovered")
            with self._lock:
                self._results.append((at, problem is None))
                if problem:
                    self.last_problem = problem
                    log.warning("provenance: %s", problem)
        with self._lock:
            while self._results and self._results[0][0] < now - self._window:
                self._results.popleft()

    def _check_consistency(self, reader: Ledger, size: int, root: bytes) -> None:
        previous = self._last_checkpoint
        self._last_checkpoint = (size, root)
        if previous is None or previous[0] == 0 or previous == (size, root):
            return
        old_size, old_root = previous
        problem = None
        if size < old_size:
            problem = f"signed tree shrank from {old_size} to {size}"
        else:
            try:
                proof = reader.consistency_proof(old_size, size)
                if proof.old_root != old_root or proof.new_root != root:
                    problem = f"stored hashes disagree with the signed roots {old_size}→{size}"
                else:
                    proof.verify()
            except LedgerError as exc:
                problem = f"no consistency between checkpoints {old_size}→{size}: {exc}"
        if problem:
            log.error("ledger consistency: %s", problem)
            self.last_problem = problem
            if self._inconsistent is not None:
                self._inconsistent.labels(self._treaty_id).inc()

    def coverage(self) -> float | None:
        now = time.time()
        self.audit(now)
        with self._lock:
            checked = len(self._results)
            good = sum(1 for _, ok in self._results if ok)
        return good / checked if checked else None

    def collector(self, treaty_id: str) -> CallbackGauge:
        return CallbackGauge(
            names.PROVENANCE_COVERAGE,
            "Share of provider-accepted orders in the provenance window whose ledger record "
            "re-verifies (signatures, leaf hash, inclusion under a signed checkpoint).",
            treaty_id, self.coverage)

