"""Housekeeping (backups and their verification, reports, archives, audits) at a lower CPU
priority than the services it looks after.

A soak's own work must not be what degrades the stack it measures: on a 2-core machine a
compressed 7-day rehearsal spends about two thirds of a core re-verifying back-to-back
backups, and a real soak's 15-minute backup re-verifies a ledger that grows for a week. At
``HOUSEKEEPING_NICE`` that work takes what the bridge, the providers and Prometheus leave.

Linux keeps a nice value per thread, and an unprivileged thread cannot take back a priority
it gave up, so the soak runs each housekeeping task on a fresh thread that raises its own
nice and ends with the task; processes it starts (``verify-audit``, ``pg_dump``) inherit the
lower priority.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

HOUSEKEEPING_NICE = 10  # CFS weight 110 against a service's 1024: ~1/10 of a contended core


def lower_this_thread(increment: int = HOUSEKEEPING_NICE) -> None:
    """Raise the calling thread's nice value by ``increment`` (capped at 19 by the kernel)."""
    if hasattr(os, "setpriority"):
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))


def as_housekeeping(work: Callable[[], T]) -> T:
    """``work()`` on a thread of its own at housekeeping priority; its result, or its
    exception (KeyboardInterrupt included) raised here."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            lower_this_thread()
            result.append(work())
        except BaseException as exc:  # handed to the caller, who decides
            failure.append(exc)

    worker = threading.Thread(target=run, name="aurora-housekeeping")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]
