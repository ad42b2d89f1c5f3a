"""The canary rollout (issue 10), built in parts ahead of the replicated mode it needs.

``analysis`` (sequential statistics), ``plan`` (steps and the verdict state machine) and
``haproxy`` (the tenant-sticky split) exist and are tested; wiring them to replicas,
Prometheus and the ledger waits for the replicated PostgreSQL mode (issue 9).
"""
