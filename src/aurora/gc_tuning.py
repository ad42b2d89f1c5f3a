"""Garbage-collector settings for Aurora's long-lived servers."""

from __future__ import annotations

import gc


def quiet_gc() -> None:
    """Keep collector pauses out of order latency.

    Everything alive after start-up (modules, config, keys, the policy state rebuilt from
    the ledger) lives as long as the process: freezing it keeps full collections from
    walking it again and again, and a larger young-generation threshold runs the
    cycle collector less often (request objects are freed by reference counting anyway).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
