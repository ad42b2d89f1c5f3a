"""Housekeeping runs below the services' CPU priority, on a thread of its own."""

from __future__ import annotations

import os
import threading

import pytest

from aurora.priority import HOUSEKEEPING_NICE, as_housekeeping


def nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_the_work_runs_lowered_and_the_caller_keeps_its_priority() -> None:
    before = nice()
    seen = as_housekeeping(nice)
    assert seen == min(19, before + HOUSEKEEPING_NICE)
    assert nice() == before


def test_what_the_work_raises_is_raised_to_the_caller() -> None:
    def fail() -> None:
        raise ValueError("backup failed")

    with pytest.raises(ValueError, match="backup failed"):
        as_housekeeping(fail)

    def interrupted() -> None:
        raise KeyboardInterrupt  # an interrupted task must still stop the soak

    with pytest.raises(KeyboardInterrupt):
        as_housekeeping(interrupted)
