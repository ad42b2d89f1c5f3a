"""Incidents: Alertmanager's webhook → incidents with SEV levels and SLAs → the ledger.

Modules: ``config`` (config/incidents.json: SEVs, SLAs, alert → SEV mapping), ``model``
(the state machine, pure), ``webhook`` (payload validation, pure), ``report`` (pure),
``metrics``, ``store`` (SQLite index of the ledger's ``incident`` entries), ``app`` and
``server`` (the receiver on :9111), ``cli`` (``aurora incident``), ``alertmanager``
(rendered config, command line). The alert validation drills are in :mod:`aurora.drills`.
"""
