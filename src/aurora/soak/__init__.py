"""The 7-day soak: the seed's daily protocol run on a clock, its evidence in the ledger,
the compressed rehearsal, the evidence-backed Day-7 gate, drills and the emergency rollback.
See docs/SOAK.md."""
