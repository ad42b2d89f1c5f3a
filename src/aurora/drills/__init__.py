"""Drills: the seed's emergency procedures and the alert validation drills, rehearsed for real.

Modules: ``faults`` (which ``aurora chaos`` fault drives which alert, pure), ``window``
(drill windows: the ``drill`` ledger entries that say which running drill owns a new
incident, and the typed window a soak drill records, pure), ``alert`` (the alert round trip
fault → incident → resolution, and drill plans), ``soak`` (an alert drill as a soak task:
waits for quiet, records its window, tags the incidents it caused) and ``procedures`` (the
rollback and restore drills, on a scratch copy of the ledger; the rollback drill runs the
real ``aurora rollback``, :func:`aurora.ledger.rollback.emergency_rollback`).

A drill step that cannot run (a binary is missing) is *skipped*, and a drill with a skipped
step has not passed: the Day-7 gate counts only drills whose every step ran and passed.
"""
