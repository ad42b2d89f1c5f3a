"""The 7-day soak: the seed's daily protocol run on a clock, its evidence in the ledger,
the compressed rehearsal and the evidence-backed Day-7 gate. The drills it schedules are in
:mod:`aurora.drills`, the emergency rollback in :mod:`aurora.ledger.rollback`.
See docs/SOAK.md."""
