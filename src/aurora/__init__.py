"""Aurora: a treaty-governed compute-brokering gateway with a tamper-evident ledger."""

__version__ = "1.0.0"
