"""Alert drills during the soak: a real fault through the real alert path, and back.

``aurora.drills.alert`` does the round trip: ``drill_plan(home, alert)`` says which
provider-network fault drives the alert (and which companion alerts the same fault trips),
``run_drill`` injects it, waits for the incident with the right SEV, clears it, waits for
the resolution and appends the ``drill`` ledger entries; the receiver tags incidents of
those alerts that open while the drill is active as drill incidents.

In a compressed soak a companion alert with a long window (the 1d burn-rate pair, a few
real seconds) can still open after the drill has finished. The window recorded here —
from the fault's injection to its resolution, plus ``incident_settle_s`` — lets the drill
tag such incidents while they are open, and the gate attribute the rest to the drill, for
the drill's own alerts only: any other alert's incident stays a real one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aurora.drills.window import DrillWindow
from aurora.durations import format_duration
from aurora.home import Home

if TYPE_CHECKING:
    from aurora.soak.spans import Timing
from aurora.wire import utc_now


def clear_faults(home: Home) -> None:
    """``DELETE /chaos``: every fault event (after an interrupted drill, whose ids are lost)."""
    from aurora.providers.chaos import ChaosClient

    with ChaosClient.for_home(home) as client:
        client.clear()


def _open_incidents(home: Home, alert: str) -> list[str]:
    from aurora.incidents.service import IncidentStore

    with IncidentStore.open(home) as store:
        return [i.id for i in store.incidents(open_only=True, alertname=alert)]


def wait_quiet(home: Home, alert: str, timeout: float) -> list[str]:
    """Wait until ``alert`` has no open incident (an earlier firing resolving); the ids still
    open after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (still := _open_incidents(home, alert)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return still


def run_drill(home: Home, alert: str, timing: Timing, say: Callable[[str], None]
              ) -> tuple[bool, str, dict[str, Any]]:
    """One alert drill; (passed, summary, detail with the drill's window)."""
    from aurora.drills.alert import DrillError, drill_plan
    from aurora.drills.alert import run_drill as run_planned

    timeout = timing.drill_timeout_s
    busy = wait_quiet(home, alert, timeout)
    if busy:
        return False, f"{alert} already has open incident(s) {', '.join(busy)}", {"open": busy}
    try:
        # the fault's own bound, should this process die before clearing it
        plan = drill_plan(home, alert, fault_for=format_duration(4 * timeout))
        say(f"drill {alert}: {plan.summary}; waiting up to {timeout:.0f}s per step")
        result = run_planned(home, plan, timeout=timeout,
                             poll=0.25 if timing.compressed else 2.0)
    except DrillError as exc:
        return False, str(exc), {"error": str(exc)}
    data = result.to_json()
    end = result.resolved_at or result.cleared_at or utc_now()
    window = DrillWindow(result.drill_id, alert, tuple(plan.alerts), result.fired_at, end,
                         timing.settle_s, timing.incident_settle_s)
    tagged = tag_drill_incidents(home, [window], until=utc_now())
    for line in (f"incident {result.incident_id} {result.sev} (expected {result.expected_sev})",
                 f"durations {data['durations_seconds']}",
                 f"also tagged as drill incidents: {', '.join(tagged) or 'none'}"):
        say(line)
    summary = (f"{alert} fired ({result.sev}) and resolved" if result.passed
               else f"{alert}: {result.failure}")
    return result.passed, summary, {"drill": data, "ledger_seq": result.ledger_seq,
                                    "window": window.to_json(), "tagged": tagged,
                                    "fault": plan.summary}


def tag_drill_incidents(home: Home, windows: Sequence[DrillWindow], until: datetime
                        ) -> list[str]:
    """Mark open, untagged incidents opened inside a drill window as that drill's."""
    from aurora.incidents.model import IncidentError
    from aurora.incidents.service import IncidentStore

    tagged = []
    with IncidentStore.open(home, write=True) as store:
        for incident in store.incidents(open_only=True, until=until + timedelta(seconds=1)):
            if incident.drill is not None:
                continue
            window = next((w for w in windows
                           if w.owns(incident.alertname, incident.opened_at)), None)
            if window is None:
                continue
            try:
                store.acknowledge(incident.id, by="drill", drill=window.drill_id,
                                  note=f"opened during alert drill {window.drill_id} "
                                       f"({window.alert})")
                tagged.append(incident.id)
            except IncidentError:
                continue  # resolved meanwhile: the gate attributes it by its window
    return tagged
